"""Python with the Algorithmia client, unchanged: only the API address is this marketplace,
and an owner with `-` is written by its client alias (`-` as `_`), which the client accepts.
The client raises for a model error (AlgorithmException) and a refused call."""

from __future__ import annotations

from marketplace.accounts.namespaces import client_alias

from .. import Language, SnippetContext, fill
from ..literals import python_string
from .python_requests import python_body, python_output

TEMPLATE = """\
{{ header }}
import {{ imports }}, Algorithmia

key = os.environ.get("MARKETPLACE_API_KEY", {{ placeholder }})
client = Algorithmia.client(key, {{ base_url }})
{{ call }}
{{ output }}
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
        if client_alias(ctx.owner) != ctx.owner:
            extra.append(
                f"The client accepts no '-' in an owner: {client_alias(ctx.owner)} is how it "
                f"writes {ctx.owner}."
            )
        imports = ["os"]
        if ctx.content_type == "binary":
            imports.insert(0, "base64")
        if ctx.result_type == "json":
            imports.insert(0, "json")
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "#", run=f"pip install algorithmia && python {self.filename}", extra=extra
            ),
            imports=", ".join(imports),
            placeholder=python_string(ctx.key_placeholder),
            base_url=python_string(ctx.base_url),
            target=python_string(algorithmia_target(ctx)),
            call=self._call(ctx),
            output=python_output(
                ctx,
                "result",
                text="json.dumps(result)" if ctx.result_type == "json" else "result",
            ),
        )

    @staticmethod
    def _call(ctx: SnippetContext) -> str:
        """`result = client.algo(...).pipe(input).result`, on one line when it fits."""
        head = f"result = client.algo({python_string(algorithmia_target(ctx))}).pipe("
        one_line = f"{head}{python_body(ctx, indent=0)}).result"
        if "\n" not in one_line and len(one_line) <= 88:
            return one_line
        return f"{head}\n    {python_body(ctx, indent=4)}\n).result"
