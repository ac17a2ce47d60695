"""Node.js 18+ with its built-in fetch, as an ES module (top-level await)."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import js_string, js_value

TEMPLATE = """\
{{ header }}
{{ imports }}const key = process.env.MARKETPLACE_API_KEY || {{ placeholder }};
const response = await fetch({{ endpoint }}, {
  method: "POST",
  headers: { Authorization: `Simple ${key}`, "Content-Type": {{ media_type }} },
  body: {{ body }},
});
if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);
{{ output }}
"""

NODE_OUTPUT = {
    "binary": 'writeFileSync("output.bin", Buffer.from(await response.arrayBuffer()));\n'
    'console.log("Wrote the result to output.bin");',
    "text": "console.log(await response.text());",
}


def js_body(ctx: SnippetContext, *, binary: str) -> str:
    """The request body: the JSON document, the text, or the bytes (`binary`, an expression
    of BASE64)."""
    if ctx.content_type == "json":
        return f"JSON.stringify({js_value(ctx.data, indent=2, width=60)})"
    if ctx.content_type == "text":
        return js_string(ctx.data)
    return binary.replace("BASE64", js_string(ctx.body_base64))


class NodeJs(Language):
    slug = "nodejs"
    label = "Node.js"
    pygments_lexer = "javascript"
    filename = "call_model.mjs"
    order = 50

    def render(self, ctx: SnippetContext) -> str:
        binary_output = ctx.result_type == "binary"
        return fill(
            TEMPLATE,
            header=ctx.comment("//", run=f"node {self.filename}   (Node.js 18 or newer)"),
            imports='import { writeFileSync } from "node:fs";\n\n' if binary_output else "",
            placeholder=js_string(ctx.key_placeholder),
            endpoint=js_string(ctx.raw_endpoint),
            media_type=js_string(ctx.media_type),
            body=js_body(ctx, binary='Buffer.from(BASE64, "base64")'),
            output=NODE_OUTPUT["binary" if binary_output else "text"],
        )
