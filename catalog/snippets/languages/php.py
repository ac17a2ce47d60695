"""PHP, with no extension: file_get_contents and an HTTP stream context."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import php_string

TEMPLATE = """\
<?php
{{ header }}

$apiKey = getenv('MARKETPLACE_API_KEY') ?: {{ placeholder }};
$endpoint = {{ endpoint }};

{{ input }}

$context = stream_context_create(['http' => [
    'method' => 'POST',
    'header' => "Authorization: Simple $apiKey\\r\\nContent-Type: {{ media_type }}\\r\\n",
    'content' => $input,
    'timeout' => 310,
    'ignore_errors' => true, // read the body of an error answer too
]]);
$body = file_get_contents($endpoint, false, $context);
if ($body === false) {
    fwrite(STDERR, "Cannot reach $endpoint\\n");
    exit(1);
}
$answer = json_decode($body);
if (!is_object($answer)) {
    $status = $http_response_header[0] ?? 'HTTP error';
    fwrite(STDERR, "$status: " . substr($body, 0, 300) . "\\n");
    exit(1);
}
if (isset($answer->error)) {
    fwrite(STDERR, $answer->error->error_type . ': ' . $answer->error->message . "\\n");
    exit(1);
}

switch ($answer->metadata->content_type) {
    case 'binary':
        $data = base64_decode($answer->result);
        file_put_contents('output.bin', $data);
        echo 'Wrote ' . strlen($data) . " bytes to output.bin\\n";
        break;
    case 'text':
        echo $answer->result, "\\n";
        break;
    default:
        $flags = JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE;
        echo json_encode($answer->result, $flags), "\\n";
}
"""


class Php(Language):
    slug = "php"
    label = "PHP"
    pygments_lexer = "php"
    filename = "call_model.php"
    order = 90

    def render(self, ctx: SnippetContext) -> str:
        if ctx.content_type == "binary":
            input_code = f"$input = base64_decode({php_string(ctx.body_base64)});"
        else:
            input_code = f"$input = {php_string(ctx.body_text)};"
        return fill(
            TEMPLATE,
            header=ctx.comment("//", run=f"php {self.filename}"),
            placeholder=php_string(ctx.key_placeholder),
            endpoint=php_string(ctx.endpoint),
            input=input_code,
            media_type=ctx.media_type,  # a constant: nothing to escape
        )
