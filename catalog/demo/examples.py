"""The examples the home page and the docs page show (examples.toml): real calls to models of
the demo catalogue with the answers they really gave, rendered for the page as a curl
command, a request body and the answer's envelope."""

from __future__ import annotations

import base64
import functools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.snippets.literals import shell_quote

EXAMPLES_FILE = Path(__file__).resolve().parent / "examples.toml"
MEDIA_TYPES = {
    "json": "application/json",
    "text": "text/plain",
    "binary": "application/octet-stream",
}


@dataclass(frozen=True)
class Example:
    name: str
    path: str  # OWNER/NAME[/VERSION]
    content_type: str
    input: Any  # a JSON value, a str (text) or bytes (binary)
    result: Any = None
    error: str | None = None
    query: str = ""

    @property
    def owner(self) -> str:
        return self.path.split("/")[0]

    @property
    def name_slug(self) -> str:
        return self.path.split("/")[1]

    @property
    def model(self) -> str:
        """OWNER/NAME."""
        return f"{self.owner}/{self.name_slug}"

    @property
    def version(self) -> str | None:
        parts = self.path.split("/")
        return parts[2] if len(parts) > 2 else None

    @property
    def url_path(self) -> str:
        return f"/v1/algo/{self.path}" + (f"?{self.query}" if self.query else "")

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.content_type]

    @property
    def body(self) -> bytes:
        if self.content_type == "binary":
            return self.input
        if self.content_type == "text":
            return self.input.encode()
        return json.dumps(self.input).encode()

    @property
    def input_json(self) -> str:
        return json.dumps(self.input, ensure_ascii=False)

    @property
    def result_json(self) -> str:
        """The recorded result, on one line."""
        return json.dumps(self.result, ensure_ascii=False)

    def curl(self, base_url: str, *, key_variable: str = "MARKETPLACE_API_KEY") -> str:
        """A shell command making this call (a binary body read from image.png)."""
        if self.content_type == "binary":
            data = "--data-binary @image.png"
        else:
            text = self.input if self.content_type == "text" else self.input_json
            data = f"-d {shell_quote(text)}"
        url = shell_quote(f"{base_url.rstrip('/')}{self.url_path}")
        return (
            f"curl -X POST {url} \\\n"
            f'  -H "Authorization: Simple ${key_variable}" \\\n'
            f'  -H "Content-Type: {self.media_type}" \\\n'
            f"  {data}"
        )


def _example(entry: dict) -> Example:
    entry = dict(entry)
    if "input_base64" in entry:
        entry["input"] = base64.b64decode(entry.pop("input_base64"))
    return Example(**entry)


@functools.cache
def demo_examples() -> dict[str, Example]:
    """Every example, by name."""
    data = tomllib.loads(EXAMPLES_FILE.read_text())
    return {entry["name"]: _example(entry) for entry in data["examples"]}
