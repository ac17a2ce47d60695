"""model.toml: every field validated with a message naming it, defaults, overrides from the
upload form, and packages in standard formats that need no model.toml at all."""

from __future__ import annotations

import http.server
import json
import re
import threading
from decimal import Decimal
from pathlib import Path

import pytest
import referencing.exceptions

from catalog.packages import (
    FORMATS,
    RUNTIMES,
    Manifest,
    ManifestError,
    PackageError,
    detect_format,
    input_validator,
    load_manifest,
)

PREDICT_PY = """
import json


def load():
    return {"ready": True}


def apply(data, model=None):
    return {"score": 0.9}
"""

SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string", "minLength": 1}},
    "required": ["text"],
}

FULL_TOML = """
name = "sentiment"                 # slug
title = "Sentiment analysis"
tagline = "Positive/negative score for English text"
runtime = "python"
entrypoint = "predict.py:apply"
load = "predict.py:load"
requirements = "requirements.txt"
license = "mit"
tags = ["nlp", "text-classification"]
task = "text-classification"
framework = "scikit-learn"
network = false
[io]
sample_input = {text = "I love it"}
input_schema = "schema/input.json"
[pricing]
royalty_per_call = "0.0010"
"""

MINIMAL_TOML = 'name = "sentiment"\nruntime = "python"\nentrypoint = "predict.py:apply"\n'

MLMODEL_PYFUNC = """\
artifact_path: model
flavors:
  python_function:
    env:
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.pkl
    sklearn_version: 1.5.0
mlflow_version: 2.14.1
"""


def make_package(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def package_with(tmp_path: Path, toml: str | None, **files: str | bytes) -> Path:
    base = {"predict.py": PREDICT_PY}
    if toml is not None:
        base["model.toml"] = toml
    return make_package(
        tmp_path / "pkg", {**base, **{k.replace("__", "/"): v for k, v in files.items()}}
    )


# --- a complete manifest, defaults, serialisation ---------------------------------------------


def test_full_manifest_from_the_design_document(tmp_path):
    root = package_with(
        tmp_path,
        FULL_TOML,
        **{
            "requirements.txt": "scikit-learn==1.5.0\n",
            "schema__input.json": json.dumps(SCHEMA),
            "README.md": "# Sentiment\n\nScores English text.\n",
        },
    )
    manifest = load_manifest(root)
    assert manifest == Manifest(
        name="sentiment",
        title="Sentiment analysis",
        tagline="Positive/negative score for English text",
        runtime="python",
        entrypoint="predict.py:apply",
        load="predict.py:load",
        requirements="requirements.txt",
        license="mit",
        tags=("nlp", "text-classification"),
        task="text-classification",
        framework="scikit-learn",
        network=False,
        sample_input={"text": "I love it"},
        input_schema=SCHEMA,
        royalty_per_call=Decimal("0.0010"),
        readme="# Sentiment\n\nScores English text.\n",
    )
    assert not manifest.is_format


def test_as_dict_is_json_and_round_trips(tmp_path):
    root = package_with(
        tmp_path, FULL_TOML, **{"requirements.txt": "", "schema__input.json": json.dumps(SCHEMA)}
    )
    manifest = load_manifest(root)
    stored = json.loads(json.dumps(manifest.as_dict()))
    assert stored["royalty_per_call"] == "0.0010"
    assert stored["tags"] == ["nlp", "text-classification"]
    assert Manifest.from_dict(stored) == manifest


def test_defaults_of_a_minimal_manifest(tmp_path):
    manifest = load_manifest(package_with(tmp_path, MINIMAL_TOML))
    assert manifest.title == "sentiment"
    assert manifest.tagline == ""
    assert manifest.license == "unknown"
    assert manifest.tags == ()
    assert manifest.task == ""
    assert manifest.framework == ""
    assert manifest.network is False
    assert manifest.load is None
    assert manifest.requirements is None
    assert manifest.sample_input is None
    assert manifest.input_schema is None
    assert manifest.royalty_per_call == Decimal("0")
    assert manifest.readme == ""


def test_named_examples_are_kept_in_order_and_stored(tmp_path):
    toml = FULL_TOML.replace(
        "[pricing]",
        '[[io.examples]]\nname = " Happy "\ninput = {text = "I love it"}\n'
        '[[io.examples]]\nname = "Grumpy"\ninput = {text = "I hate Mondays"}\n[pricing]',
    )
    root = package_with(
        tmp_path, toml, **{"requirements.txt": "", "schema__input.json": json.dumps(SCHEMA)}
    )
    manifest = load_manifest(root)
    assert manifest.examples == (
        {"name": "Happy", "input": {"text": "I love it"}},
        {"name": "Grumpy", "input": {"text": "I hate Mondays"}},
    )
    stored = json.loads(json.dumps(manifest.as_dict()))
    assert Manifest.from_dict(stored) == manifest
    # A manifest stored before examples existed still loads, with none.
    del stored["examples"]
    assert Manifest.from_dict(stored).examples == ()


def test_requirements_txt_is_used_when_present(tmp_path):
    root = package_with(tmp_path, MINIMAL_TOML, **{"requirements.txt": "numpy\n"})
    assert load_manifest(root).requirements == "requirements.txt"


def test_tags_are_lower_cased_and_deduplicated(tmp_path):
    toml = MINIMAL_TOML + 'tags = ["NLP", "nlp", "c++", "c#", "v1.2"]\n'
    assert load_manifest(package_with(tmp_path, toml)).tags == ("nlp", "c++", "c#", "v1.2")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"0.0000"', Decimal("0.0000")),
        ('"0.000001"', Decimal("0.000001")),
        ("0.25", Decimal("0.25")),
        ("2", Decimal("2")),
        ('"1E+2"', Decimal("100")),
        ('"1.50000000"', Decimal("1.50000000")),  # trailing zeros are not extra places
    ],
)
def test_royalty_values(tmp_path, value, expected):
    toml = MINIMAL_TOML + f"[pricing]\nroyalty_per_call = {value}\n"
    royalty = load_manifest(package_with(tmp_path, toml)).royalty_per_call
    assert royalty == expected
    assert str(royalty) == str(expected)


@pytest.mark.parametrize(
    "source",
    [
        "from .impl import apply\n",
        "from impl import predict as apply\n",
        "import numpy as np\napply = np.sum\n",
        "apply: object = print\n",
        "class apply:\n    pass\n",
        "try:\n    from fast import apply\n"
        "except ImportError:\n    def apply(x):\n        return x\n",
        "if True:\n    async def apply(x):\n        return x\n",
        "load, apply = None, print\n",
        "from helpers import *\n",  # cannot be checked statically: accepted
    ],
)
def test_entrypoint_function_may_be_defined_in_many_ways(tmp_path, source):
    root = package_with(tmp_path, MINIMAL_TOML, **{"predict.py": source})
    assert load_manifest(root).entrypoint == "predict.py:apply"


def test_entrypoint_in_a_subfolder_with_a_coding_cookie(tmp_path):
    toml = MINIMAL_TOML.replace("predict.py:apply", "src/Algorithm.py:apply").replace(
        '"python"', '"adk"'
    )
    source = "# -*- coding: latin-1 -*-\ns = '\xe9'\ndef apply(x):\n    return x\n"
    root = package_with(tmp_path, toml, **{"src__Algorithm.py": source.encode("latin-1")})
    manifest = load_manifest(root)
    assert (manifest.runtime, manifest.entrypoint) == ("adk", "src/Algorithm.py:apply")


@pytest.mark.parametrize(
    ("entrypoint", "files", "expected"),
    [
        ('"perl model.pl"', {"model.pl": "print 1"}, ["perl", "model.pl"]),
        ('["bash", "bin/run.sh", "--fast"]', {"bin/run.sh": "#!/bin/sh"}, None),
        ('["./serve", "--port", "0"]', {"serve": "#!/bin/sh"}, None),
        ("\"python3 'my model.py'\"", {"my model.py": ""}, ["python3", "my model.py"]),
    ],
)
def test_command_entrypoints(tmp_path, entrypoint, files, expected):
    toml = f'name = "tool"\nruntime = "command"\nentrypoint = {entrypoint}\n'
    root = make_package(tmp_path / "pkg", {"model.toml": toml, **files})
    manifest = load_manifest(root)
    assert manifest.entrypoint == (expected or json.loads(entrypoint))


def test_node_entrypoint_and_load(tmp_path):
    toml = 'name = "echo-js"\nruntime = "node"\nentrypoint = "index.mjs"\nload = "index.mjs:load"\n'
    root = make_package(tmp_path / "pkg", {"model.toml": toml, "index.mjs": "export {}"})
    manifest = load_manifest(root)
    assert (manifest.entrypoint, manifest.load) == ("index.mjs", "index.mjs:load")


def test_internal_symlinked_entrypoint_is_allowed_and_one_leaving_is_not(tmp_path):
    root = package_with(tmp_path, MINIMAL_TOML.replace("predict.py", "link.py"))
    (root / "link.py").symlink_to("predict.py")
    assert load_manifest(root).entrypoint == "link.py:apply"
    outside = make_package(tmp_path / "outside", {"evil.py": "def apply(x): pass\n"})
    (root / "link.py").unlink()
    (root / "link.py").symlink_to(outside / "evil.py")
    with pytest.raises(ManifestError) as caught:
        load_manifest(root)
    assert caught.value.field == "entrypoint"
    assert caught.value.message == ('model.toml: entrypoint: "link.py" points outside the package')


# --- readme -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"README.md": "# md", "README": "plain"}, "# md"),
        ({"README": "plain"}, "plain"),
        ({"readme.md": "# lower"}, "# lower"),
        ({"docs/README.md": "# not at the root"}, ""),
    ],
)
def test_readme(tmp_path, files, expected):
    root = package_with(
        tmp_path, MINIMAL_TOML, **{k.replace("/", "__"): v for k, v in files.items()}
    )
    assert load_manifest(root).readme == expected


def test_readme_over_one_mib_is_refused(tmp_path):
    root = package_with(tmp_path, MINIMAL_TOML, **{"README.md": "x" * (1024 * 1024 + 1)})
    with pytest.raises(ManifestError, match=r"^readme: README\.md is larger than 1 MiB") as caught:
        load_manifest(root)
    assert caught.value.field == "readme"


# --- overrides (the upload form, the command line) ------------------------------------------


def test_overrides_fill_in_and_replace(tmp_path):
    root = package_with(tmp_path, MINIMAL_TOML + 'title = "From the file"\nlicense = "mit"\n')
    manifest = load_manifest(
        root,
        overrides={
            "name": "renamed",
            "title": "From the form",
            "tagline": "Added by the form",
            "tags": "Vision, ocr",
            "task": "ocr",
            "framework": "pytorch",
            "license": "",  # empty form field: keep the manifest's value
        },
    )
    assert manifest.name == "renamed"
    assert manifest.title == "From the form"
    assert manifest.tagline == "Added by the form"
    assert manifest.tags == ("vision", "ocr")
    assert (manifest.task, manifest.framework, manifest.license) == ("ocr", "pytorch", "mit")


def test_overrides_are_validated_and_named_without_the_model_toml_prefix(tmp_path):
    root = package_with(tmp_path, MINIMAL_TOML)
    with pytest.raises(ManifestError) as caught:
        load_manifest(root, overrides={"name": "Bad Name"})
    assert caught.value.field == "name"
    assert caught.value.message.startswith('name: "Bad Name" is not a valid name')
    with pytest.raises(ManifestError, match=r"^tags: has 21 tags; at most 20"):
        load_manifest(root, overrides={"tags": [f"t{i}" for i in range(21)]})


def test_unknown_override_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="cannot override runtime"):
        load_manifest(package_with(tmp_path, MINIMAL_TOML), overrides={"runtime": "node"})


# --- every validation error -------------------------------------------------------------------

MINIMAL_LINES = MINIMAL_TOML.splitlines()


def with_line(line: str) -> str:
    return MINIMAL_TOML + line + "\n"


def replacing(key: str, line: str | None) -> str:
    kept = [existing for existing in MINIMAL_LINES if not existing.startswith(f"{key} =")]
    return "\n".join(kept + ([line] if line else [])) + "\n"


ERROR_CASES = [
    # (id, model.toml, extra files, field, message pattern after "model.toml: <field>: ")
    ("toml-syntax", 'name = "x"\nruntime =\n', {}, "model.toml", r"is not valid TOML: .*line 2"),
    ("toml-not-utf8", b'name = "\xff"\n', {}, "model.toml", r"is not UTF-8 text"),
    (
        "unknown-key",
        with_line('entry_point = "x"'),
        {},
        "model.toml",
        r'unknown key "entry_point" \(did you mean "entrypoint"\?\); the keys are: name, ',
    ),
    (
        "unknown-keys",
        with_line("colour = 1\nsize = 2"),
        {},
        "model.toml",
        r'unknown keys "colour", "size"',
    ),
    ("name-missing", replacing("name", None), {}, "name", r'is required, e.g. name = "sentiment"'),
    (
        "name-invalid",
        replacing("name", 'name = "Sentiment Analysis"'),
        {},
        "name",
        r'"Sentiment Analysis" is not a valid name: use 2 to 64 lowercase letters, digits, "-" '
        r'or "_", starting with a letter \(e\.g\. "sentiment-analysis"\)',
    ),
    ("name-short", replacing("name", 'name = "a"'), {}, "name", r'"a" is not a valid name'),
    ("name-digit", replacing("name", 'name = "1st"'), {}, "name", r'"1st" is not a valid name'),
    ("name-long", replacing("name", f'name = "{"a" * 65}"'), {}, "name", r"is not a valid name"),
    ("name-type", replacing("name", "name = 3"), {}, "name", r"must be a string"),
    (
        "title-long",
        with_line(f'title = "{"t" * 101}"'),
        {},
        "title",
        r"is 101 characters long; at most 100",
    ),
    ("title-lines", with_line('title = "two\\nlines"'), {}, "title", r"must be a single line"),
    ("tagline-long", with_line(f'tagline = "{"t" * 201}"'), {}, "tagline", r"at most 200"),
    (
        "runtime-missing",
        replacing("runtime", None),
        {},
        "runtime",
        r"is required: one of python, node, command, adk, mlflow, onnx, skops",
    ),
    (
        "runtime-unknown",
        replacing("runtime", 'runtime = "pyhton"'),
        {},
        "runtime",
        r'"pyhton" is not a known runtime; use one of python, node, command, adk, mlflow, onnx',
    ),
    (
        "entrypoint-missing",
        replacing("entrypoint", None),
        {},
        "entrypoint",
        r'is required, e\.g\. entrypoint = "predict\.py:apply"',
    ),
    (
        "entrypoint-form",
        replacing("entrypoint", 'entrypoint = "predict:apply"'),
        {},
        "entrypoint",
        r'must look like "predict\.py:apply" \(a \.py file in the package, a colon, a function '
        r'name\), not "predict:apply"',
    ),
    (
        "entrypoint-list",
        replacing("entrypoint", 'entrypoint = ["predict.py"]'),
        {},
        "entrypoint",
        r'must look like "predict\.py:apply"',
    ),
    (
        "entrypoint-no-file",
        replacing("entrypoint", 'entrypoint = "missing.py:apply"'),
        {},
        "entrypoint",
        r'file "missing\.py" does not exist in the package',
    ),
    (
        "entrypoint-folder",
        replacing("entrypoint", 'entrypoint = "pkg.py:apply"'),
        {"pkg.py/x": ""},
        "entrypoint",
        r'file "pkg\.py" is a folder, not a file',
    ),
    (
        "entrypoint-dotdot",
        replacing("entrypoint", 'entrypoint = "../predict.py:apply"'),
        {},
        "entrypoint",
        r'"\.\./predict\.py" has a "\.\." component',
    ),
    (
        "entrypoint-absolute",
        replacing("entrypoint", 'entrypoint = "/etc/predict.py:apply"'),
        {},
        "entrypoint",
        r'"/etc/predict\.py" is an absolute path',
    ),
    (
        "entrypoint-function-name",
        replacing("entrypoint", 'entrypoint = "predict.py:not-a-name"'),
        {},
        "entrypoint",
        r'"not-a-name" is not a Python function name',
    ),
    (
        "entrypoint-keyword",
        replacing("entrypoint", 'entrypoint = "predict.py:class"'),
        {},
        "entrypoint",
        r'"class" is not a Python function name',
    ),
    (
        "entrypoint-undefined",
        replacing("entrypoint", 'entrypoint = "predict.py:predict"'),
        {},
        "entrypoint",
        r'predict\.py has no top-level function "predict"',
    ),
    (
        "entrypoint-nested-only",
        MINIMAL_TOML,
        {"predict.py": "def outer():\n    def apply(x):\n        return x\n"},
        "entrypoint",
        r'predict\.py has no top-level function "apply"',
    ),
    (
        "entrypoint-syntax",
        MINIMAL_TOML,
        {"predict.py": "def apply(x):\nreturn x\n"},
        "entrypoint",
        r"predict\.py does not parse: expected an indented block .*\(line 2\)",
    ),
    (
        "load-form",
        with_line('load = "predict.load"'),
        {},
        "load",
        r'must look like "predict\.py:apply"',
    ),
    (
        "load-undefined",
        with_line('load = "predict.py:setup"'),
        {},
        "load",
        r'no top-level function "setup"',
    ),
    (
        "load-command",
        'name = "tool"\nruntime = "command"\nentrypoint = ["perl", "m.pl"]\nload = "m.pl:x"\n',
        {"m.pl": ""},
        "load",
        r"is only used by the python, adk and node runtimes",
    ),
    (
        "node-not-js",
        'name = "js"\nruntime = "node"\nentrypoint = "index.py"\n',
        {},
        "entrypoint",
        r'"index\.py" must be a \.js, \.mjs or \.cjs file that exports apply',
    ),
    (
        "node-missing",
        'name = "js"\nruntime = "node"\nentrypoint = "index.js"\n',
        {},
        "entrypoint",
        r'file "index\.js" does not exist in the package',
    ),
    (
        "node-load-form",
        'name = "js"\nruntime = "node"\nentrypoint = "index.js"\nload = "index.js"\n',
        {"index.js": ""},
        "load",
        r'must look like "index\.js:load"',
    ),
    (
        "command-types",
        'name = "tool"\nruntime = "command"\nentrypoint = [1, 2]\n',
        {},
        "entrypoint",
        r'must be a list of strings such as \["perl", "model\.pl"\]',
    ),
    (
        "command-unknown-program",
        'name = "tool"\nruntime = "command"\nentrypoint = "java -jar model.jar"\n',
        {"model.jar": ""},
        "entrypoint",
        r'"java" is neither a file in the package nor one of the interpreters perl, sh, bash, '
        r"python3, node, ruby",
    ),
    (
        "command-interpreter-alone",
        'name = "tool"\nruntime = "command"\nentrypoint = ["perl"]\n',
        {},
        "entrypoint",
        r'"perl" needs a script from the package after it, e\.g\. \["perl", "model\.pl"\]',
    ),
    (
        "command-script-missing",
        'name = "tool"\nruntime = "command"\nentrypoint = ["ruby", "model.rb"]\n',
        {},
        "entrypoint",
        r'file "model\.rb" does not exist in the package',
    ),
    (
        "command-quotes",
        'name = "tool"\nruntime = "command"\nentrypoint = "perl \\"x"\n',
        {},
        "entrypoint",
        r"cannot be split into arguments: No closing quotation",
    ),
    (
        "command-empty",
        'name = "tool"\nruntime = "command"\nentrypoint = []\n',
        {},
        "entrypoint",
        r"is empty",
    ),
    (
        "requirements-missing",
        with_line('requirements = "reqs.txt"'),
        {},
        "requirements",
        r'file "reqs\.txt" does not exist in the package',
    ),
    ("license-long", with_line(f'license = "{"l" * 65}"'), {}, "license", r"at most 64"),
    ("task-long", with_line(f'task = "{"t" * 65}"'), {}, "task", r"at most 64"),
    ("framework-type", with_line("framework = 1"), {}, "framework", r"must be a string"),
    (
        "tags-type",
        with_line("tags = 3"),
        {},
        "tags",
        r'must be a list of strings, e\.g\. \["nlp", "vision"\]',
    ),
    (
        "tags-invalid",
        with_line('tags = ["ok", "Bad Tag!"]'),
        {},
        "tags",
        r'"bad tag!" is not a valid tag',
    ),
    (
        "tags-too-many",
        with_line("tags = [" + ", ".join(f'"t{i}"' for i in range(21)) + "]"),
        {},
        "tags",
        r"has 21 tags; at most 20 are allowed",
    ),
    ("network-type", with_line('network = "no"'), {}, "network", r"must be true or false"),
    ("io-type", with_line('io = "x"'), {}, "io", r"must be a table \(\[io\]\)"),
    (
        "io-unknown",
        with_line("[io]\nsample_inputs = 1"),
        {},
        "io",
        r'unknown key "sample_inputs" \(did you mean "sample_input"\?\); \[io\] has: '
        r"sample_input, ",
    ),
    (
        "pricing-unknown",
        with_line('[pricing]\nroyalty = "1"'),
        {},
        "pricing",
        r'unknown key "royalty" \(did you mean "royalty_per_call"\?\)',
    ),
    (
        "royalty-negative",
        with_line('[pricing]\nroyalty_per_call = "-0.01"'),
        {},
        "pricing.royalty_per_call",
        r"must not be negative",
    ),
    (
        "royalty-places",
        with_line('[pricing]\nroyalty_per_call = "0.0000001"'),
        {},
        "pricing.royalty_per_call",
        r"has more than 6 decimal places",
    ),
    (
        "royalty-text",
        with_line('[pricing]\nroyalty_per_call = "free"'),
        {},
        "pricing.royalty_per_call",
        r'"free" is not a decimal number',
    ),
    (
        "royalty-nan",
        with_line('[pricing]\nroyalty_per_call = "NaN"'),
        {},
        "pricing.royalty_per_call",
        r'"NaN" is not a decimal number',
    ),
    (
        "royalty-bool",
        with_line("[pricing]\nroyalty_per_call = true"),
        {},
        "pricing.royalty_per_call",
        r"must be a decimal number of credits",
    ),
    (
        "royalty-huge",
        with_line('[pricing]\nroyalty_per_call = "1e9"'),
        {},
        "pricing.royalty_per_call",
        r"must be at most 1,000,000 credits",
    ),
    (
        "schema-missing",
        with_line('[io]\ninput_schema = "schema.json"'),
        {},
        "io.input_schema",
        r'file "schema\.json" does not exist in the package',
    ),
    (
        "schema-not-json",
        with_line('[io]\ninput_schema = "schema.json"'),
        {"schema.json": '{"type": "object",\n}'},
        "io.input_schema",
        r"schema\.json is not valid JSON: .* \(line 2, column 1\)",
    ),
    (
        "schema-invalid",
        with_line('[io]\ninput_schema = "schema.json"'),
        {"schema.json": '{"type": 12}'},
        "io.input_schema",
        r"is not a valid JSON Schema: 12 is not valid under any of the given schemas",
    ),
    (
        "schema-inline-invalid",
        with_line('[io]\ninput_schema = {type = "object", required = "text"}'),
        {},
        "io.input_schema",
        r"is not a valid JSON Schema: 'text' is not of type 'array'",
    ),
    (
        "schema-array",
        with_line('[io]\ninput_schema = "schema.json"'),
        {"schema.json": "[]"},
        "io.input_schema",
        r"must be a JSON Schema object",
    ),
    (
        "schema-type",
        with_line("[io]\ninput_schema = 3"),
        {},
        "io.input_schema",
        r'must be the path of a JSON Schema file \(e\.g\. "schema/input\.json"\) or a table',
    ),
    (
        "schema-ref",
        with_line('[io]\nsample_input = 1\ninput_schema = {"$ref" = "http://127.0.0.1:9/s.json"}'),
        {},
        "io.input_schema",
        r"has a \$ref that cannot be resolved",
    ),
    (
        "sample-mismatch",
        with_line('[io]\nsample_input = {txt = "hi"}\ninput_schema = "schema.json"'),
        {"schema.json": json.dumps(SCHEMA)},
        "io.sample_input",
        r"does not match io\.input_schema at \$\.text: is required \(required\)",
    ),
    (
        "sample-mismatch-nested",
        with_line('[io]\nsample_input = {text = ""}\ninput_schema = "schema.json"'),
        {"schema.json": json.dumps(SCHEMA)},
        "io.sample_input",
        r"does not match io\.input_schema at \$\.text: must be at least 1 characters long "
        r"\(minLength\)",
    ),
    (
        "sample-datetime",
        with_line("[io]\nsample_input = {when = 1979-05-27T07:32:00Z}"),
        {},
        "io.sample_input",
        r"TOML dates and times have no JSON form; write them as strings",
    ),
    ("sample-nan", with_line("[io]\nsample_input = [nan]"), {}, "io.sample_input", r"nan and inf"),
    (
        "examples-type",
        with_line('[io]\nexamples = {name = "x", input = 1}'),
        {},
        "io.examples",
        r"must be an array of tables \(\[\[io\.examples\]\]\)",
    ),
    (
        "examples-unnamed",
        with_line('[[io.examples]]\ninput = {text = "hi"}'),
        {},
        "io.examples[0]",
        r"needs a name",
    ),
    (
        "examples-no-input",
        with_line('[[io.examples]]\nname = "Happy"'),
        {},
        "io.examples[0]",
        r"needs an input",
    ),
    (
        "examples-unknown-key",
        with_line('[[io.examples]]\nname = "Happy"\ninput = 1\noutput = 2'),
        {},
        "io.examples[0]",
        r"unknown key 'output'; the keys are: name, input",
    ),
    (
        "examples-same-name",
        with_line('[[io.examples]]\nname = "A"\ninput = 1\n[[io.examples]]\nname = "A"\ninput = 2'),
        {},
        "io.examples[1]",
        r"name 'A' is used twice",
    ),
    (
        "examples-long-name",
        with_line(f'[[io.examples]]\nname = "{"x" * 61}"\ninput = 1'),
        {},
        "io.examples[0]",
        r"name must be one line of at most 60 characters",
    ),
    (
        "examples-mismatch",
        with_line(
            '[io]\ninput_schema = "schema.json"\n[[io.examples]]\nname = "Empty"\n'
            'input = {text = ""}'
        ),
        {"schema.json": json.dumps(SCHEMA)},
        "io.examples[0]",
        r"does not match io\.input_schema at \$\.text: must be at least 1 characters long",
    ),
    (
        "onnx-suffix",
        'name = "mm"\nruntime = "onnx"\nentrypoint = "model.bin"\n',
        {"model.bin": ""},
        "entrypoint",
        r'"model\.bin" must be a \.onnx file for runtime onnx',
    ),
    (
        "onnx-missing",
        'name = "mm"\nruntime = "onnx"\nentrypoint = "model.onnx"\n',
        {},
        "entrypoint",
        r'file "model\.onnx" does not exist',
    ),
    (
        "onnx-none-to-detect",
        'name = "mm"\nruntime = "onnx"\n',
        {},
        "entrypoint",
        r'is required, e\.g\. entrypoint = "model\.onnx"',
    ),
    (
        "mlflow-no-mlmodel",
        'name = "mm"\nruntime = "mlflow"\nentrypoint = "model"\n',
        {"model/model.pkl": ""},
        "entrypoint",
        r'folder "model": MLmodel is missing',
    ),
    (
        "mlflow-no-pyfunc",
        'name = "mm"\nruntime = "mlflow"\nentrypoint = "."\n',
        {"MLmodel": "flavors:\n  sklearn:\n    pickled_model: model.pkl\n"},
        "entrypoint",
        r'folder "\.": MLmodel has no python_function flavor \(it has: sklearn\)',
    ),
]


@pytest.mark.parametrize(
    ("toml", "files", "field", "pattern"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_validation_errors_name_the_field(tmp_path, toml, files, field, pattern):
    root = make_package(tmp_path / "pkg", {"predict.py": PREDICT_PY, "model.toml": toml, **files})
    with pytest.raises(ManifestError) as caught:
        load_manifest(root)
    error = caught.value
    assert isinstance(error, PackageError)
    assert error.field == field
    prefix = "model.toml: " if field == "model.toml" else f"model.toml: {field}: "
    assert error.message.startswith(prefix), error.message
    assert re.search(pattern, error.message[len(prefix) :]), error.message
    assert str(error) == error.message


def test_every_runtime_and_format_is_covered():
    assert RUNTIMES == ("python", "node", "command", "adk")
    assert FORMATS == ("mlflow", "onnx", "skops")


# --- standard formats without model.toml ------------------------------------------------------


def test_mlflow_folder_at_the_root(tmp_path):
    root = make_package(
        tmp_path / "pkg",
        {"MLmodel": MLMODEL_PYFUNC, "model.pkl": b"\x80", "requirements.txt": "mlflow\n"},
    )
    assert detect_format(root) == ("mlflow", ".")
    manifest = load_manifest(root, overrides={"name": "iris"})
    assert (manifest.name, manifest.runtime, manifest.entrypoint) == ("iris", "mlflow", ".")
    assert manifest.framework == "mlflow"
    assert manifest.requirements == "requirements.txt"
    assert manifest.title == "iris"
    assert manifest.is_format


def test_mlflow_folder_in_a_single_subfolder(tmp_path):
    root = make_package(
        tmp_path / "pkg",
        {
            "README.md": "# Iris",
            "model/MLmodel": MLMODEL_PYFUNC,
            "model/model.pkl": b"\x80",
            "model/requirements.txt": "scikit-learn\n",
            "model/model.onnx": b"",  # an MLflow ONNX model keeps its file next to MLmodel
        },
    )
    assert detect_format(root) == ("mlflow", "model")
    manifest = load_manifest(root, overrides={"name": "iris", "framework": "scikit-learn"})
    assert (manifest.runtime, manifest.entrypoint) == ("mlflow", "model")
    assert manifest.requirements == "model/requirements.txt"
    assert manifest.framework == "scikit-learn"
    assert manifest.readme == "# Iris"


@pytest.mark.parametrize(
    ("filename", "fmt", "framework"),
    [("x.onnx", "onnx", "onnx"), ("x.skops", "skops", "scikit-learn"), ("X.ONNX", "onnx", "onnx")],
)
def test_single_model_file(tmp_path, filename, fmt, framework):
    root = make_package(tmp_path / "pkg", {filename: b"content does not matter"})
    assert detect_format(root) == (fmt, filename)
    manifest = load_manifest(root, overrides={"name": "digits", "tags": ["vision"]})
    assert (manifest.runtime, manifest.entrypoint, manifest.framework) == (fmt, filename, framework)
    assert manifest.requirements is None
    assert manifest.tags == ("vision",)


def test_model_toml_may_name_a_standard_format_explicitly(tmp_path):
    toml = 'name = "digits"\nruntime = "onnx"\nentrypoint = "models/digits.onnx"\nlicense = "mit"\n'
    root = make_package(tmp_path / "pkg", {"model.toml": toml, "models/digits.onnx": b""})
    manifest = load_manifest(root)
    assert (manifest.runtime, manifest.entrypoint, manifest.license) == (
        "onnx",
        "models/digits.onnx",
        "mit",
    )
    assert manifest.framework == "onnx"


def test_model_toml_with_a_format_runtime_and_no_entrypoint_uses_the_detected_file(tmp_path):
    root = make_package(
        tmp_path / "pkg", {"model.toml": 'name = "clf"\nruntime = "skops"\n', "clf.skops": b""}
    )
    assert load_manifest(root).entrypoint == "clf.skops"


def test_no_model_toml_needs_a_name(tmp_path):
    root = make_package(tmp_path / "pkg", {"x.onnx": b""})
    with pytest.raises(ManifestError) as caught:
        load_manifest(root)
    assert caught.value.field == "name"
    assert caught.value.message == "name: no model.toml: give the model's name"


def test_no_model_toml_and_no_format(tmp_path):
    root = make_package(tmp_path / "pkg", {"predict.py": PREDICT_PY})
    assert detect_format(root) is None
    with pytest.raises(ManifestError) as caught:
        load_manifest(root, overrides={"name": "x1"})
    assert caught.value.field == "model.toml"
    assert caught.value.message == (
        "model.toml is missing (or publish an MLflow model folder, an .onnx file or a .skops file)"
    )


@pytest.mark.parametrize(
    ("files", "explanation"),
    [
        (
            {"MLmodel": "flavors:\n  sklearn: {}\n"},
            r": MLmodel has no python_function flavor \(it has: sklearn\)",
        ),
        ({"MLmodel": "flavors: [unclosed"}, r": MLmodel is not valid YAML"),
        ({"model/MLmodel": "artifact_path: model\n"}, r": model/MLmodel has no flavors: section"),
        (
            {"a/MLmodel": MLMODEL_PYFUNC, "b/MLmodel": MLMODEL_PYFUNC},
            r': found several MLflow models \("a", "b"\); publish one at a time',
        ),
        (
            {"a.onnx": b"", "b.skops": b""},
            r': found several model files \("a\.onnx", "b\.skops"\); publish one at a time',
        ),
    ],
)
def test_almost_a_standard_format_says_what_is_wrong(tmp_path, files, explanation):
    root = make_package(tmp_path / "pkg", files)
    assert detect_format(root) is None
    with pytest.raises(ManifestError) as caught:
        load_manifest(root, overrides={"name": "x1"})
    assert caught.value.field == "model.toml"
    assert caught.value.message.startswith("model.toml is missing (or publish an MLflow model")
    assert re.search(explanation, caught.value.message), caught.value.message


def test_detected_format_errors_carry_no_model_toml_prefix(tmp_path):
    root = make_package(tmp_path / "pkg", {"x.onnx": b""})
    with pytest.raises(ManifestError) as caught:
        load_manifest(root, overrides={"name": "x", "tags": ["no spaces allowed"]})
    assert caught.value.field == "name"
    assert caught.value.message.startswith('name: "x" is not a valid name')


# --- input schema and sample input ------------------------------------------------------------


def test_input_schema_from_a_file_and_a_matching_sample(tmp_path):
    toml = with_line('[io]\nsample_input = {text = "hi"}\ninput_schema = "schema/input.json"')
    root = package_with(tmp_path, toml, **{"schema__input.json": json.dumps(SCHEMA)})
    manifest = load_manifest(root)
    assert manifest.input_schema == SCHEMA
    assert manifest.sample_input == {"text": "hi"}


def test_inline_input_schema(tmp_path):
    toml = with_line(
        "[io]\nsample_input = [1, 2]\n"
        'input_schema = {type = "array", items = {type = "integer"}, minItems = 1}'
    )
    manifest = load_manifest(package_with(tmp_path, toml))
    assert manifest.input_schema == {"type": "array", "items": {"type": "integer"}, "minItems": 1}
    assert manifest.sample_input == [1, 2]


@pytest.mark.parametrize("sample", ['"plain text"', "42", "true", "[1, {a = 2}]"])
def test_sample_input_may_be_any_json_value(tmp_path, sample):
    root = package_with(tmp_path, with_line(f"[io]\nsample_input = {sample}"))
    assert json.loads(json.dumps(load_manifest(root).sample_input)) is not None


def test_a_remote_ref_in_the_schema_is_never_fetched(tmp_path):
    """jsonschema's default registry would GET the URL (a server-side request forgery); the
    platform's validator must not. A loopback server counts the requests."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = json.dumps({"type": "integer"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/schema.json"
        toml = with_line(f'[io]\nsample_input = 1\ninput_schema = {{"$ref" = "{url}"}}')
        with pytest.raises(ManifestError) as caught:
            load_manifest(package_with(tmp_path, toml))
        assert caught.value.field == "io.input_schema"
        assert "has a $ref that cannot be resolved" in caught.value.message
        with pytest.raises(referencing.exceptions.Unresolvable):
            input_validator({"$ref": url}).validate(1)
    finally:
        server.shutdown()
        server.server_close()
    assert requests == []


def test_input_validator_checks_inputs_with_local_refs():
    schema = {
        "$defs": {"text": {"type": "string", "minLength": 1}},
        "type": "object",
        "properties": {"text": {"$ref": "#/$defs/text"}},
    }
    assert list(input_validator(schema).iter_errors({"text": "ok"})) == []
    assert [e.message for e in input_validator(schema).iter_errors({"text": ""})] == [
        "'' should be non-empty"
    ]


# --- [[metrics]]: evaluation results ----------------------------------------------------------


def test_metrics_are_read_stored_and_round_trip(tmp_path):
    toml = (
        MINIMAL_TOML
        + '[[metrics]]\nname = " accuracy "\nvalue = 0.933\ndataset = "iris hold-out 30%"\n'
        + '[[metrics]]\nname = "f1"\nvalue = 1\n'
    )
    manifest = load_manifest(package_with(tmp_path, toml))
    assert manifest.metrics == (
        {"name": "accuracy", "value": 0.933, "dataset": "iris hold-out 30%"},
        {"name": "f1", "value": 1, "dataset": ""},
    )
    stored = json.loads(json.dumps(manifest.as_dict()))
    assert Manifest.from_dict(stored) == manifest
    # A build stored before [[metrics]] existed reads as having none.
    del stored["metrics"]
    assert Manifest.from_dict(stored).metrics == ()
    assert load_manifest(package_with(tmp_path / "b", MINIMAL_TOML)).metrics == ()


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ('metrics = "accuracy"\n', r"^model\.toml: metrics: must be \[\[metrics\]\] tables"),
        ("metrics = [1]\n", r"^model\.toml: metrics\[1\]: must be a table"),
        ("[[metrics]]\nvalue = 0.5\n", r"^model\.toml: metrics\[1\]\.name: must be a non-empty"),
        ('[[metrics]]\nname = "  "\nvalue = 0.5\n', r"metrics\[1\]\.name: must be a non-empty"),
        ('[[metrics]]\nname = "a"\n', r"^model\.toml: metrics\[1\]\.value: must be a number"),
        ('[[metrics]]\nname = "a"\nvalue = "0.9"\n', r"metrics\[1\]\.value: must be a number"),
        ('[[metrics]]\nname = "a"\nvalue = true\n', r"metrics\[1\]\.value: must be a number"),
        ('[[metrics]]\nname = "a"\nvalue = nan\n', r"metrics\[1\]\.value: must be a finite"),
        ('[[metrics]]\nname = "a"\nvalue = inf\n', r"metrics\[1\]\.value: must be a finite"),
        ('[[metrics]]\nname = "a"\nvalue = 1\nscore = 2\n', r"metrics\[1\]: unknown key"),
        ('[[metrics]]\nname = "a\\nb"\nvalue = 1\n', r"metrics\[1\]\.name: must be a single"),
        (f'[[metrics]]\nname = "{"n" * 65}"\nvalue = 1\n', r"name: is 65 characters long"),
        (
            '[[metrics]]\nname = "a"\nvalue = 1\ndataset = 3\n',
            r"metrics\[1\]\.dataset: must be a non-empty string",
        ),
        ('[[metrics]]\nname = "a"\nvalue = 1\n' * 21, r"^model\.toml: metrics: has 21 entries"),
    ],
)
def test_bad_metrics_are_refused_naming_the_entry_and_field(tmp_path, metrics, message):
    with pytest.raises(ManifestError, match=message):
        load_manifest(package_with(tmp_path, MINIMAL_TOML + metrics))
