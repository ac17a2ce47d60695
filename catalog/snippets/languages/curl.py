"""cURL, in a bash script: prints the API's JSON answer (result and metadata, or error)."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import shell_quote

TEMPLATE = """\
#!/usr/bin/env bash
{{ header }}
set -euo pipefail

API_KEY="${MARKETPLACE_API_KEY:-{{ placeholder }}}"

{{ call }}
"""

CURL = """\
curl --silent --show-error --request POST {{ endpoint }} \\
{{ indent }}--header "Authorization: Simple $API_KEY" \\
{{ indent }}--header {{ content_type }} \\
{{ indent }}{{ data }} \\
{{ indent }}--write-out '\\n'"""


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
            call = f"printf '%s' {shell_quote(ctx.body_base64)} | base64 --decode |\n  {piped}"
        extra = [
            'The answer is JSON: {"result": ..., "metadata": {"content_type": ...}} or '
            '{"error": {...}};',
            "add ?output=raw to the URL for the bare result "
            "(and --output output.bin for a binary one).",
        ]
        return fill(
            TEMPLATE,
            header=ctx.comment("#", run=f"bash {self.filename}", extra=extra),
            placeholder=ctx.key_placeholder,
            call=call,
        )

    @staticmethod
    def _common(ctx: SnippetContext) -> dict[str, str]:
        return {
            "endpoint": shell_quote(ctx.endpoint),
            "content_type": shell_quote(f"Content-Type: {ctx.media_type}"),
        }
