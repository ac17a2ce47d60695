"""Python with the Algorithmia client, unchanged: only the API address is this marketplace,
and an owner with `-` is written by its client alias (`-` as `_`), which the client accepts."""

from __future__ import annotations

from marketplace.accounts.namespaces import client_alias

from .. import Language, SnippetContext, fill
from ..literals import python_string
from .python_requests import payload_assignment

TEMPLATE = """\
{{ header }}
{{ imports }}import json
import os
import sys

import Algorithmia
from Algorithmia.errors import AlgorithmException

API_KEY = os.environ.get("MARKETPLACE_API_KEY") or {{ placeholder }}

client = Algorithmia.client(API_KEY, {{ base_url }})
algo = client.algo({{ target }})

{{ payload }}

try:
    response = algo.pipe(payload)
except AlgorithmException as error:
    sys.exit(f"{error.error_type or 'Error'}: {error.message}")

if response.metadata.content_type == "binary":
    with open("output.bin", "wb") as file:
        file.write(response.result)
    print(f"Wrote {len(response.result)} bytes to output.bin")
elif response.metadata.content_type == "text":
    print(response.result)
else:
    print(json.dumps(response.result, indent=2, ensure_ascii=False))
"""


def algorithmia_target(ctx: SnippetContext) -> str:
    """owner/name[/version] as the Algorithmia client accepts it: the owner by its client
    alias, since the client refuses an owner with `-` before sending anything
    (marketplace/accounts/namespaces.py)."""
    return "/".join([client_alias(ctx.owner), ctx.name] + ([ctx.version] if ctx.version else []))


class PythonAlgorithmia(Language):
    slug = "python-algorithmia"
    label = "Python (Algorithmia client)"
    pygments_lexer = "python"
    filename = "call_model_algorithmia.py"
    order = 30

    def render(self, ctx: SnippetContext) -> str:
        extra = []
        if ctx.content_type == "json" and isinstance(ctx.data, str):
            extra.append("The client sends a str as text/plain; the model receives the same str.")
        if ctx.content_type == "binary":
            extra.append("The client sends bytes as application/octet-stream.")
        if client_alias(ctx.owner) != ctx.owner:
            extra.append(
                f"The client accepts no '-' in an owner: {client_alias(ctx.owner)} is how it "
                f"writes {ctx.owner}."
            )
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "#", run=f"pip install algorithmia && python {self.filename}", extra=extra
            ),
            placeholder=python_string(ctx.key_placeholder),
            base_url=python_string(ctx.base_url),
            target=python_string(algorithmia_target(ctx)),
            payload=payload_assignment(ctx),
            imports="import base64\n" if ctx.content_type == "binary" else "",
        )
