"""Snippets without a server: every language renders every kind of input, highlighting, the
registry, and the literal helpers - each one round-tripped through the language's own
parser (Python in-process; bash, node, Java, Go, Ruby, PHP, R, C# and Rust when their
toolchain is on this machine, else skipped naming what to install)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from catalog.snippets import (
    DEFAULT_KEY_PLACEHOLDER,
    Language,
    SnippetContext,
    context_for_version,
    fill,
    get_language,
    highlight_css,
    ordered_languages,
    render_all,
    snippet_languages,
)
from catalog.snippets.literals import (
    comment_text,
    csharp_string,
    go_string,
    java_string,
    js_string,
    js_value,
    php_string,
    python_literal,
    python_string,
    r_string,
    ruby_string,
    rust_string,
    shell_quote,
)

EXPECTED_LANGUAGES = [
    "curl",
    "python",
    "python-algorithmia",
    "javascript",
    "nodejs",
    "go",
    "java",
    "ruby",
    "php",
    "r",
    "csharp",
    "rust",
    "cli",
]

NASTY = [
    "",
    "'",
    '"',
    "\\",
    "a\\",
    "\\u000a \\u0022 \\\\u0041",  # Java decodes \u escapes before lexing
    'it\'s "quoted"',
    "$HOME ${HOME} `whoami` $(id) \\$",
    "#{x} #@x #$x # {not}",
    "%s %d %%",
    "{{ placeholder }} {}",
    "naïve café — 東京 🚀",
    "line 1\nline 2\r\nline 3\r",
    "tab\there",
    "nul\x00byte",
    "bell\x07 escape\x1b del\x7f nel\x85",
    "nbsp\u00a0 ls\u2028 ps\u2029 bom\ufeff rlo\u202e zwj\u200d",
    "?> */ /* -->",
    '"# "## r#"',
    "--data -x @file",
    "\U0010fffd \U0001f600",
]

_SPECIALS = "'\"\\$`{}#@%!?>*/\n\r\t\x00\x07\x1b\x7f\x85\u00a0\u2028\u2029\ufeff\u202eé東🚀"
characters = st.one_of(st.sampled_from(list(_SPECIALS)), st.characters(exclude_categories=("Cs",)))
texts = st.text(characters, max_size=24)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(texts | st.just("__proto__"), children, max_size=4)
    ),
    max_leaves=12,
)


SAMPLES = {"json": {"text": "hello"}, "text": "hello", "binary": b"\x00\x01\xff"}


# Languages that read MARKETPLACE_API_KEY with no fallback (a placeholder would cost Go
# lines; the command line also reads the key saved by `marketplace login`).
NO_PLACEHOLDER = {"go", "cli"}


def context(content_type="json", data=SAMPLES, **kwargs) -> SnippetContext:
    if data is SAMPLES:
        data = SAMPLES.get(content_type)
    fields = {
        "base_url": "https://models.example",
        "owner": "ada",
        "name": "toolbox",
        "version": "1.0.0",
        "result_type": content_type if content_type in ("json", "text", "binary") else "json",
    }
    return SnippetContext(content_type=content_type, data=data, **{**fields, **kwargs})


# -- rendering ---------------------------------------------------------------------------------


def test_the_registry_holds_every_language_in_display_order():
    assert [language.slug for language in ordered_languages()] == EXPECTED_LANGUAGES
    labels = [language.label for language in ordered_languages()]
    assert len(set(labels)) == len(labels)
    assert get_language("java").filename == "CallModel.java"
    with pytest.raises(LookupError):
        get_language("cobol")


@pytest.mark.parametrize("content_type", ["json", "text", "binary"])
@pytest.mark.parametrize("slug", EXPECTED_LANGUAGES)
def test_every_language_renders_every_kind_of_input(slug, content_type):
    ctx = context(content_type)
    snippet = next(s for s in render_all(ctx) if s.slug == slug)
    code = snippet.code
    assert code.endswith("\n") and "{{" not in code
    if slug == "cli":
        assert f"marketplace call {ctx.target} --api-url {ctx.base_url}" in code
    elif slug == "python-algorithmia":
        assert f'Algorithmia.client(key, "{ctx.base_url}")' in code
        assert f'client.algo("{ctx.target}")' in code
    else:
        assert f"{ctx.endpoint}?output=raw" in code
    if slug not in NO_PLACEHOLDER:
        assert DEFAULT_KEY_PLACEHOLDER in code
    assert f"{ctx.base_url}/keys/" in code
    if slug != "javascript":  # a web page has no environment
        assert "MARKETPLACE_API_KEY" in code
    if content_type == "binary":
        assert ctx.body_base64 in code and "output.bin" in code
    else:
        assert "hello" in code and "output.bin" not in code
    assert "<span" in snippet.html and "\n" in snippet.html
    assert snippet.as_dict()["language"] == slug


def test_highlighting_escapes_html_and_ships_a_stylesheet():
    ctx = context("text", "</script><img src=x onerror=alert(1)> & done")
    for snippet in render_all(ctx):
        assert "<img" not in snippet.html and "</script>" not in snippet.html, snippet.slug
        assert "&lt;" in snippet.html
    css = highlight_css()
    assert "pre.code .k {" in css and "pre.code .s2 {" in css
    assert "pre.code {" not in css and "linenos" not in css  # the site styles the block
    assert highlight_css("default", ".snippet").startswith(".snippet ")


def test_a_versionless_call_and_the_key_of_the_caller():
    ctx = context(version=None, key_placeholder="mk_ab12cd34...", key_note="Your key: mk_ab12")
    assert ctx.endpoint == "https://models.example/v1/algo/ada/toolbox"
    for snippet in render_all(ctx):
        assert "Your key: mk_ab12" in snippet.code
        if snippet.slug not in NO_PLACEHOLDER:
            assert "mk_ab12cd34..." in snippet.code


def test_context_for_a_published_version(settings):
    settings.PUBLIC_URL = "https://api.example"
    model = SimpleNamespace(slug="sentiment", owner=SimpleNamespace(slug="demo"))
    build = SimpleNamespace(sample_input="I love it", sample_output_content_type="text")
    version = SimpleNamespace(model=model, number="1.2.0", build=build)
    ctx = context_for_version(version)
    assert (ctx.endpoint, ctx.content_type, ctx.data, ctx.result_type) == (
        "https://api.example/v1/algo/demo/sentiment/1.2.0",
        "text",
        "I love it",
        "text",
    )
    version.build.sample_input = {"image": "aGk="}
    version.build.sample_output_content_type = "binary"
    code = get_language("python").render(context_for_version(version))
    assert 'open("output.bin", "wb").write(response.content)' in code
    version.build.sample_input = None
    version.build.sample_output_content_type = ""  # nothing recorded
    ctx = context_for_version(version, key_prefix="mk_ab12cd34")
    assert (ctx.content_type, ctx.data, ctx.result_type) == ("json", {}, "json")
    assert ctx.key_placeholder == "mk_ab12cd34..."
    code = get_language("python").render(ctx)
    assert "mk_ab12cd34" in code and "https://api.example/keys/" in code


def test_the_algorithmia_snippet_writes_a_hyphenated_owner_by_its_client_alias():
    """The client refuses `acme-research/...` before sending anything; its snippet names the
    owner as `acme_research`, which the server resolves. Other languages keep the slug."""
    import Algorithmia

    ctx = context(owner="acme-research", name="topic-classifier")
    code = get_language("python-algorithmia").render(ctx)
    assert 'client.algo("acme_research/topic-classifier/1.0.0")' in code
    assert "acme_research is how it writes acme-research" in code
    for language in ordered_languages():
        if language.slug != "python-algorithmia":
            assert "acme_research" not in language.render(ctx), language.slug
    client = Algorithmia.client("key", "http://127.0.0.1:1")
    algo = client.algo("acme_research/topic-classifier/1.0.0")
    assert algo.url == "/v1/algo/acme_research/topic-classifier/1.0.0"
    with pytest.raises(ValueError, match="Invalid algorithm URI"):
        client.algo("acme-research/topic-classifier/1.0.0")
    plain = get_language("python-algorithmia").render(context())
    assert 'client.algo("ada/toolbox/1.0.0")' in plain and "client accepts no" not in plain


def test_contexts_refuse_what_cannot_be_sent():
    with pytest.raises(ValueError, match="content_type"):
        context("xml", "<a/>")
    with pytest.raises(ValueError, match="bytes"):
        context("binary", "not bytes")
    with pytest.raises(ValueError, match="str"):
        context("text", b"bytes")
    with pytest.raises(ValueError, match="JSON"):
        context("json", {"x": float("nan")})
    with pytest.raises(ValueError, match="surrogates"):
        context("text", "\udc80")
    with pytest.raises(ValueError, match="key_placeholder"):
        context(key_placeholder="it's")
    with pytest.raises(ValueError, match="result_type"):
        context(result_type="html")


def test_header_comments_survive_a_hostile_base_url():
    ctx = context(base_url="https://x.example/\n?>\\u000a*/")
    for snippet in render_all(ctx):
        comments = [
            line for line in snippet.code.splitlines() if line.lstrip().startswith(("#", "//"))
        ]
        assert any("create one at https://x.example/ ?" in line for line in comments)
        for line in comments:
            assert "?>" not in line and "\\" not in line, (snippet.slug, line)
    assert comment_text("a\nb\u2028c\\u000a?>") == "a b c/u000a?"


def test_a_new_language_is_one_class():
    class Brainfuck(Language):
        slug = "test-lang"
        label = "Test language"
        pygments_lexer = "text"
        filename = "call.txt"
        order = 15

        def render(self, ctx):
            return f"POST {ctx.endpoint}"

    class Impostor(Language):
        slug = "test-lang"
        label = "Impostor"

    snippet_languages.add(Brainfuck.slug, Brainfuck())
    try:
        assert [language.slug for language in ordered_languages()][:3] == [
            "curl",
            "test-lang",
            "python",
        ]
        snippet = next(s for s in render_all(context()) if s.slug == "test-lang")
        assert snippet.code == "POST https://models.example/v1/algo/ada/toolbox/1.0.0\n"
        assert snippet.label == "Test language"
        with pytest.raises(ValueError, match="already registered"):
            snippet_languages.add(Impostor.slug, Impostor())
    finally:
        snippet_languages.remove("test-lang")
    assert "test-lang" not in [language.slug for language in ordered_languages()]


# Lines of code (not blank, not a comment) of each snippet: for a JSON or text input whose
# result is printed, and at most for any input and result (bytes to decode, a file to write).
# Lower them when a snippet gets shorter; raising one needs a reason.
CODE_LINES = {
    "curl": (4, 6),
    "python": (10, 11),
    "python-algorithmia": (5, 6),
    "javascript": (7, 11),
    "nodejs": (8, 10),
    "go": (27, 32),
    "java": (18, 19),
    "ruby": (7, 8),
    "php": (15, 16),
    "r": (8, 9),
    "csharp": (8, 10),
    "rust": (17, 18),
    "cli": (1, 3),
}
HEADER_LINES = 5  # the comments: the key, how to set it, how to run, a warning or two


def _code_and_comment_lines(code: str) -> tuple[int, int]:
    lines = [line.strip() for line in code.splitlines() if line.strip()]
    comments = [line for line in lines if line.startswith(("#", "//"))]
    return len(lines) - len(comments), len(comments)


@pytest.mark.parametrize("slug", EXPECTED_LANGUAGES)
def test_every_snippet_stays_as_short_as_its_language_allows(slug):
    assert set(CODE_LINES) == set(EXPECTED_LANGUAGES)
    printed, at_most = CODE_LINES[slug]
    signed_in = {"key_placeholder": "mk_ab12cd34...", "key_note": "API key: your key mk_ab12cd34"}
    for content_type in ("json", "text", "binary"):
        for result_type in ("json", "text", "binary"):
            for extra in ({}, signed_in):
                ctx = context(content_type, result_type=result_type, **extra)
                code, comments = _code_and_comment_lines(get_language(slug).render(ctx))
                limit = printed if "binary" not in (content_type, result_type) else at_most
                where = f"{slug}, {content_type} in, {result_type} out"
                assert code <= limit, f"{where}: {code} lines of code, more than {limit}"
                assert comments <= HEADER_LINES, f"{where}: {comments} lines of comments"


def test_fill_replaces_fields_once():
    assert fill("a {{ x }} {{y}} ${x}", x="{{ y }}", y="2") == "a {{ y }} 2 ${x}"
    with pytest.raises(KeyError, match="missing"):
        fill("{{ missing }}")


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=json_values | texts, content_type=st.sampled_from(["json", "text"]))
def test_python_snippets_compile_for_any_input(data, content_type):
    if content_type == "text" and not isinstance(data, str):
        data = json.dumps(data)
    ctx = context(content_type, data)
    requests_call = next(
        node
        for node in ast.walk(ast.parse(get_language("python").render(ctx)))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "requests.post"
    )
    body = next(k.value for k in requests_call.keywords if k.arg in ("json", "data"))
    if content_type == "text":  # data="...".encode()
        body = body.func.value
    assert ast.literal_eval(body) == data
    pipe = next(
        node
        for node in ast.walk(ast.parse(get_language("python-algorithmia").render(ctx)))
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(".pipe")
    )
    assert ast.literal_eval(pipe.args[0]) == data


@settings(max_examples=60)
@given(data=json_values | texts | st.binary(max_size=16), slug=st.sampled_from(EXPECTED_LANGUAGES))
def test_every_language_renders_any_input(data, slug):
    content_type = (
        "binary" if isinstance(data, bytes) else ("text" if isinstance(data, str) else "json")
    )
    code = get_language(slug).render(context(content_type, data))
    assert "MARKETPLACE_API_KEY" in code or slug == "javascript"
    if slug not in NO_PLACEHOLDER:
        assert "YOUR_API_KEY" in code


# -- literal helpers: Python, in-process ---------------------------------------------------------


@given(texts)
def test_python_strings_round_trip(text):
    assert ast.literal_eval(python_string(text)) == text
    assert ast.literal_eval(python_literal(text)) == text


@given(json_values)
def test_python_literals_round_trip(value):
    assert ast.literal_eval(python_literal(value, indent=10)) == value


@given(texts)
def test_comment_text_has_nothing_that_ends_a_comment(text):
    safe = comment_text(text)
    assert safe.isprintable() and "\\" not in safe and "?>" not in safe


def test_literals_stay_readable_when_they_can():
    document = '{"text": "hello"}'
    assert shell_quote(document) == "'" + document + "'"
    assert go_string(document) == "`" + document + "`"
    assert rust_string(document) == 'r#"' + document + '"#'
    assert ruby_string(document) == php_string(document) == "'" + document + "'"
    assert r_string(document) == "'" + document + "'"
    assert go_string("plain") == rust_string("plain") == ruby_string("plain") == '"plain"'
    assert shell_quote("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert shell_quote("it's") == "'it'\\''s'"
    assert js_value({"a": [1, None]}) == '{\n  "a": [\n    1,\n    null\n  ]\n}'
    assert js_value({"__proto__": 1}).startswith("JSON.parse(")
    for literal in (js_string, java_string, go_string, csharp_string, rust_string, ruby_string):
        assert "\u2028" not in literal("a\u2028b") and "\x07" not in literal("\x07")
    assert java_string("é").isascii() and r_string("東京 🚀").isascii()
    with pytest.raises(ValueError):
        shell_quote("a\x00b")
    with pytest.raises(ValueError):
        r_string("a\x00b")


# -- literal helpers through each language's own parser -----------------------------------------


def needs(*tools: str, package: str) -> pytest.MarkDecorator:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    reason = f"{', '.join(missing)} not on PATH (Debian package: {package})"
    return pytest.mark.skipif(bool(missing), reason=reason)


HAS_MONO = bool(shutil.which("mcs") and shutil.which("mono"))
HAS_DOTNET = bool(shutil.which("dotnet"))


def _run(argv: list[str], files: dict[str, str], *, locale: str = "C.UTF-8") -> bytes:
    """Write `files` to a fresh directory, run `argv` there, return its stdout."""
    with tempfile.TemporaryDirectory(prefix="literals-") as directory:
        for name, text in files.items():
            Path(directory, name).write_text(text, encoding="utf-8")
        env = {**os.environ, "LC_ALL": locale, "LANG": locale}
        done = subprocess.run(
            argv, cwd=directory, capture_output=True, timeout=180, env=env, check=False
        )
        assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-3000:]
        return done.stdout


def _hex_lines(output: bytes) -> list[str]:
    return output.decode("ascii").splitlines()


def _expected_hex(strings: list[str]) -> list[str]:
    return [text.encode("utf-8").hex() for text in strings]


def _numbers_as_floats(value):
    """JavaScript has one number type: 1.0 prints as 1, 5.5e16 as 55000000000000000."""
    if isinstance(value, dict):
        return {key: _numbers_as_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers_as_floats(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _batch(strings: list[str], *, nul: bool = True) -> list[str]:
    batch = NASTY + strings
    return batch if nul else [text for text in batch if "\x00" not in text]


# Each example runs a compiler or an interpreter: few examples of many strings each, and no
# shrinking (a failing batch already shows the strings that differ).
few = settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
some = settings(few, max_examples=5)
batches = st.lists(texts, min_size=20, max_size=40)


@needs("bash", package="bash")
@settings(max_examples=40, deadline=None)
@given(st.lists(texts.filter(lambda text: "\x00" not in text), min_size=1, max_size=8))
def test_shell_words_round_trip_through_bash(strings):
    strings = _batch(strings, nul=False)
    script = "printf '%s\\0' " + " ".join(shell_quote(text) for text in strings) + "\n"
    output = _run(["bash", "words.sh"], {"words.sh": script}, locale="C")
    assert output.split(b"\x00")[:-1] == [text.encode("utf-8") for text in strings]


@needs("node", package="nodejs")
@some
@given(batches, st.lists(json_values, min_size=5, max_size=20))
def test_javascript_literals_round_trip_through_node(strings, values):
    strings = _batch(strings)
    program = (
        "const strings = [\n"
        + ",\n".join(js_string(text) for text in strings)
        + "\n];\nconst values = [\n"
        + ",\n".join(js_value(value, indent=2) for value in values)
        + "\n];\n"
        'for (const s of strings) console.log(Buffer.from(s, "utf8").toString("hex"));\n'
        "for (const v of values) console.log(JSON.stringify(v));\n"
    )
    output = _run(["node", "literals.js"], {"literals.js": program}).decode("utf-8")
    lines = output.split("\n")[:-1]  # not splitlines(): values may hold U+2028 or U+0085
    assert lines[: len(strings)] == _expected_hex(strings)
    decoded = [json.loads(line) for line in lines[len(strings) :]]
    assert _numbers_as_floats(decoded) == _numbers_as_floats(values)


@needs("java", package="openjdk-17-jdk-headless")
@few
@given(batches)
def test_java_literals_round_trip_through_javac(strings):
    strings = _batch(strings)
    program = (
        "import java.nio.charset.StandardCharsets;\n"
        "public class Literals {\n"
        "  public static void main(String[] args) {\n"
        "    String[] strings = {\n"
        + ",\n".join("      " + java_string(text) for text in strings)
        + "\n    };\n"
        "    for (String s : strings) {\n"
        "      StringBuilder hex = new StringBuilder();\n"
        "      for (byte b : s.getBytes(StandardCharsets.UTF_8)) {\n"
        '        hex.append(String.format("%02x", b & 0xff));\n'
        "      }\n"
        "      System.out.println(hex);\n"
        "    }\n"
        "  }\n"
        "}\n"
    )
    # The C locale: Java 17 then reads the source as ASCII, which is all java_string writes.
    output = _run(["java", "Literals.java"], {"Literals.java": program}, locale="C")
    assert _hex_lines(output) == _expected_hex(strings)


@needs("go", package="golang-go")
@few
@given(batches)
def test_go_literals_round_trip_through_go(strings):
    strings = _batch(strings)
    program = (
        'package main\n\nimport "fmt"\n\nfunc main() {\n\tstrings := []string{\n'
        + "".join(f"\t\t{go_string(text)},\n" for text in strings)
        + '\t}\n\tfor _, s := range strings {\n\t\tfmt.Printf("%x\\n", s)\n\t}\n}\n'
    )
    output = _run(["go", "run", "literals.go"], {"literals.go": program})
    assert _hex_lines(output) == _expected_hex(strings)


@needs("ruby", package="ruby")
@some
@given(batches)
def test_ruby_literals_round_trip_through_ruby(strings):
    strings = _batch(strings)
    program = (
        "strings = [\n"
        + ",\n".join(ruby_string(text) for text in strings)
        + '\n]\nstrings.each { |s| puts s.unpack1("H*") }\n'
    )
    output = _run(["ruby", "literals.rb"], {"literals.rb": program})
    assert _hex_lines(output) == _expected_hex(strings)


@needs("php", package="php-cli")
@some
@given(batches)
def test_php_literals_round_trip_through_php(strings):
    strings = _batch(strings)
    program = (
        "<?php\n$strings = [\n"
        + ",\n".join(php_string(text) for text in strings)
        + '\n];\nforeach ($strings as $s) {\n    echo bin2hex($s), "\\n";\n}\n'
    )
    output = _run(["php", "literals.php"], {"literals.php": program})
    assert _hex_lines(output) == _expected_hex(strings)


@needs("Rscript", package="r-base-core")
@some
@given(batches)
def test_r_literals_round_trip_through_r(strings):
    strings = _batch(strings, nul=False)
    program = (
        "strings <- c(\n"
        + ",\n".join(r_string(text) for text in strings)
        + "\n)\nfor (s in strings) {\n"
        '  cat(paste(as.character(charToRaw(enc2utf8(s))), collapse = ""), "\\n", sep = "")\n'
        "}\n"
    )
    # The C locale: R then reads the source as ASCII, which is all r_string writes.
    output = _run(["Rscript", "literals.R"], {"literals.R": program}, locale="C")
    assert _hex_lines(output) == _expected_hex(strings)


@pytest.mark.skipif(
    not (HAS_MONO or HAS_DOTNET),
    reason="no C# compiler on PATH (Debian package: mono-mcs; or the .NET SDK)",
)
@few
@given(batches)
def test_csharp_literals_round_trip_through_a_csharp_compiler(strings):
    strings = _batch(strings)
    program = (
        "using System;\nusing System.Text;\n\nclass Literals {\n"
        "    static void Main() {\n        string[] strings = {\n"
        + ",\n".join("            " + csharp_string(text) for text in strings)
        + "\n        };\n        foreach (var s in strings) {\n"
        "            var hex = BitConverter.ToString(Encoding.UTF8.GetBytes(s));\n"
        '            Console.WriteLine(hex.Replace("-", "").ToLowerInvariant());\n'
        "        }\n    }\n}\n"
    )
    if HAS_MONO:
        script = "mcs -codepage:utf8 -out:literals.exe Literals.cs >&2 && mono literals.exe"
    else:
        script = (
            "dotnet new console -o app --force >&2 && cp Literals.cs app/Program.cs && "
            "dotnet run --project app"
        )
    output = _run(["bash", "-c", script], {"Literals.cs": program})
    assert _hex_lines(output) == _expected_hex(strings)


@needs("rustc", package="rustc")
@few
@given(batches)
def test_rust_literals_round_trip_through_rustc(strings):
    strings = _batch(strings)
    program = (
        "fn main() {\n    let strings: &[&str] = &[\n"
        + "".join(f"        {rust_string(text)},\n" for text in strings)
        + "    ];\n    for s in strings {\n"
        '        let hex: String = s.bytes().map(|b| format!("{:02x}", b)).collect();\n'
        '        println!("{}", hex);\n    }\n}\n'
    )
    output = _run(
        ["bash", "-c", "rustc --edition 2021 -o literals literals.rs >&2 && ./literals"],
        {"literals.rs": program},
    )
    assert _hex_lines(output) == _expected_hex(strings)
