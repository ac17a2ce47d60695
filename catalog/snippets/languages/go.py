"""Go, standard library only (net/http, encoding/json)."""

from __future__ import annotations

import re

from .. import Language, SnippetContext, fill
from ..literals import go_string

TEMPLATE = """\
{{ header }}
package main

import (
{{ imports }}
)

const endpoint = {{ endpoint }}

func main() {
    apiKey := os.Getenv("MARKETPLACE_API_KEY")
    if apiKey == "" {
        apiKey = {{ placeholder }}
    }
{{ input }}

    request, err := http.NewRequest("POST", endpoint, bytes.NewReader(input))
    if err != nil {
        fail(err)
    }
    request.Header.Set("Authorization", "Simple "+apiKey)
    request.Header.Set("Content-Type", {{ media_type }})
    client := &http.Client{Timeout: 310 * time.Second}
    response, err := client.Do(request)
    if err != nil {
        fail(err)
    }
    defer response.Body.Close()
    body, err := io.ReadAll(response.Body)
    if err != nil {
        fail(err)
    }

    var answer struct {
        Result   json.RawMessage `json:"result"`
        Metadata struct {
            ContentType string `json:"content_type"`
        } `json:"metadata"`
        Error *struct {
            Message   string `json:"message"`
            ErrorType string `json:"error_type"`
        } `json:"error"`
    }
    if err := json.Unmarshal(body, &answer); err != nil {
        fail(fmt.Errorf("HTTP %d: %.300s", response.StatusCode, body))
    }
    if answer.Error != nil {
        fail(fmt.Errorf("%s: %s", answer.Error.ErrorType, answer.Error.Message))
    }

    switch answer.Metadata.ContentType {
    case "binary":
        var data []byte // encoding/json decodes a base64 string into []byte
        if err := json.Unmarshal(answer.Result, &data); err != nil {
            fail(err)
        }
        if err := os.WriteFile("output.bin", data, 0o644); err != nil {
            fail(err)
        }
        fmt.Printf("Wrote %d bytes to output.bin\\n", len(data))
    case "text":
        var text string
        if err := json.Unmarshal(answer.Result, &text); err != nil {
            fail(err)
        }
        fmt.Println(text)
    default:
        var pretty bytes.Buffer
        if err := json.Indent(&pretty, answer.Result, "", "  "); err != nil {
            fail(err)
        }
        fmt.Println(pretty.String())
    }
}

func fail(err error) {
    fmt.Fprintln(os.Stderr, err)
    os.Exit(1)
}
"""

IMPORTS = ["bytes", "encoding/json", "fmt", "io", "net/http", "os", "time"]


def _tabs(text: str) -> str:
    """gofmt indents with tabs: each leading group of four spaces becomes one."""
    return re.sub(r"(?m)^((?:    )+)", lambda m: "\t" * (len(m.group(1)) // 4), text)


_TEMPLATE = _tabs(TEMPLATE)


class Go(Language):
    slug = "go"
    label = "Go"
    pygments_lexer = "go"
    filename = "call_model.go"
    order = 60

    def render(self, ctx: SnippetContext) -> str:
        imports = list(IMPORTS)
        if ctx.content_type == "binary":
            imports.append("encoding/base64")
            decoded = f"base64.StdEncoding.DecodeString({go_string(ctx.body_base64)})"
            input_code = f"\tinput, err := {decoded}\n\tif err != nil {{\n\t\tfail(err)\n\t}}"
        else:
            input_code = f"\tinput := []byte({go_string(ctx.body_text)})"
        return fill(
            _TEMPLATE,
            header=ctx.comment("//", run=f"go run {self.filename}"),
            imports="\n".join(f'\t"{name}"' for name in sorted(imports)),
            endpoint=go_string(ctx.endpoint),
            placeholder=go_string(ctx.key_placeholder),
            input=input_code,
            media_type=go_string(ctx.media_type),
        )
