"""Java 11+ with java.net.http.HttpClient. Java's standard library has no JSON parser, so
the call asks for the bare result (?output=raw) and prints it as the server sent it."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import java_string

TEMPLATE = """\
{{ header }}
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;

public class CallModel {
    static final String ENDPOINT = {{ endpoint }};

    public static void main(String[] args) throws Exception {
        String apiKey = System.getenv("MARKETPLACE_API_KEY");
        if (apiKey == null || apiKey.isEmpty()) {
            apiKey = {{ placeholder }};
        }
{{ input }}

        HttpRequest request = HttpRequest.newBuilder(URI.create(ENDPOINT))
            .timeout(Duration.ofSeconds(310))
            .header("Authorization", "Simple " + apiKey)
            .header("Content-Type", {{ media_type }})
            .POST({{ publisher }})
            .build();
        HttpResponse<byte[]> response = HttpClient.newHttpClient()
            .send(request, HttpResponse.BodyHandlers.ofByteArray());
        byte[] body = response.body();
        if (response.statusCode() != 200) {
            System.err.println("HTTP " + response.statusCode() + ": "
                + new String(body, StandardCharsets.UTF_8));
            System.exit(1);
        }
        String type = response.headers().firstValue("Content-Type").orElse("");
        if (type.startsWith("application/octet-stream")) {
            Files.write(Path.of("output.bin"), body);
            System.out.println("Wrote " + body.length + " bytes to output.bin");
        } else {
            // JSON or text, in UTF-8; a model error is {"error": {"message": ..., ...}}
            System.out.write(body, 0, body.length);
            System.out.println();
        }
    }
}
"""


class Java(Language):
    slug = "java"
    label = "Java"
    pygments_lexer = "java"
    filename = "CallModel.java"
    order = 70

    def render(self, ctx: SnippetContext) -> str:
        if ctx.content_type == "binary":
            encoded = java_string(ctx.body_base64)
            input_code = f"        byte[] input = Base64.getDecoder().decode({encoded});"
            publisher = "HttpRequest.BodyPublishers.ofByteArray(input)"
        else:
            input_code = f"        String input = {java_string(ctx.body_text)};"
            publisher = "HttpRequest.BodyPublishers.ofString(input, StandardCharsets.UTF_8)"
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "//", run=f"java {self.filename}   (Java 11 or newer runs a source file as it is)"
            ),
            endpoint=java_string(ctx.endpoint + "?output=raw"),
            placeholder=java_string(ctx.key_placeholder),
            input=input_code,
            media_type=java_string(ctx.media_type),
            publisher=publisher,
        )
