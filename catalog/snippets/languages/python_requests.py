"""Python with requests."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import python_literal, python_string

TEMPLATE = """\
{{ header }}
import base64, json, os

import requests

{{ payload }}
API_KEY = os.environ.get("MARKETPLACE_API_KEY") or {{ placeholder }}
answer = requests.post(
    {{ endpoint }},
    {{ body }},
    headers={{ headers }},
    timeout=310,
).json()
if "error" in answer:
    raise SystemExit(f"{answer['error'].get('error_type')}: {answer['error']['message']}")
result, kind = answer["result"], answer["metadata"]["content_type"]
if kind == "binary":
    open("output.bin", "wb").write(base64.b64decode(result))
    print("Wrote the result to output.bin")
else:
    print(result if kind == "text" else json.dumps(result, indent=2, ensure_ascii=False))
"""

AUTHORIZATION = '"Authorization": f"Simple {API_KEY}"'


def payload_assignment(ctx: SnippetContext) -> str:
    """`payload = ...`: the sample input as a Python value (bytes for a binary input)."""
    if ctx.content_type == "binary":
        return f"payload = base64.b64decode({python_string(ctx.body_base64)})"
    return f"payload = {python_literal(ctx.data, indent=len('payload = '))}"


class PythonRequests(Language):
    slug = "python"
    label = "Python (requests)"
    pygments_lexer = "python"
    filename = "call_model.py"
    order = 20

    def render(self, ctx: SnippetContext) -> str:
        if ctx.content_type == "json":
            body, headers = "json=payload", "{" + AUTHORIZATION + "}"
        else:
            body = "data=payload.encode()" if ctx.content_type == "text" else "data=payload"
            headers = "{" + AUTHORIZATION + f', "Content-Type": "{ctx.media_type}"' + "}"
        return fill(
            TEMPLATE,
            header=ctx.comment("#", run=f"pip install requests && python {self.filename}"),
            placeholder=python_string(ctx.key_placeholder),
            endpoint=python_string(ctx.endpoint),
            payload=payload_assignment(ctx),
            body=body,
            headers=headers,
        )
