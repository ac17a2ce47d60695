"""The project's command-line tool, `marketplace call`."""

from __future__ import annotations

import json

from .. import ENV_API_KEY, Language, SnippetContext, fill
from ..literals import shell_quote

TEMPLATE = """\
#!/usr/bin/env bash
{{ header }}
set -euo pipefail

{{ call }}
"""


class Cli(Language):
    slug = "cli"
    label = "Command line"
    pygments_lexer = "bash"
    filename = "call_model_cli.sh"
    order = 130

    def render(self, ctx: SnippetContext) -> str:
        command = (
            f"marketplace call {shell_quote(ctx.target)} --api-url {shell_quote(ctx.base_url)}"
        )
        extra = ["The marketplace command comes with the marketplace Python package."]
        if ctx.content_type == "binary":
            extra.append("-o writes the result to output.bin.")
            call = (
                f"printf '%s' {shell_quote(ctx.body_base64)} | base64 --decode |\n"
                f"  {command} --data-file - -o output.bin"
            )
        elif ctx.content_type == "json":
            call = f"{command} --data={shell_quote(ctx.json_text)}"
        elif "\x00" not in ctx.data:
            call = f"{command} --text={shell_quote(ctx.data)}"
        else:
            # No shell word holds NUL; as a JSON string the model receives the same text.
            call = f"{command} --data={shell_quote(json.dumps(ctx.data, ensure_ascii=False))}"
        how = (
            f"Save it once with `marketplace login`, or export {ENV_API_KEY}={ctx.key_placeholder}"
            " with your key in its place."
        )
        return fill(
            TEMPLATE,
            header=ctx.comment("#", run=f"bash {self.filename}", extra=extra, how=how),
            call=call,
        )
