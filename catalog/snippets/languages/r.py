"""R with httr2 (and jsonlite, which httr2 depends on)."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import r_string

TEMPLATE = """\
{{ header }}
library(httr2)

api_key <- Sys.getenv("MARKETPLACE_API_KEY")
if (api_key == "") api_key <- {{ placeholder }}
endpoint <- {{ endpoint }}

{{ input }}

response <- request(endpoint) |>
  req_headers(Authorization = paste("Simple", api_key)) |>
  req_body_raw(input, type = {{ media_type }}) |>
  req_timeout(310) |>
  req_error(is_error = function(resp) FALSE) |>
  req_perform()

body <- resp_body_string(response, encoding = "UTF-8")
answer <- tryCatch(
  jsonlite::fromJSON(body, simplifyVector = FALSE),
  error = function(e) {
    stop("HTTP ", resp_status(response), ": ", substr(body, 1, 300), call. = FALSE)
  }
)
if (!is.null(answer[["error"]])) {
  stop(answer[["error"]][["error_type"]], ": ", answer[["error"]][["message"]], call. = FALSE)
}

result <- answer[["result"]]
switch(answer[["metadata"]][["content_type"]],
  binary = {
    data <- jsonlite::base64_dec(result)
    writeBin(data, "output.bin")
    cat("Wrote", length(data), "bytes to output.bin\\n")
  },
  text = cat(result, "\\n", sep = ""),
  cat(jsonlite::toJSON(result, auto_unbox = TRUE, null = "null", digits = NA, pretty = TRUE),
      "\\n", sep = "")
)
"""


class R(Language):
    slug = "r"
    label = "R"
    pygments_lexer = "r"
    filename = "call_model.R"
    order = 100

    def render(self, ctx: SnippetContext) -> str:
        text = None if ctx.content_type == "binary" else ctx.body_text
        if text is not None and "\x00" not in text:
            input_code = f"input <- charToRaw(enc2utf8({r_string(text)}))"
        else:
            # Bytes, or text holding NUL (which no R string can): base64.
            input_code = f"input <- jsonlite::base64_dec({r_string(ctx.body_base64)})"
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "#",
                run=f'Rscript {self.filename}   (R 4.1+; install.packages("httr2") once)',
            ),
            placeholder=r_string(ctx.key_placeholder),
            endpoint=r_string(ctx.endpoint),
            input=input_code,
            media_type=r_string(ctx.media_type),
        )
