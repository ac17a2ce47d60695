"""PHP 8, with no extension: file_get_contents and an HTTP stream context."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import php_string

TEMPLATE = """\
<?php
{{ header }}
$key = getenv('MARKETPLACE_API_KEY') ?: {{ placeholder }};
$context = stream_context_create(['http' => [
    'method' => 'POST',
    'header' => ["Authorization: Simple $key", 'Content-Type: {{ media_type }}'],
    'content' => {{ content }},
    'timeout' => 310,
    'ignore_errors' => true, // read the body of an error answer too
]]);
$body = file_get_contents({{ endpoint }}, false, $context);
$status = $http_response_header[0] ?? 'no answer';
if (!str_contains($status, ' 200 ')) {
    throw new RuntimeException("$status: $body");
}
{{ output }}
"""

PRINT = 'echo $body, "\\n";'
WRITE = "file_put_contents('output.bin', $body);\necho \"Wrote the result to output.bin\\n\";"


class Php(Language):
    slug = "php"
    label = "PHP"
    pygments_lexer = "php"
    filename = "call_model.php"
    order = 90

    def render(self, ctx: SnippetContext) -> str:
        if ctx.content_type == "binary":
            content = f"base64_decode({php_string(ctx.body_base64)})"
        else:
            content = php_string(ctx.body_text)
        return fill(
            TEMPLATE,
            header=ctx.comment("//", run=f"php {self.filename}   (PHP 8 or newer)"),
            placeholder=php_string(ctx.key_placeholder),
            endpoint=php_string(ctx.raw_endpoint),
            media_type=ctx.media_type,  # a constant: nothing to escape
            content=content,
            output=WRITE if ctx.result_type == "binary" else PRINT,
        )
