"""JavaScript in a web page (or the browser's console) with fetch."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import js_string
from .nodejs import input_expression

TEMPLATE = """\
{{ header }}
const API_KEY = {{ placeholder }};
const ENDPOINT = {{ endpoint }};

const input = {{ input }};

const response = await fetch(ENDPOINT, {
  method: "POST",
  headers: { Authorization: `Simple ${API_KEY}`, "Content-Type": {{ media_type }} },
  body: {{ body }},
});
const answer = await response.json();
if (answer.error) {
  console.error(`${answer.error.error_type}: ${answer.error.message}`);
} else if (answer.metadata.content_type === "binary") {
  const bytes = Uint8Array.from(atob(answer.result), (c) => c.charCodeAt(0));
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes]));
  link.download = "output.bin";
  link.click();
  console.log(`Downloaded ${bytes.length} bytes as output.bin`);
} else if (answer.metadata.content_type === "text") {
  console.log(answer.result);
} else {
  console.log(JSON.stringify(answer.result, null, 2));
}
"""

BASE64_BYTES = "Uint8Array.from(atob(BASE64), (c) => c.charCodeAt(0))"


class JavaScriptFetch(Language):
    slug = "javascript"
    label = "JavaScript (fetch)"
    pygments_lexer = "javascript"
    filename = "call_model.js"
    order = 40

    def render(self, ctx: SnippetContext) -> str:
        extra = [
            "Pages of other sites may call the API (CORS), unless its operator limits the origins.",
            "Anyone who can read a web page can read a key in it: call from your own server",
            "instead, or use a key limited to this model.",
        ]
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "//",
                run=f"paste it into the browser's console on a page of {ctx.base_url}, or "
                'load it with <script type="module" src="call_model.js"></script>',
                extra=extra,
                how=f"Put it in place of {ctx.key_placeholder} below.",
            ),
            placeholder=js_string(ctx.key_placeholder),
            endpoint=js_string(ctx.endpoint),
            input=input_expression(ctx, binary=BASE64_BYTES),
            media_type=js_string(ctx.media_type),
            body="JSON.stringify(input)" if ctx.content_type == "json" else "input",
        )
