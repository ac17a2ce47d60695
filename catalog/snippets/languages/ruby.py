"""Ruby, standard library only (net/http, json)."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import ruby_string

TEMPLATE = """\
{{ header }}
require "json"
require "net/http"

api_key = ENV["MARKETPLACE_API_KEY"].to_s
api_key = {{ placeholder }} if api_key.empty?
uri = URI({{ endpoint }})

{{ input }}

request = Net::HTTP::Post.new(uri)
request["Authorization"] = "Simple #{api_key}"
request["Content-Type"] = {{ media_type }}
request.body = input
response = Net::HTTP.start(uri.hostname, uri.port,
                           use_ssl: uri.scheme == "https", read_timeout: 310) do |http|
  http.request(request)
end

begin
  answer = JSON.parse(response.body)
rescue JSON::ParserError
  abort "HTTP #{response.code}: #{response.body[0, 300]}"
end
abort "#{answer["error"]["error_type"]}: #{answer["error"]["message"]}" if answer["error"]

result = answer["result"]
case answer["metadata"]["content_type"]
when "binary"
  data = result.unpack1("m")
  File.binwrite("output.bin", data)
  puts "Wrote #{data.bytesize} bytes to output.bin"
when "text"
  puts result
else
  puts JSON.pretty_generate(result)
end
"""


class Ruby(Language):
    slug = "ruby"
    label = "Ruby"
    pygments_lexer = "ruby"
    filename = "call_model.rb"
    order = 80

    def render(self, ctx: SnippetContext) -> str:
        if ctx.content_type == "binary":
            input_code = f'input = {ruby_string(ctx.body_base64)}.unpack1("m")  # base64'
        else:
            input_code = f"input = {ruby_string(ctx.body_text)}"
        return fill(
            TEMPLATE,
            header=ctx.comment("#", run=f"ruby {self.filename}"),
            placeholder=ruby_string(ctx.key_placeholder),
            endpoint=ruby_string(ctx.endpoint),
            input=input_code,
            media_type=ruby_string(ctx.media_type),
        )
