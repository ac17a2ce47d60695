"""Rust with reqwest (blocking)."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import rust_string

TEMPLATE = """\
{{ header }}
// Cargo.toml [dependencies]: reqwest = { version = "0.12", features = ["blocking"] }{{ crates }}
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::var("MARKETPLACE_API_KEY").unwrap_or({{ placeholder }}.into());
    let response = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(310))
        .build()?
        .post({{ endpoint }})
        .header("Authorization", format!("Simple {key}"))
        .header("Content-Type", {{ media_type }})
        .body({{ body }})
        .send()?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{status}: {}", response.text()?).into());
    }
{{ output }}
    Ok(())
}
"""

PRINT = '    println!("{}", response.text()?);'
WRITE = """\
    std::fs::write("output.bin", response.bytes()?)?;
    println!("Wrote the result to output.bin");"""


class Rust(Language):
    slug = "rust"
    label = "Rust"
    pygments_lexer = "rust"
    filename = "main.rs"
    order = 120

    def render(self, ctx: SnippetContext) -> str:
        crates = ""
        if ctx.content_type == "binary":
            crates = ', base64 = "0.22"'
            engine = "&base64::engine::general_purpose::STANDARD"
            body = f"base64::Engine::decode({engine}, {rust_string(ctx.body_base64)})?"
        else:
            body = rust_string(ctx.body_text)
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "//", run="cargo new call_model, put this in src/main.rs, then: cargo run"
            ),
            crates=crates,
            placeholder=rust_string(ctx.key_placeholder),
            endpoint=rust_string(ctx.raw_endpoint),
            media_type=rust_string(ctx.media_type),
            body=body,
            output=WRITE if ctx.result_type == "binary" else PRINT,
        )
