"""The project's command-line tool, `marketplace call`."""

from __future__ import annotations

import json

from .. import ENV_API_KEY, Language, SnippetContext, fill
from ..literals import shell_quote

TEMPLATE = """\
#!/usr/bin/env bash
{{ header }}
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
        if ctx.result_type == "binary":
            command += " -o output.bin"
        if ctx.content_type == "binary":
            call = (
                f"set -o pipefail\nprintf '%s' {shell_quote(ctx.body_base64)} | base64 --decode |\n"
                f"  {command} --data-file -"
            )
        elif ctx.content_type == "json":
            call = f"{command} --data={shell_quote(ctx.json_text)}"
        elif "\x00" not in ctx.data:
            call = f"{command} --text={shell_quote(ctx.data)}"
        else:
            # No shell word holds NUL; as a JSON string the model receives the same text.
            call = f"{command} --data={shell_quote(json.dumps(ctx.data, ensure_ascii=False))}"
        how = f"Then: marketplace login, or export {ENV_API_KEY}=<your key>"
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "#",
                run=f"bash {self.filename}   (marketplace comes with this site's Python package)",
                how=how,
            ),
            call=call,
        )
