"""C# for .NET 6+ (top-level statements, HttpClient, System.Text.Json)."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import csharp_string

TEMPLATE = """\
{{ header }}
using System.Net.Http.Headers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

var apiKey = Environment.GetEnvironmentVariable("MARKETPLACE_API_KEY");
if (string.IsNullOrEmpty(apiKey)) apiKey = {{ placeholder }};
const string Endpoint = {{ endpoint }};

{{ input }}

using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(310) };
using var request = new HttpRequestMessage(HttpMethod.Post, Endpoint) { Content = content };
request.Headers.Authorization = new AuthenticationHeaderValue("Simple", apiKey);
using var response = await http.SendAsync(request);
var body = await response.Content.ReadAsStringAsync();

JsonNode? answer;
try
{
    answer = JsonNode.Parse(body);
}
catch (JsonException)
{
    Console.Error.WriteLine($"HTTP {(int)response.StatusCode}: {body}");
    return 1;
}
if (answer?["error"] is JsonNode error)
{
    Console.Error.WriteLine($"{error["error_type"]}: {error["message"]}");
    return 1;
}

var result = answer?["result"];
switch ((string?)answer?["metadata"]?["content_type"])
{
    case "binary":
        var data = Convert.FromBase64String((string)result!);
        File.WriteAllBytes("output.bin", data);
        Console.WriteLine($"Wrote {data.Length} bytes to output.bin");
        break;
    case "text":
        Console.OutputEncoding = Encoding.UTF8;
        Console.WriteLine((string?)result);
        break;
    default:
        Console.OutputEncoding = Encoding.UTF8;
        var options = new JsonSerializerOptions
        {
            WriteIndented = true,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        Console.WriteLine(result is null ? "null" : result.ToJsonString(options));
        break;
}
return 0;
"""


class CSharp(Language):
    slug = "csharp"
    label = "C#"
    pygments_lexer = "csharp"
    filename = "Program.cs"
    order = 110

    def render(self, ctx: SnippetContext) -> str:
        if ctx.content_type == "binary":
            input_code = (
                f"var content = new ByteArrayContent(Convert.FromBase64String("
                f"{csharp_string(ctx.body_base64)}));\n"
                "content.Headers.ContentType = "
                'new MediaTypeHeaderValue("application/octet-stream");'
            )
        else:
            media = "application/json" if ctx.content_type == "json" else "text/plain"
            input_code = (
                f"var input = {csharp_string(ctx.body_text)};\n"
                f'var content = new StringContent(input, Encoding.UTF8, "{media}");'
            )
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "//",
                run="dotnet new console -o CallModel, put this in CallModel/Program.cs, "
                "then: dotnet run --project CallModel   (.NET 6 or newer)",
            ),
            placeholder=csharp_string(ctx.key_placeholder),
            endpoint=csharp_string(ctx.endpoint),
            input=input_code,
        )
