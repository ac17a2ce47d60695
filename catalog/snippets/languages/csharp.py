"""C# (.NET 6+ top-level statements) with HttpClient."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import csharp_string

TEMPLATE = """\
{{ header }}
var key = Environment.GetEnvironmentVariable("MARKETPLACE_API_KEY") ?? {{ placeholder }};
using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(310) };
http.DefaultRequestHeaders.Add("Authorization", $"Simple {key}");
var response = await http.PostAsync({{ endpoint }},
    {{ content }});
if (!response.IsSuccessStatusCode)
    throw new Exception($"{response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
{{ output }}
"""

PRINT = "Console.WriteLine(await response.Content.ReadAsStringAsync());"
WRITE = """\
File.WriteAllBytes("output.bin", await response.Content.ReadAsByteArrayAsync());
Console.WriteLine("Wrote the result to output.bin");"""


class CSharp(Language):
    slug = "csharp"
    label = "C#"
    pygments_lexer = "csharp"
    filename = "Program.cs"
    order = 110

    def render(self, ctx: SnippetContext) -> str:
        if ctx.content_type == "binary":
            decoded = f"Convert.FromBase64String({csharp_string(ctx.body_base64)})"
            content = (
                f"new ByteArrayContent({decoded})\n"
                '    { Headers = { ContentType = new("application/octet-stream") } }'
            )
        else:
            media = "application/json" if ctx.content_type == "json" else "text/plain"
            content = (
                f"new StringContent({csharp_string(ctx.body_text)}, "
                f'System.Text.Encoding.UTF8, "{media}")'
            )
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "//",
                run="dotnet new console -o CallModel, put this in CallModel/Program.cs, "
                "then: dotnet run --project CallModel   (.NET 6 or newer)",
            ),
            placeholder=csharp_string(ctx.key_placeholder),
            endpoint=csharp_string(ctx.raw_endpoint),
            content=content,
            output=WRITE if ctx.result_type == "binary" else PRINT,
        )
