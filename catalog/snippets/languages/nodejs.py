"""Node.js 18+ with its built-in fetch, as an ES module (top-level await)."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import js_string, js_value

TEMPLATE = """\
{{ header }}
import { writeFileSync } from "node:fs";

const API_KEY = process.env.MARKETPLACE_API_KEY || {{ placeholder }};
const ENDPOINT = {{ endpoint }};

const input = {{ input }};

const response = await fetch(ENDPOINT, {
  method: "POST",
  headers: { Authorization: `Simple ${API_KEY}`, "Content-Type": {{ media_type }} },
  body: {{ body }},
  signal: AbortSignal.timeout(310_000),
});
const text = await response.text();
let answer;
try {
  answer = JSON.parse(text);
} catch {
  console.error(`HTTP ${response.status}: ${text.slice(0, 300)}`);
  process.exit(1);
}
if (answer.error) {
  console.error(`${answer.error.error_type}: ${answer.error.message}`);
  process.exit(1);
}

const kind = answer.metadata.content_type;
if (kind === "binary") {
  const data = Buffer.from(answer.result, "base64");
  writeFileSync("output.bin", data);
  console.log(`Wrote ${data.length} bytes to output.bin`);
} else if (kind === "text") {
  console.log(answer.result);
} else {
  console.log(JSON.stringify(answer.result, null, 2));
}
"""


def input_expression(ctx: SnippetContext, *, binary: str) -> str:
    """The sample input as a JavaScript expression; `binary` turns a base64 literal into
    bytes."""
    if ctx.content_type == "binary":
        return binary.replace("BASE64", js_string(ctx.body_base64))
    if ctx.content_type == "text":
        return js_string(ctx.data)
    return js_value(ctx.data)


class NodeJs(Language):
    slug = "nodejs"
    label = "Node.js"
    pygments_lexer = "javascript"
    filename = "call_model.mjs"
    order = 50

    def render(self, ctx: SnippetContext) -> str:
        return fill(
            TEMPLATE,
            header=ctx.comment("//", run=f"node {self.filename}   (Node.js 18 or newer)"),
            placeholder=js_string(ctx.key_placeholder),
            endpoint=js_string(ctx.endpoint),
            input=input_expression(ctx, binary='Buffer.from(BASE64, "base64")'),
            media_type=js_string(ctx.media_type),
            body="JSON.stringify(input)" if ctx.content_type == "json" else "input",
        )
