"""Literals: any text (or JSON value) written as source code of each snippet language.

Every helper returns source text whose value, read by that language, is exactly the input
(tests/catalog/test_snippets.py round-trips arbitrary Unicode through each language's own
parser). The common rules:

- printable text stays readable where the language allows it (a JSON document in shell,
  PHP or Ruby single quotes, in a Go back-quoted or Rust raw string);
- anything else - control and format characters, line and paragraph separators, a BOM,
  non-breaking spaces - is spelled as an escape, so nothing invisible hides in a snippet;
- a language that reads source files in the machine's locale (Java 17, R) gets ASCII only.

Text with unpaired surrogates is not Unicode and is never passed here (SnippetContext
refuses it). Shell words and R strings cannot hold NUL: those helpers raise ValueError and
the snippets embed such text as base64 instead.
"""

from __future__ import annotations

import json
import pprint
import re

__all__ = [
    "comment_text",
    "csharp_string",
    "go_string",
    "java_string",
    "js_string",
    "js_value",
    "php_string",
    "python_literal",
    "python_string",
    "r_string",
    "ruby_string",
    "rust_string",
    "shell_quote",
]


def _visible(ch: str) -> bool:
    """Shown as itself in a snippet: printable, in Python's sense (letters, marks, numbers,
    punctuation, symbols and the ASCII space)."""
    return ch.isprintable()


def _utf16_units(ch: str) -> list[int]:
    code = ord(ch)
    if code < 0x10000:
        return [code]
    code -= 0x10000
    return [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]


def comment_text(text: str) -> str:
    """`text` made safe after a line-comment marker in every snippet language: control and
    format characters (line breaks included) become spaces, a backslash becomes '/' (Java
    decodes \\u escapes even inside comments), and '?>' (which ends PHP code even inside a
    comment) loses its '>'."""
    text = "".join(ch if _visible(ch) else " " for ch in text)
    return text.replace("\\", "/").replace("?>", "?")


# -- shell (bash, zsh, ksh) ----------------------------------------------------------------------

_SHELL_PLAIN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def shell_quote(text: str) -> str:
    """One shell word: as it is when it holds only safe characters, else single-quoted, each
    `'` written as `\\'` between quoted parts, and characters that are not visible (other
    than newline, kept as it is) written as their UTF-8 bytes in ANSI-C quotes ($'\\x09'),
    which bash, zsh and ksh read without regard to the locale."""
    if "\x00" in text:
        raise ValueError("a shell word cannot hold a NUL character")
    if _SHELL_PLAIN.match(text):
        return text
    parts: list[str] = []
    quoted: list[str] = []
    escaped: list[str] = []

    def flush_quoted() -> None:
        if quoted:
            parts.append("'" + "".join(quoted) + "'")
            quoted.clear()

    def flush_escaped() -> None:
        if escaped:
            parts.append("$'" + "".join(escaped) + "'")
            escaped.clear()

    for ch in text:
        if ch == "'":
            flush_quoted()
            flush_escaped()
            parts.append("\\'")
        elif _visible(ch) or ch == "\n":
            flush_escaped()
            quoted.append(ch)
        else:
            flush_quoted()
            escaped.append("".join(f"\\x{byte:02x}" for byte in ch.encode("utf-8")))
    flush_quoted()
    flush_escaped()
    return "".join(parts) or "''"


# -- Python --------------------------------------------------------------------------------------


def python_string(text: str) -> str:
    """A Python string literal (repr), in double quotes unless the text holds some."""
    literal = repr(text)
    # repr picks single quotes unless the text holds ' and no "; with neither quote inside,
    # the two spellings are the same literal.
    if literal[0] == "'" and '"' not in text and "'" not in text:
        literal = '"' + literal[1:-1] + '"'
    return literal


def python_literal(value, *, indent: int = 0) -> str:
    """A Python expression for a JSON value (dict, list, str, int, float, bool, None) that
    `ast.literal_eval` reads back as the same value; long values are laid out over several
    lines, continuation lines indented by `indent` spaces (inside brackets, where Python
    ignores indentation)."""
    text = pprint.pformat(value, width=88 - indent, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


# -- JavaScript ----------------------------------------------------------------------------------

_JS_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
               "\f": "\\f"}  # fmt: skip


def _u_escapes(ch: str) -> str:
    return "".join(f"\\u{unit:04x}" for unit in _utf16_units(ch))


def js_string(text: str) -> str:
    """A double-quoted JavaScript string literal (also a valid JSON string)."""
    out = []
    for ch in text:
        if ch in _JS_ESCAPES:
            out.append(_JS_ESCAPES[ch])
        elif _visible(ch):
            out.append(ch)
        else:
            out.append(_u_escapes(ch))
    return '"' + "".join(out) + '"'


def _has_proto_key(value) -> bool:
    if isinstance(value, dict):
        return any(key == "__proto__" or _has_proto_key(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_proto_key(item) for item in value)
    return False


def js_value(value, *, indent: int = 0, width: int = 0) -> str:
    """A JavaScript expression for a JSON value, as a JSON literal: on one line when that
    is at most `width` characters, else laid out with two-space indentation (JSON is a
    subset of JavaScript expressions once invisible characters are escaped). An object
    literal treats a `__proto__` key as the prototype, not a property, so a value with such
    a key is written as `JSON.parse("...")` instead."""
    if _has_proto_key(value):
        return f"JSON.parse({js_string(json.dumps(value, ensure_ascii=False))})"
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    if len(text) > width:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, indent=2)
    # Outside strings json.dumps writes only spaces and newlines, and inside them it escapes
    # every control character: what is left invisible is inside a string, where \\u is valid.
    text = "".join(ch if _visible(ch) or ch == "\n" else _u_escapes(ch) for ch in text)
    return text.replace("\n", "\n" + " " * indent)


# -- Java ----------------------------------------------------------------------------------------

_JAVA_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
                 "\f": "\\f"}  # fmt: skip


def java_string(text: str) -> str:
    """A Java string literal in ASCII: Java 17 reads a source file in the platform's charset,
    so anything outside printable ASCII is escaped - other control characters in octal
    (\\u000a would be decoded before lexing and end the line), the rest as \\uXXXX."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _JAVA_ESCAPES:
            out.append(_JAVA_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\{code:03o}")
        elif code < 0x7F:
            out.append(ch)
        else:
            out.append(_u_escapes(ch))
    return '"' + "".join(out) + '"'


# -- Go ------------------------------------------------------------------------------------------

_C_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _go_escape(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _plain(text: str) -> bool:
    """Needs no escape in a double-quoted string of any C-like language."""
    return all(_visible(ch) and ch not in '"\\' for ch in text)


def go_string(text: str) -> str:
    """A Go string literal: double-quoted as it is when nothing needs escaping, back-quoted
    (raw) when the text is visible characters and newlines without a back quote, else
    double-quoted with escapes. (A raw string would drop carriage returns, and Go refuses
    NUL and a BOM in source.)"""
    if _plain(text):
        return f'"{text}"'
    if "`" not in text and all(_visible(ch) or ch == "\n" for ch in text):
        return f"`{text}`"
    out = []
    for ch in text:
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif _visible(ch):
            out.append(ch)
        else:
            out.append(_go_escape(ch))
    return '"' + "".join(out) + '"'


# -- Ruby and PHP --------------------------------------------------------------------------------


def _single_quoted(text: str) -> str:
    """Single quotes as Ruby and PHP read them: only \\\\ and \\' are escapes."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ruby_string(text: str) -> str:
    """A Ruby string literal: double-quoted as it is when nothing needs escaping, else
    single-quoted when all visible, else double-quoted with escapes (and `#` escaped where
    it would start an interpolation: before `{`, `@` or `$`)."""
    if _plain(text) and "#" not in text:
        return f'"{text}"'
    if all(_visible(ch) for ch in text):
        return _single_quoted(text)
    out = []
    for index, ch in enumerate(text):
        following = text[index + 1 : index + 2]
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif ch == "#" and following in ("{", "@", "$"):
            out.append("\\#")
        elif _visible(ch):
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    return '"' + "".join(out) + '"'


def php_string(text: str) -> str:
    """A PHP string literal: single-quoted when all visible, else double-quoted with escapes
    (`$` escaped, so nothing is interpolated)."""
    if all(_visible(ch) for ch in text):
        return _single_quoted(text)
    out = []
    for ch in text:
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif ch == "$":
            out.append("\\$")
        elif _visible(ch):
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    return '"' + "".join(out) + '"'


# -- R -------------------------------------------------------------------------------------------


def r_string(text: str) -> str:
    """An R string literal in ASCII (R reads source in the session's locale; \\u escapes
    make a UTF-8 string in any locale). Single-quoted when the text has double quotes but
    no single ones, for readability. R strings cannot hold NUL."""
    if "\x00" in text:
        raise ValueError("an R string cannot hold a NUL character")
    quote = "'" if '"' in text and "'" not in text else '"'
    out = []
    for ch in text:
        code = ord(ch)
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch in "\n\r\t":
            out.append(_C_ESCAPES[ch])
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{{{code:x}}}")
    return quote + "".join(out) + quote


# -- C# ------------------------------------------------------------------------------------------


def csharp_string(text: str) -> str:
    """A C# regular string literal (not verbatim, not interpolated)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif _visible(ch):
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


# -- Rust ----------------------------------------------------------------------------------------


def rust_string(text: str) -> str:
    """A Rust string literal: as it is when nothing needs escaping, raw (r#"..."#, with as
    many #s as the text needs) when all visible characters and newlines, else escaped."""
    if _plain(text):
        return f'"{text}"'
    if all(_visible(ch) or ch == "\n" for ch in text):
        hashes = 0
        if '"' in text:
            hashes = 1
            while '"' + "#" * hashes in text:
                hashes += 1
        fence = "#" * hashes
        return f'r{fence}"{text}"{fence}'
    out = []
    for ch in text:
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif _visible(ch):
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    return '"' + "".join(out) + '"'
