"""JavaScript in a web page (or the browser's console) with fetch."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import js_string
from .nodejs import js_body

TEMPLATE = """\
{{ header }}
const response = await fetch({{ endpoint }}, {
  method: "POST",
  headers: { Authorization: {{ authorization }}, "Content-Type": {{ media_type }} },
  body: {{ body }},
});
if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);
{{ output }}
"""

BROWSER_OUTPUT = {
    "binary": """\
const link = document.createElement("a");
link.href = URL.createObjectURL(await response.blob());
link.download = "output.bin";
link.click();
console.log("Downloaded the result as output.bin");""",
    "text": "console.log(await response.text());",
}


class JavaScriptFetch(Language):
    slug = "javascript"
    label = "JavaScript (fetch)"
    pygments_lexer = "javascript"
    filename = "call_model.js"
    order = 40

    def render(self, ctx: SnippetContext) -> str:
        extra = [
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
            endpoint=js_string(ctx.raw_endpoint),
            authorization=js_string(f"Simple {ctx.key_placeholder}"),
            media_type=js_string(ctx.media_type),
            body=js_body(ctx, binary="Uint8Array.from(atob(BASE64), (c) => c.charCodeAt(0))"),
            output=BROWSER_OUTPUT["binary" if ctx.result_type == "binary" else "text"],
        )
