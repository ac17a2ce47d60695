"""Python with requests."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import python_literal, python_string

TEMPLATE = """\
{{ header }}
import {{ imports }}, requests

key = os.environ.get("MARKETPLACE_API_KEY", {{ placeholder }})
response = requests.post(
    {{ endpoint }},
    headers={{ headers }},
    {{ body }},
)
if not response.ok:
    raise SystemExit(f"{response.status_code}: {response.text}")
{{ output }}
"""


def python_body(ctx: SnippetContext, *, indent: int) -> str:
    """The sample input as a Python expression: a JSON value, str or bytes."""
    if ctx.content_type == "binary":
        return f"base64.b64decode({python_string(ctx.body_base64)})"
    return python_literal(ctx.data, indent=indent)


def python_output(ctx: SnippetContext, result: str, *, text: str) -> str:
    """Print the result (`text`, its text), or write it to output.bin (`result`, bytes)."""
    if ctx.result_type == "binary":
        return f'open("output.bin", "wb").write({result})\nprint("Wrote the result to output.bin")'
    return f"print({text})"


class PythonRequests(Language):
    slug = "python"
    label = "Python (requests)"
    pygments_lexer = "python"
    filename = "call_model.py"
    order = 20

    def render(self, ctx: SnippetContext) -> str:
        authorization = '"Authorization": f"Simple {key}"'
        if ctx.content_type == "json":
            headers = "{" + authorization + "}"
            body = "json=" + python_body(ctx, indent=len("    json="))
        else:
            headers = "{" + authorization + f', "Content-Type": "{ctx.media_type}"' + "}"
            body = "data=" + python_body(ctx, indent=len("    data="))
            if ctx.content_type == "text":
                body += ".encode()"
        return fill(
            TEMPLATE,
            header=ctx.comment("#", run=f"pip install requests && python {self.filename}"),
            imports="base64, os" if ctx.content_type == "binary" else "os",
            placeholder=python_string(ctx.key_placeholder),
            endpoint=python_string(ctx.raw_endpoint),
            headers=headers,
            body=body,
            output=python_output(ctx, "response.content", text="response.text"),
        )
