"""cURL, in a bash script: prints the bare result (`?output=raw`), or writes a binary one to
output.bin; on an error status, curl prints the error body and exits non-zero."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import shell_quote

TEMPLATE = """\
#!/usr/bin/env bash
{{ header }}
{{ call }}
"""

CURL = """\
curl -sS --fail-with-body {{ output }}{{ endpoint }} \\
{{ indent }}-H "Authorization: Simple ${MARKETPLACE_API_KEY:-{{ placeholder }}}" \\
{{ indent }}-H {{ content_type }} \\
{{ indent }}{{ data }}"""


class Curl(Language):
    slug = "curl"
    label = "cURL"
    pygments_lexer = "bash"
    filename = "call_model.sh"
    order = 10

    def render(self, ctx: SnippetContext) -> str:
        text = None if ctx.content_type == "binary" else ctx.body_text
        if text is not None and "\x00" not in text:
            # --data-raw sends the word as it is: no @file reading, no newline stripping.
            call = fill(
                CURL, data="--data-raw " + shell_quote(text), indent="  ", **self._common(ctx)
            )
        else:
            # Bytes (or text holding NUL, which no shell word can) go through base64 and stdin.
            piped = fill(CURL, data="--data-binary @-", indent="    ", **self._common(ctx))
            call = (
                f"set -o pipefail\nprintf '%s' {shell_quote(ctx.body_base64)} | base64 --decode |\n"
                f"  {piped}"
            )
        return fill(
            TEMPLATE,
            header=ctx.comment("#", run=f"bash {self.filename}"),
            call=call,
        )

    @staticmethod
    def _common(ctx: SnippetContext) -> dict[str, str]:
        if ctx.result_type == "binary":
            output = "-o output.bin -w 'Wrote the result to output.bin\\n' "
        else:
            output = "-w '\\n' "  # the result ends with no newline
        return {
            "endpoint": shell_quote(ctx.raw_endpoint),
            "placeholder": ctx.key_placeholder,
            "content_type": shell_quote(f"Content-Type: {ctx.media_type}"),
            "output": output,
        }
