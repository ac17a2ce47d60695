"""Go, standard library only (net/http)."""

from __future__ import annotations

import re

from .. import ENV_API_KEY, Language, SnippetContext, fill
from ..literals import go_string

TEMPLATE = """\
{{ header }}
package main

import (
{{ imports }}
)

func main() {
{{ input }}    request, _ := http.NewRequest("POST", {{ endpoint }},
        {{ reader }})
    request.Header.Set("Authorization", "Simple "+os.Getenv("MARKETPLACE_API_KEY"))
    request.Header.Set("Content-Type", {{ media_type }})
    response, err := http.DefaultClient.Do(request)
    if err != nil {
        log.Fatal(err)
    }
    body, err := io.ReadAll(response.Body)
    if err != nil {
        log.Fatal(err)
    }
    if response.StatusCode != http.StatusOK {
        log.Fatalf("%s: %s", response.Status, body)
    }
{{ output }}
}
"""

PRINT = "    fmt.Println(string(body))\n"
WRITE = """\
    if err := os.WriteFile("output.bin", body, 0o644); err != nil {
        log.Fatal(err)
    }
    fmt.Println("Wrote the result to output.bin")
"""


def _tabs(text: str) -> str:
    """gofmt indents with tabs: each leading group of four spaces becomes one."""
    return re.sub(r"(?m)^((?:    )+)", lambda m: "\t" * (len(m.group(1)) // 4), text)


class Go(Language):
    slug = "go"
    label = "Go"
    pygments_lexer = "go"
    filename = "call_model.go"
    order = 60

    def render(self, ctx: SnippetContext) -> str:
        imports = ["fmt", "io", "log", "net/http", "os"]
        if ctx.content_type == "binary":
            imports += ["bytes", "encoding/base64"]
            # A constant that is valid base64: there is no error to check.
            decoded = f"base64.StdEncoding.DecodeString({go_string(ctx.body_base64)})"
            input_code, reader = f"    input, _ := {decoded}\n", "bytes.NewReader(input)"
        else:
            imports.append("strings")
            input_code, reader = "", f"strings.NewReader({go_string(ctx.body_text)})"
        how = f"Then: export {ENV_API_KEY}=<your key>"
        return _tabs(
            fill(
                TEMPLATE,
                header=ctx.comment("//", run=f"go run {self.filename}", how=how),
                imports="\n".join(f'    "{name}"' for name in sorted(imports)),
                input=input_code,
                endpoint=go_string(ctx.raw_endpoint),
                reader=reader,
                media_type=go_string(ctx.media_type),
                output=(WRITE if ctx.result_type == "binary" else PRINT).rstrip("\n"),
            )
        )
