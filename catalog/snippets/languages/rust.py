"""Rust with reqwest (blocking) and serde_json."""

from __future__ import annotations

from .. import Language, SnippetContext, fill
from ..literals import rust_string

TEMPLATE = """\
{{ header }}
//
// Cargo.toml:
//   [dependencies]
//   reqwest = { version = "0.12", features = ["blocking"] }
//   serde_json = "1"
//   base64 = "0.22"
use base64::Engine;
use std::{env, fs, process, time::Duration};

const ENDPOINT: &str = {{ endpoint }};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api_key = env::var("MARKETPLACE_API_KEY")
        .ok()
        .filter(|key| !key.is_empty())
        .unwrap_or_else(|| {{ placeholder }}.to_string());
{{ input }}

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(310))
        .build()?;
    let response = client
        .post(ENDPOINT)
        .header("Authorization", format!("Simple {api_key}"))
        .header("Content-Type", {{ media_type }})
        .body(input)
        .send()?;
    let status = response.status();
    let body = response.text()?;
    let answer: serde_json::Value = match serde_json::from_str(&body) {
        Ok(answer) => answer,
        Err(_) => {
            eprintln!("HTTP {status}: {body}");
            process::exit(1);
        }
    };
    if let Some(error) = answer.get("error") {
        let kind = error["error_type"].as_str().unwrap_or("Error");
        eprintln!("{kind}: {}", error["message"].as_str().unwrap_or(""));
        process::exit(1);
    }

    let result = &answer["result"];
    match answer["metadata"]["content_type"].as_str() {
        Some("binary") => {
            let encoded = result.as_str().unwrap_or("");
            let data = base64::engine::general_purpose::STANDARD.decode(encoded)?;
            fs::write("output.bin", &data)?;
            println!("Wrote {} bytes to output.bin", data.len());
        }
        Some("text") => println!("{}", result.as_str().unwrap_or("")),
        _ => println!("{}", serde_json::to_string_pretty(result)?),
    }
    Ok(())
}
"""


class Rust(Language):
    slug = "rust"
    label = "Rust"
    pygments_lexer = "rust"
    filename = "main.rs"
    order = 120

    def render(self, ctx: SnippetContext) -> str:
        if ctx.content_type == "binary":
            decoded = (
                f"base64::engine::general_purpose::STANDARD.decode({rust_string(ctx.body_base64)})?"
            )
            input_code = f"    let input: Vec<u8> = {decoded};"
        else:
            input_code = f"    let input = {rust_string(ctx.body_text)};"
        return fill(
            TEMPLATE,
            header=ctx.comment(
                "//", run="cargo new call_model, put this in src/main.rs, then: cargo run"
            ),
            endpoint=rust_string(ctx.endpoint),
            placeholder=rust_string(ctx.key_placeholder),
            input=input_code,
            media_type=rust_string(ctx.media_type),
        )
