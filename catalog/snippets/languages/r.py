"""R with httr2, which stops with the answer's status and body on an error."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import r_string

TEMPLATE = """\
{{ header }}
library(httr2)

key <- Sys.getenv("MARKETPLACE_API_KEY", {{ placeholder }})
response <- request({{ endpoint }}) |>
  req_headers(Authorization = paste("Simple", key)) |>
  req_body_raw({{ body }}, type = {{ media_type }}) |>
  req_error(body = function(resp) resp_body_string(resp)) |>
  req_perform()
{{ output }}
"""

PRINT = 'cat(resp_body_string(response), "\\n", sep = "")'
WRITE = 'writeBin(resp_body_raw(response), "output.bin")\ncat("Wrote the result to output.bin\\n")'


class R(Language):
    slug = "r"
    label = "R"
    pygments_lexer = "r"
    filename = "call_model.R"
    order = 100

    def render(self, ctx: SnippetContext) -> str:
        text = None if ctx.content_type == "binary" else ctx.body_text
        if text is not None and "\x00" not in text:
            body = f"charToRaw(enc2utf8({r_string(text)}))"
        else:
            # Bytes, or text holding NUL (which no R string can): base64.
            body = f"jsonlite::base64_dec({r_string(ctx.body_base64)})"
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "#",
                run=f'Rscript {self.filename}   (R 4.1+; install.packages("httr2") once)',
            ),
            placeholder=r_string(ctx.key_placeholder),
            endpoint=r_string(ctx.raw_endpoint),
            body=body,
            media_type=r_string(ctx.media_type),
            output=WRITE if ctx.result_type == "binary" else PRINT,
        )
