"""Python with requests."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import python_literal, python_string

TEMPLATE = """\
{{ header }}
import base64
import json
import os
import sys

import requests

API_KEY = os.environ.get("MARKETPLACE_API_KEY") or {{ placeholder }}
ENDPOINT = {{ endpoint }}

{{ payload }}

response = requests.post(
    ENDPOINT,
    {{ body }},
    headers={{ headers }},
    timeout=310,
)
try:
    answer = response.json()
except ValueError:
    sys.exit(f"HTTP {response.status_code}: {response.text[:300]}")
if "error" in answer:
    error = answer["error"]
    sys.exit(f"{error.get('error_type', 'Error')}: {error.get('message')}")

result = answer["result"]
kind = answer["metadata"]["content_type"]
if kind == "binary":
    data = base64.b64decode(result)
    with open("output.bin", "wb") as file:
        file.write(data)
    print(f"Wrote {len(data)} bytes to output.bin")
elif kind == "text":
    print(result)
else:
    print(json.dumps(result, indent=2, ensure_ascii=False))
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
