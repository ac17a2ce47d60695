"""Java 11+ with java.net.http.HttpClient, run as a single source file."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import java_string

TEMPLATE = """\
{{ header }}
import java.net.URI;
import java.net.http.*;

public class CallModel {
    public static void main(String[] args) throws Exception {
        var key = System.getenv().getOrDefault("MARKETPLACE_API_KEY", {{ placeholder }});
        var request = HttpRequest.newBuilder(URI.create({{ endpoint }}))
            .header("Authorization", "Simple " + key)
            .header("Content-Type", {{ media_type }})
            .POST(HttpRequest.BodyPublishers.{{ publisher }})
            .build();
        var response = HttpClient.newHttpClient()
            .send(request, HttpResponse.BodyHandlers.{{ handler }}());
        if (response.statusCode() != 200) {
            throw new RuntimeException(response.statusCode() + ": " + {{ body_text }});
        }
{{ output }}
    }
}
"""

PRINT = "        System.out.println(response.body());"
WRITE = """\
        java.nio.file.Files.write(java.nio.file.Path.of("output.bin"), response.body());
        System.out.println("Wrote the result to output.bin");"""


class Java(Language):
    slug = "java"
    label = "Java"
    pygments_lexer = "java"
    filename = "CallModel.java"
    order = 70

    def render(self, ctx: SnippetContext) -> str:
        if ctx.content_type == "binary":
            decoded = f"java.util.Base64.getDecoder().decode({java_string(ctx.body_base64)})"
            publisher = f"ofByteArray({decoded})"
        else:
            publisher = f"ofString({java_string(ctx.body_text)})"  # sent as UTF-8
        binary_output = ctx.result_type == "binary"
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "//", run=f"java {self.filename}   (Java 11 or newer runs a source file as it is)"
            ),
            placeholder=java_string(ctx.key_placeholder),
            endpoint=java_string(ctx.raw_endpoint),
            media_type=java_string(ctx.media_type),
            publisher=publisher,
            handler="ofByteArray" if binary_output else "ofString",
            body_text="new String(response.body())" if binary_output else "response.body()",
            output=WRITE if binary_output else PRINT,
        )
