"""Ruby, standard library only (net/http)."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import ruby_string

TEMPLATE = """\
{{ header }}
require "net/http"

key = ENV.fetch("MARKETPLACE_API_KEY", {{ placeholder }})
response = Net::HTTP.post(URI({{ endpoint }}),
                          {{ body }},
                          "Authorization" => "Simple #{key}", "Content-Type" => {{ media_type }})
abort "#{response.code}: #{response.body}" unless response.is_a?(Net::HTTPSuccess)
{{ output }}
"""

PRINT = "puts response.body"
WRITE = 'File.binwrite("output.bin", response.body)\nputs "Wrote the result to output.bin"'


class Ruby(Language):
    slug = "ruby"
    label = "Ruby"
    pygments_lexer = "ruby"
    filename = "call_model.rb"
    order = 80

    def render(self, ctx: SnippetContext) -> str:
        if ctx.content_type == "binary":
            body = f'{ruby_string(ctx.body_base64)}.unpack1("m")'  # base64
        else:
            body = ruby_string(ctx.body_text)
        return fill(
            TEMPLATE,
            header=ctx.comment("#", run=f"ruby {self.filename}"),
            placeholder=ruby_string(ctx.key_placeholder),
            endpoint=ruby_string(ctx.raw_endpoint),
            body=body,
            media_type=ruby_string(ctx.media_type),
            output=WRITE if ctx.result_type == "binary" else PRINT,
        )
