"""Ready-to-run code that calls a model: one module per language, one registry.

A language is a subclass of `Language` with a `render(ctx)` method, in a module of its own
under `catalog/snippets/languages/`; catalog's AppConfig.ready() adds one of each to the
`snippet_languages` registry, so adding a language is one file there and one line in ready().
Each snippet is a complete program, as short as its language allows: it reads the key from
`MARKETPLACE_API_KEY` (falling back to a visible placeholder where that costs no line), sends
the sample input with the right content type to the `?output=raw` endpoint, and prints the
bare result (JSON or text as the API answers it; a binary result is written to `output.bin`);
a non-2xx answer (a model error is a 400 there) ends the program with its status and body.
The result's kind is known in advance: it is the kind of the answer the build recorded for
the sample input (`result_type`).

The sample input is always embedded through the literal helpers of `literals.py`, each of
which is tested to round-trip arbitrary text through the language's own parser.

    ctx = SnippetContext(base_url="https://models.example", owner="ada", name="toolbox",
                         version="1.0.0", content_type="json", data={"text": "hi"},
                         result_type="json")
    for snippet in render_all(ctx):
        snippet.slug, snippet.label, snippet.code, snippet.html
    highlight_css()  # the colours for `snippet.html`, inside <pre class="code"><code>

For a published version: `render_all(context_for_version(version, key_prefix=...))`.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.conf import settings
from pygments import highlight as _pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name

from marketplace.core.registry import Registry

from .literals import comment_text

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_KEY_PLACEHOLDER",
    "ENV_API_KEY",
    "Language",
    "Snippet",
    "SnippetContext",
    "context_for_version",
    "fill",
    "get_language",
    "highlight",
    "highlight_css",
    "ordered_languages",
    "render",
    "render_all",
    "snippet_languages",
]

ENV_API_KEY = "MARKETPLACE_API_KEY"
DEFAULT_KEY_PLACEHOLDER = "YOUR_API_KEY"
CONTENT_TYPES = ("json", "text", "binary")
MEDIA_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "binary": "application/octet-stream",
}
# A placeholder lands inside string literals, shell words and HTTP headers: keep it a token.
_PLACEHOLDER_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
DEFAULT_HIGHLIGHT_STYLE = "github-dark"


@dataclass(frozen=True)
class SnippetContext:
    """What a snippet calls and with what: the model version, its sample input and the key.

    `data` is the sample input: any JSON value for "json", a str for "text", bytes for
    "binary". `result_type` is the kind of result the model gives for it (json, text or
    binary): a snippet prints a JSON or text result and writes a binary one to a file.
    `key_placeholder` is what the snippet sends when MARKETPLACE_API_KEY is unset;
    `key_note` (optional) replaces the default "create a key at .../keys/" comment, e.g.
    to name the caller's own key by its prefix."""

    base_url: str
    owner: str
    name: str
    version: str | None = None
    content_type: str = "json"
    data: Any = None
    result_type: str = "json"
    key_placeholder: str = DEFAULT_KEY_PLACEHOLDER
    key_note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.content_type not in CONTENT_TYPES:
            raise ValueError(
                f"content_type must be one of {CONTENT_TYPES}, not {self.content_type!r}"
            )
        if self.result_type not in CONTENT_TYPES:
            raise ValueError(
                f"result_type must be one of {CONTENT_TYPES}, not {self.result_type!r}"
            )
        if not _PLACEHOLDER_PATTERN.match(self.key_placeholder):
            raise ValueError("key_placeholder: 1 to 64 letters, digits, '_', '.' or '-'")
        if self.content_type == "binary":
            if not isinstance(self.data, bytes | bytearray | memoryview):
                raise ValueError("a binary sample input must be bytes")
            object.__setattr__(self, "data", bytes(self.data))
        elif self.content_type == "text":
            if not isinstance(self.data, str):
                raise ValueError("a text sample input must be a str")
            _check_encodable(self.data)
        else:
            try:
                _check_encodable(json.dumps(self.data, ensure_ascii=False, allow_nan=False))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"the sample input is not a JSON value: {exc}") from None

    # -- what is called --------------------------------------------------------------------

    @property
    def target(self) -> str:
        """owner/name[/version], as the Algorithmia client and the CLI name a model."""
        parts = [self.owner, self.name] + ([self.version] if self.version else [])
        return "/".join(parts)

    @property
    def endpoint(self) -> str:
        parts = [self.owner, self.name] + ([self.version] if self.version else [])
        path = "/".join(urllib.parse.quote(part, safe="") for part in parts)
        return f"{self.base_url}/v1/algo/{path}"

    @property
    def raw_endpoint(self) -> str:
        """The endpoint answering the bare result, and a non-2xx status for any error."""
        return f"{self.endpoint}?output=raw"

    @property
    def keys_url(self) -> str:
        return f"{self.base_url}/keys/"

    # -- what is sent ----------------------------------------------------------------------

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.content_type]

    @property
    def json_text(self) -> str:
        """The JSON document sent for a "json" call: one line, non-ASCII kept as it is."""
        return json.dumps(self.data, ensure_ascii=False, allow_nan=False)

    @property
    def body_text(self) -> str:
        """The body of a json or text call, as text."""
        if self.content_type == "binary":
            raise ValueError("a binary body is not text: use body_base64")
        return self.json_text if self.content_type == "json" else self.data

    @property
    def body_base64(self) -> str:
        """The body as base64: how binary inputs (and text a language cannot hold) are
        embedded."""
        if self.content_type == "binary":
            return base64.b64encode(self.data).decode("ascii")
        return base64.b64encode(self.body_text.encode("utf-8")).decode("ascii")

    # -- what the comments say -------------------------------------------------------------

    def comment_lines(self, run: str = "", how: str | None = None) -> list[str]:
        """The header every snippet starts with, as plain lines (without comment markers),
        safe to put after a line-comment marker in any language: where the key comes from,
        how the program gets it (`how`; by default from MARKETPLACE_API_KEY, else the
        placeholder) and how to run it."""
        lines = self.key_note.splitlines() or [f"API key: create one at {self.keys_url}"]
        if how is None:
            how = f"Then: export {ENV_API_KEY}=<your key>  (unset, {self.key_placeholder} is sent)"
        lines.append(how)
        if run:
            lines.append(f"Run: {run}")
        return [comment_text(line) for line in lines]

    def comment(
        self,
        marker: str,
        run: str = "",
        extra: list[str] | tuple[str, ...] = (),
        how: str | None = None,
    ) -> str:
        """`comment_lines` (and `extra` lines) as line comments starting with `marker`."""
        lines = self.comment_lines(run, how) + [comment_text(line) for line in extra]
        return "\n".join(f"{marker} {line}".rstrip() for line in lines)


def _check_encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the sample input holds unpaired surrogates, not valid Unicode") from None


# -- languages and their registry --------------------------------------------------------------


class Language:
    """One client language. Subclasses set the class attributes and implement `render`."""

    slug: ClassVar[str] = ""
    label: ClassVar[str] = ""
    pygments_lexer: ClassVar[str] = "text"
    filename: ClassVar[str] = "snippet.txt"
    order: ClassVar[int] = 1000  # display order; ties are broken by label

    def render(self, ctx: SnippetContext) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Language {self.slug}>"


snippet_languages: Registry[Language] = Registry("snippet language")


def get_language(slug: str) -> Language:
    return snippet_languages.get(slug)


def ordered_languages() -> list[Language]:
    """Every registered language, in display order."""
    return sorted(snippet_languages, key=lambda language: (language.order, language.label))


# -- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    slug: str
    label: str
    filename: str
    code: str
    html: str = field(repr=False)

    def as_dict(self) -> dict[str, str]:
        return {
            "language": self.slug,
            "label": self.label,
            "filename": self.filename,
            "code": self.code,
            "html": self.html,
        }


def highlight(code: str, lexer: str) -> str:
    """Pygments HTML for `code`: spans with Pygments' short class names and no wrapper, to
    put inside `<pre class="code"><code>...</code></pre>` (site.js gives every pre.code a
    Copy button). Everything in `code` is escaped."""
    return _pygments_highlight(code, get_lexer_by_name(lexer), HtmlFormatter(nowrap=True))


def highlight_css(style: str = DEFAULT_HIGHLIGHT_STYLE, selector: str = "pre.code") -> str:
    """The colours of `highlight()` output inside `selector`: token rules only (no
    background, no line numbers), so the site's own code-block look stays. The default
    style suits the site's dark code blocks."""
    return "\n".join(HtmlFormatter(style=style).get_token_style_defs(selector)) + "\n"


def render(language: Language, ctx: SnippetContext) -> Snippet:
    code = language.render(ctx)
    if not code.endswith("\n"):
        code += "\n"
    return Snippet(
        slug=language.slug,
        label=language.label,
        filename=language.filename,
        code=code,
        html=highlight(code, language.pygments_lexer),
    )


def render_all(ctx: SnippetContext) -> list[Snippet]:
    """Every language's snippet for `ctx`, in display order."""
    return [render(language, ctx) for language in ordered_languages()]


_FIELD = re.compile(r"\{\{ *([a-z_][a-z0-9_]*) *\}\}")


def fill(template: str, **values: str) -> str:
    """Replace each `{{ name }}` in `template` with `values[name]`, in one pass (a value is
    never scanned for fields itself). A field without a value is an error."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"the template needs a value for {name!r}")
        return values[name]

    return _FIELD.sub(value, template)


def context_for_version(
    version,
    *,
    base_url: str | None = None,
    key_prefix: str | None = None,
) -> SnippetContext:
    """The context for a published `catalog.models.Version`: its endpoint and its build's
    sample input (a str sample is sent as text, as the builder runs it; no sample sends
    `{}`), and the kind of answer the build recorded for it (JSON when none was). With
    `key_prefix` (the prefix of one of the caller's keys, never the secret), the placeholder
    and the comment name that key and say where to find it."""
    if base_url is None:
        base_url = settings.PUBLIC_URL
    sample = version.build.sample_input
    if isinstance(sample, str):
        content_type, data = "text", sample
    else:
        content_type, data = "json", ({} if sample is None else sample)
    result_type = version.build.sample_output_content_type
    if result_type not in CONTENT_TYPES:
        result_type = "json"
    placeholder, note = DEFAULT_KEY_PLACEHOLDER, ""
    if key_prefix and _PLACEHOLDER_PATTERN.match(f"{key_prefix}..."):
        placeholder = f"{key_prefix}..."
        keys_url = f"{base_url.rstrip('/')}/keys/"
        note = (
            f"API key: your key {key_prefix} (its secret was shown once, when you made it;"
            f" keys at {keys_url})"
        )
    return SnippetContext(
        base_url=base_url,
        owner=version.model.owner.slug,
        name=version.model.slug,
        version=version.number,
        content_type=content_type,
        data=data,
        result_type=result_type,
        key_placeholder=placeholder,
        key_note=note,
    )
