"""The package manifest, `model.toml`: reading it, validating every field, and its defaults.

    name = "sentiment"                 # slug
    title = "Sentiment analysis"
    tagline = "Positive/negative score for English text"
    runtime = "python"                 # python | node | command | adk | mlflow | onnx | skops
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
    royalty_per_call = "0.0000"
    [[metrics]]                        # evaluation results, shown on the model page
    name = "accuracy"
    value = 0.797
    dataset = "movie reviews, grouped 5-fold CV"

A package in a standard format (formats.py) needs no model.toml; its name then comes from the
upload form. Every problem is a ManifestError naming the field, with a message that starts with
"model.toml: <field>: " when the value came from the file, and with "<field>: " when it came
from the form or was detected.
"""

from __future__ import annotations

import ast
import difflib
import json
import keyword
import math
import re
import shlex
import tomllib
import warnings
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import Any

import referencing.exceptions
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from jsonschema_specifications import REGISTRY as METASCHEMAS
from packaging.requirements import InvalidRequirement, Requirement

from catalog.packages.archive import PackageError
from catalog.packages.formats import (
    FILE_FORMATS,
    FORMAT_FRAMEWORKS,
    detect_format,
    format_problem,
    mlflow_model_problem,
)
from catalog.packages.input_errors import first_input_problem
from marketplace.core.outbound import OutboundRefused, check_public_url

RUNTIMES = ("python", "node", "command", "adk")  # code runtimes
FORMATS = ("mlflow", "onnx", "skops")  # standard formats, no code
SLUG_RE = r"^[a-z][a-z0-9_-]{1,63}$"
TAG_RE = r"^[a-z0-9][a-z0-9+#.-]{0,39}$"
MANIFEST_FILE = "model.toml"
# Interpreters a `command` entrypoint may start with, followed by a script in the package.
COMMAND_INTERPRETERS = ("perl", "sh", "bash", "python3", "node", "ruby")
# What the upload form or the command line may set or replace.
OVERRIDABLE = ("name", "title", "tagline", "license", "tags", "task", "framework")
MAX_TAGS = 20
MAX_ROYALTY = Decimal("1000000")
ROYALTY_PLACES = 6

_KEYS = (
    "name",
    "title",
    "tagline",
    "runtime",
    "entrypoint",
    "load",
    "requirements",
    "license",
    "tags",
    "task",
    "framework",
    "network",
    "io",
    "pricing",
    "metrics",
)
_METRIC_KEYS = ("name", "value", "dataset")
MAX_METRICS = 20
_METRIC_LENGTHS = {"name": 64, "dataset": 200}
_IO_KEYS = ("sample_input", "input_schema", "examples")
_MAX_EXAMPLES = 20
_EXAMPLE_NAME_LENGTH = 60
_PRICING_KEYS = ("royalty_per_call",)
_LENGTHS = {"title": 100, "tagline": 200, "license": 64, "task": 64, "framework": 64}
_MAX_TEXT_FILE = 1024 * 1024  # model.toml, a JSON schema, the README
_MAX_PARSED_MODULE = 10 * 1024 * 1024  # larger Python modules are not checked with ast
_PY_TARGET_RE = re.compile(r"^(?P<path>[^:]+\.py):(?P<function>[^:]+)$")
_JS_SUFFIXES = (".js", ".mjs", ".cjs")
_JS_TARGET_RE = re.compile(r"^(?P<path>[^:]+\.[mc]?js):(?P<function>[^:]+)$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")

FROM_FILE = "file"  # the value was written in model.toml
FROM_FORM = "form"  # given as an override (upload form, command line)
DETECTED = "detected"  # found by looking at the package (standard formats)
DEFAULT = "default"


class ManifestError(PackageError):
    """A manifest value is missing or wrong. `field` is the manifest field ("name",
    "entrypoint", "io.sample_input", "pricing.royalty_per_call", or "model.toml" for the file
    as a whole)."""

    def __init__(self, message: str, *, field: str | None):
        super().__init__(message, field=field)


@dataclass(frozen=True)
class Manifest:
    name: str
    title: str
    tagline: str
    runtime: str  # one of RUNTIMES + FORMATS
    # python/adk "module.py:function"; node "file.js"; command an argv list; formats the
    # model file or folder, relative to the package root
    entrypoint: str | list[str]
    load: str | None
    requirements: str | None  # relative path of the requirements file
    license: str
    tags: tuple[str, ...]
    task: str
    framework: str
    network: bool
    sample_input: Any | None
    input_schema: dict | None
    royalty_per_call: Decimal
    readme: str  # README.md (or README) from the package root, "" if none
    # Evaluation results declared in [[metrics]]: ({"name", "value", "dataset"}, ...), the
    # value a finite number, the dataset "" when not given.
    metrics: tuple[dict, ...] = ()
    # Named inputs to try, each {"name": ..., "input": ...} (io.examples); none in manifests
    # stored before examples existed.
    examples: tuple[dict, ...] = ()

    @property
    def is_format(self) -> bool:
        """A standard-format model (no code of the author's runs)."""
        return self.runtime in FORMATS

    def as_dict(self) -> dict:
        """JSON-serialisable (the royalty as a string), for storing on a Build."""
        entrypoint = list(self.entrypoint) if isinstance(self.entrypoint, list) else self.entrypoint
        return {
            "name": self.name,
            "title": self.title,
            "tagline": self.tagline,
            "runtime": self.runtime,
            "entrypoint": entrypoint,
            "load": self.load,
            "requirements": self.requirements,
            "license": self.license,
            "tags": list(self.tags),
            "task": self.task,
            "framework": self.framework,
            "network": self.network,
            "sample_input": self.sample_input,
            "input_schema": self.input_schema,
            "royalty_per_call": str(self.royalty_per_call),
            "readme": self.readme,
            "metrics": [dict(metric) for metric in self.metrics],
            "examples": list(self.examples),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        """The inverse of as_dict (for a manifest stored on a Build)."""
        return cls(
            **{
                **data,
                "tags": tuple(data["tags"]),
                "royalty_per_call": Decimal(data["royalty_per_call"]),
                # Builds stored before [[metrics]] existed have none.
                "metrics": tuple(data.get("metrics") or ()),
                "examples": tuple(data.get("examples") or ()),
            }
        )


def input_validator(schema: dict) -> Draft202012Validator:
    """The validator for a model's input schema (JSON Schema 2020-12). Use this one wherever
    inputs are checked: jsonschema's default registry fetches any remote `$ref` over HTTP (a
    server-side request forgery for a schema written by a stranger); this registry knows only
    the JSON Schema metaschemas, so a remote `$ref` is unresolvable instead."""
    return Draft202012Validator(schema, registry=METASCHEMAS)


def load_manifest(root: Path, *, overrides: dict | None = None) -> Manifest:
    """Read and validate the manifest of the unpacked package at `root`: its model.toml, or
    the standard format detected when there is none. `overrides` (keys in OVERRIDABLE) fill in
    or replace manifest values and are validated the same way; None or "" means not given."""
    return _ManifestReader(Path(root), _clean_overrides(overrides)).read()


def _clean_overrides(overrides: dict | None) -> dict:
    if not overrides:
        return {}
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"load_manifest: cannot override {', '.join(unknown)}")
    return {
        key: value
        for key, value in overrides.items()
        if value is not None
        and not (isinstance(value, str) and not value.strip())
        and not (isinstance(value, list | tuple) and not value)
    }


class _ManifestReader:
    def __init__(self, root: Path, overrides: dict):
        self.root = root.resolve()
        self.overrides = overrides
        self.data: dict = {}
        self.origin = FROM_FILE

    # --- errors and values ----------------------------------------------------------------

    def fail(self, field: str, message: str, origin: str = FROM_FILE) -> ManifestError:
        prefix = f"{MANIFEST_FILE}: " if origin == FROM_FILE else ""
        return ManifestError(f"{prefix}{field}: {message}", field=field)

    def value(self, key: str) -> tuple[Any, str]:
        if key in self.overrides:
            return self.overrides[key], FROM_FORM
        if key in self.data:
            return self.data[key], self.origin
        return None, self.origin  # missing: to be added where the manifest comes from

    # --- the whole manifest ---------------------------------------------------------------

    def read(self) -> Manifest:
        manifest_path = self.root / MANIFEST_FILE
        detected = None
        if manifest_path.exists() or manifest_path.is_symlink():
            self.data = self.read_toml(manifest_path)
        else:
            detected = detect_format(self.root)
            if detected is None:
                problem = format_problem(self.root)
                raise ManifestError(
                    f"{MANIFEST_FILE} is missing (or publish an MLflow model folder, an .onnx "
                    "file or a .skops file)" + (f": {problem}" if problem else ""),
                    field=MANIFEST_FILE,
                )
            self.origin = DETECTED
            self.data = {"runtime": detected[0], "entrypoint": detected[1]}
        self.check_keys()

        name = self.name(detected is not None)
        runtime = self.runtime()
        entrypoint = self.entrypoint(runtime)
        io = self.table("io", _IO_KEYS)
        pricing = self.table("pricing", _PRICING_KEYS)
        input_schema = self.input_schema(io)
        sample_input = self.sample_input(io, input_schema)
        framework = self.text("framework") or FORMAT_FRAMEWORKS.get(runtime, "")
        return Manifest(
            name=name,
            title=self.text("title") or name,
            tagline=self.text("tagline"),
            runtime=runtime,
            entrypoint=entrypoint,
            load=self.load(runtime),
            requirements=self.requirements(runtime, entrypoint),
            license=self.text("license") or "unknown",
            tags=self.tags(),
            task=self.text("task"),
            framework=framework,
            network=self.network(),
            sample_input=sample_input,
            input_schema=input_schema,
            royalty_per_call=self.royalty(pricing),
            readme=self.readme(),
            metrics=self.metrics(),
            examples=self.examples(io, input_schema),
        )

    def read_toml(self, path: Path) -> dict:
        def fail(message: str) -> ManifestError:
            return ManifestError(f"{MANIFEST_FILE}: {message}", field=MANIFEST_FILE)

        if not path.is_file():
            raise fail("is not a file")
        if path.stat().st_size > _MAX_TEXT_FILE:
            raise fail("is larger than 1 MiB")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise fail(f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise fail(f"is not valid TOML: {exc}") from exc
        except RecursionError:  # tomllib parses nested arrays and tables recursively
            raise fail("nests arrays or tables too deeply") from None

    def check_keys(self) -> None:
        unknown = [key for key in self.data if key not in _KEYS]
        if unknown:
            raise ManifestError(
                f"{MANIFEST_FILE}: unknown {_plural(unknown, 'key')} {_listed(unknown, _KEYS)}; "
                f"the keys are: {', '.join(_KEYS)}",
                field=MANIFEST_FILE,
            )

    def table(self, key: str, keys: tuple[str, ...]) -> dict:
        value, origin = self.value(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table ([{key}])", origin)
        unknown = [name for name in value if name not in keys]
        if unknown:
            raise self.fail(
                key,
                f"unknown {_plural(unknown, 'key')} {_listed(unknown, keys)}; "
                f"[{key}] has: {', '.join(keys)}",
                origin,
            )
        return value

    # --- fields ---------------------------------------------------------------------------

    def name(self, no_manifest: bool) -> str:
        value, origin = self.value("name")
        if value is None:
            if no_manifest:
                raise ManifestError("name: no model.toml: give the model's name", field="name")
            raise self.fail("name", 'is required, e.g. name = "sentiment"', origin)
        if not isinstance(value, str):
            raise self.fail("name", "must be a string", origin)
        value = value.strip()
        if not re.fullmatch(SLUG_RE, value):
            hint = re.sub(r"[^a-z0-9_-]+", "-", value.lower()).strip("-_")
            suggestion = (
                f' (e.g. "{hint}")' if hint != value and re.fullmatch(SLUG_RE, hint) else ""
            )
            raise self.fail(
                "name",
                f"{_quote(value)} is not a valid name: use 2 to 64 lowercase letters, digits, "
                f'"-" or "_", starting with a letter{suggestion}',
                origin,
            )
        return value

    def text(self, key: str) -> str:
        value, origin = self.value(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(key, "must be a string", origin)
        value = value.strip()
        if any(ord(char) < 32 or ord(char) == 127 for char in value):
            raise self.fail(key, "must be a single line of text", origin)
        limit = _LENGTHS[key]
        if len(value) > limit:
            raise self.fail(
                key, f"is {len(value)} characters long; at most {limit} are allowed", origin
            )
        return value

    def metrics(self) -> tuple[dict, ...]:
        """[[metrics]]: each a table with a name, a finite numeric value and an optional
        dataset, all single lines of bounded length."""
        value, origin = self.value("metrics")
        if value is None:
            return ()
        example = '[[metrics]] tables: name = "accuracy", value = 0.93, dataset = "iris test"'
        if not isinstance(value, list):
            raise self.fail("metrics", f"must be {example}", origin)
        if len(value) > MAX_METRICS:
            raise self.fail(
                "metrics", f"has {len(value)} entries; at most {MAX_METRICS} are allowed", origin
            )
        metrics = []
        for index, entry in enumerate(value, start=1):
            field = f"metrics[{index}]"
            if not isinstance(entry, dict):
                raise self.fail(field, f"must be a table: {example}", origin)
            unknown = [key for key in entry if key not in _METRIC_KEYS]
            if unknown:
                raise self.fail(
                    field,
                    f"unknown {_plural(unknown, 'key')} {_listed(unknown, _METRIC_KEYS)}; "
                    f"a metric has: {', '.join(_METRIC_KEYS)}",
                    origin,
                )
            texts = {}
            for key, required in (("name", True), ("dataset", False)):
                text = entry.get(key)
                if text is None and not required:
                    texts[key] = ""
                    continue
                if not isinstance(text, str) or not text.strip():
                    raise self.fail(f"{field}.{key}", "must be a non-empty string", origin)
                text = text.strip()
                if any(ord(char) < 32 or ord(char) == 127 for char in text):
                    raise self.fail(f"{field}.{key}", "must be a single line of text", origin)
                if len(text) > _METRIC_LENGTHS[key]:
                    raise self.fail(
                        f"{field}.{key}",
                        f"is {len(text)} characters long; at most {_METRIC_LENGTHS[key]} "
                        "are allowed",
                        origin,
                    )
                texts[key] = text
            number = entry.get("value")
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise self.fail(f"{field}.value", "must be a number, e.g. value = 0.93", origin)
            if not math.isfinite(number) or abs(number) > 1e15:
                raise self.fail(f"{field}.value", "must be a finite number", origin)
            metrics.append({"name": texts["name"], "value": number, "dataset": texts["dataset"]})
        return tuple(metrics)

    def runtime(self) -> str:
        value, origin = self.value("runtime")
        known = ", ".join(RUNTIMES + FORMATS)
        if value is None:
            raise self.fail("runtime", f"is required: one of {known}", origin)
        if not isinstance(value, str) or value not in RUNTIMES + FORMATS:
            shown = _quote(value) if isinstance(value, str) else "this value"
            raise self.fail(
                "runtime", f"{shown} is not a known runtime; use one of {known}", origin
            )
        return value

    def entrypoint(self, runtime: str) -> str | list[str]:
        value, origin = self.value("entrypoint")
        if value is None and runtime in FORMATS:
            detected = detect_format(self.root)
            if detected is not None and detected[0] == runtime:
                value, origin = detected[1], DETECTED
        if value is None:
            example = {
                "python": '"predict.py:apply"',
                "adk": '"src/Algorithm.py:apply"',
                "node": '"index.js"',
                "command": '["perl", "model.pl"]',
                "mlflow": '"model" (the folder holding MLmodel)',
                "onnx": '"model.onnx"',
                "skops": '"model.skops"',
            }[runtime]
            raise self.fail("entrypoint", f"is required, e.g. entrypoint = {example}", origin)
        if runtime in ("python", "adk"):
            self.python_target("entrypoint", value, origin)
            return value
        if runtime == "node":
            if not isinstance(value, str):
                raise self.fail("entrypoint", 'must be a string such as "index.js"', origin)
            if not value.endswith(_JS_SUFFIXES):
                raise self.fail(
                    "entrypoint",
                    f"{_quote(value)} must be a .js, .mjs or .cjs file that exports apply",
                    origin,
                )
            self.package_path("entrypoint", value, origin)
            return value
        if runtime == "command":
            return self.command(value, origin)
        return self.format_target(runtime, value, origin)

    def python_target(self, field: str, value: Any, origin: str) -> None:
        """`path.py:function`, the file inside the package, defining that function."""
        match = _PY_TARGET_RE.match(value) if isinstance(value, str) else None
        if match is None:
            given = f", not {_quote(value)}" if isinstance(value, str) else ""
            raise self.fail(
                field,
                'must look like "predict.py:apply" (a .py file in the package, a colon, a '
                f"function name){given}",
                origin,
            )
        function = match["function"]
        if not function.isidentifier() or keyword.iskeyword(function):
            raise self.fail(field, f"{_quote(function)} is not a Python function name", origin)
        module = self.package_path(field, match["path"], origin)
        if module.stat().st_size > _MAX_PARSED_MODULE:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(module.read_bytes(), filename=match["path"])
        except SyntaxError as exc:
            raise self.fail(
                field,
                f"{match['path']} does not parse: {exc.msg} (line {exc.lineno})",
                origin,
            ) from exc
        except (ValueError, RecursionError, MemoryError) as exc:
            raise self.fail(field, f"{match['path']} does not parse: {exc}", origin) from exc
        names, star_import = _top_level_names(tree.body)
        if function not in names and not star_import:
            raise self.fail(
                field,
                f"{match['path']} has no top-level function {_quote(function)}",
                origin,
            )

    def command(self, value: Any, origin: str) -> list[str]:
        if isinstance(value, str):
            try:
                argv = shlex.split(value)
            except ValueError as exc:
                raise self.fail(
                    "entrypoint", f"cannot be split into arguments: {exc}", origin
                ) from exc
        elif isinstance(value, list) and all(isinstance(arg, str) for arg in value):
            argv = list(value)
        else:
            raise self.fail(
                "entrypoint",
                'must be a list of strings such as ["perl", "model.pl"] (or one string)',
                origin,
            )
        if not argv or not argv[0]:
            raise self.fail("entrypoint", "is empty: give the program to start", origin)
        if argv[0] in COMMAND_INTERPRETERS and not self.exists(argv[0]):
            if len(argv) < 2:
                raise self.fail(
                    "entrypoint",
                    f'"{argv[0]}" needs a script from the package after it, e.g. '
                    f'["{argv[0]}", "model.{_SCRIPT_SUFFIX[argv[0]]}"]',
                    origin,
                )
            self.package_path("entrypoint", argv[1], origin)
            return argv
        if not self.exists(argv[0]):
            raise self.fail(
                "entrypoint",
                f"{_quote(argv[0])} is neither a file in the package nor one of the "
                f"interpreters {', '.join(COMMAND_INTERPRETERS)}",
                origin,
            )
        self.package_path("entrypoint", argv[0], origin)
        return argv

    def format_target(self, runtime: str, value: Any, origin: str) -> str:
        if not isinstance(value, str):
            raise self.fail("entrypoint", "must be the path of the model in the package", origin)
        if runtime == "mlflow":
            folder = self.package_path("entrypoint", value, origin, kind="folder")
            problem = mlflow_model_problem(folder)
            if problem:
                raise self.fail("entrypoint", f"folder {_quote(value)}: {problem}", origin)
            return value
        suffix = FILE_FORMATS[runtime]
        if not value.lower().endswith(suffix):
            raise self.fail(
                "entrypoint",
                f"{_quote(value)} must be a {suffix} file for runtime {runtime}",
                origin,
            )
        self.package_path("entrypoint", value, origin)
        return value

    def load(self, runtime: str) -> str | None:
        value, origin = self.value("load")
        if value is None:
            return None
        if runtime in ("python", "adk"):
            self.python_target("load", value, origin)
            return value
        if runtime == "node":
            match = _JS_TARGET_RE.match(value) if isinstance(value, str) else None
            if match is None or not match["function"].isidentifier():
                raise self.fail(
                    "load",
                    'must look like "index.js:load" (a .js file in the package, a colon, a '
                    "function name)",
                    origin,
                )
            self.package_path("load", match["path"], origin)
            return value
        raise self.fail("load", "is only used by the python, adk and node runtimes", origin)

    def requirements(self, runtime: str, entrypoint: str | list[str]) -> str | None:
        value, origin = self.value("requirements")
        if value is not None:
            if not isinstance(value, str):
                raise self.fail("requirements", "must be the path of a file", origin)
            self.requirement_lines(self.package_path("requirements", value, origin), value)
            return value
        if runtime in ("python", "adk") and (self.root / "requirements.txt").is_file():
            self.requirement_lines(self.root / "requirements.txt", "requirements.txt")
            return "requirements.txt"
        if runtime == "mlflow":
            candidate = str(PurePosixPath(entrypoint) / "requirements.txt")
            if self.exists(candidate):
                self.requirement_lines(self.root / candidate, candidate)
                return candidate
        return None

    def requirement_lines(self, path: Path, name: str) -> None:
        """Requirements are installed by the platform's installer (in the sandbox, but with
        the platform's index settings): only package names (with versions, extras, markers,
        or an https:// URL to a public host) are accepted. An option (-r /etc/passwd, -e .,
        --index-url, --find-links), a local or file:, git+ssh: reference, a URL naming this
        host's or a private network's address, or a ${VARIABLE} (which the installer would
        expand from its environment) would reach what is not the model's."""

        def fail(line: str, why: str) -> ManifestError:
            return ManifestError(
                f"requirements: {name}: {_quote(line)} {why}; list packages only, e.g. "
                '"numpy>=1.26" or "name @ https://…/name.whl"',
                field="requirements",
            )

        if path.stat().st_size > _MAX_TEXT_FILE:
            raise ManifestError(f"requirements: {name} is larger than 1 MiB", field="requirements")
        text = path.read_bytes().decode("utf-8", errors="replace")
        for raw in text.splitlines():
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("-"):
                raise fail(line, "is an installer option, which is not allowed")
            if "$" in line:
                raise fail(line, "names an environment variable ($), which is not expanded")
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                raise fail(line, "is not a package requirement (a path or a bare URL?)") from None
            if requirement.url and not requirement.url.lower().startswith("https://"):
                raise fail(line, "refers to something other than an https:// URL")
            if requirement.url:
                try:
                    check_public_url(requirement.url)
                except OutboundRefused as refusal:
                    raise fail(line, f"cannot be fetched: {refusal}") from None

    def tags(self) -> tuple[str, ...]:
        value, origin = self.value("tags")
        if value is None:
            return ()
        if isinstance(value, str):
            value = [tag for tag in re.split(r"[,\s]+", value) if tag]
        if not isinstance(value, list | tuple) or not all(isinstance(tag, str) for tag in value):
            raise self.fail("tags", 'must be a list of strings, e.g. ["nlp", "vision"]', origin)
        tags: list[str] = []
        for tag in value:
            tag = tag.strip().lower()
            if not re.fullmatch(TAG_RE, tag):
                raise self.fail(
                    "tags",
                    f"{_quote(tag)} is not a valid tag: up to 40 lowercase letters, digits and "
                    '"+", "#", ".", "-", starting with a letter or digit',
                    origin,
                )
            if tag not in tags:
                tags.append(tag)
        if len(tags) > MAX_TAGS:
            raise self.fail("tags", f"has {len(tags)} tags; at most {MAX_TAGS} are allowed", origin)
        return tuple(tags)

    def network(self) -> bool:
        value, origin = self.value("network")
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail("network", "must be true or false", origin)
        return value

    def royalty(self, pricing: dict) -> Decimal:
        field = "pricing.royalty_per_call"
        value = pricing.get("royalty_per_call")
        if value is None:
            return Decimal("0")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(field, 'must be a decimal number of credits, e.g. "0.0010"')
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise self.fail(field, f"{_quote(str(value))} is not a decimal number") from exc
        if not amount.is_finite():
            raise self.fail(field, f"{_quote(str(value))} is not a decimal number")
        if amount < 0:
            raise self.fail(field, "must not be negative")
        if amount > MAX_ROYALTY:
            raise self.fail(field, f"must be at most {MAX_ROYALTY:,} credits")
        if amount.normalize().as_tuple().exponent < -ROYALTY_PLACES:
            raise self.fail(field, f"has more than {ROYALTY_PLACES} decimal places")
        if amount == 0:
            amount = amount.copy_abs()
        if amount.as_tuple().exponent > 0:
            amount = amount.quantize(Decimal(1))
        return amount

    def input_schema(self, io: dict) -> dict | None:
        field = "io.input_schema"
        value = io.get("input_schema")
        if value is None:
            return None
        if isinstance(value, str):
            path = self.package_path(field, value, FROM_FILE)
            if path.stat().st_size > _MAX_TEXT_FILE:
                raise self.fail(field, f"{value} is larger than 1 MiB")
            try:
                schema = json.loads(path.read_bytes().decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise self.fail(field, f"{value} is not UTF-8 text") from exc
            except json.JSONDecodeError as exc:
                raise self.fail(
                    field,
                    f"{value} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                ) from exc
            except RecursionError:
                raise self.fail(field, f"{value} nests arrays or objects too deeply") from None
        elif isinstance(value, dict):
            schema = value
            self.json_compatible(field, schema)
        else:
            raise self.fail(
                field,
                'must be the path of a JSON Schema file (e.g. "schema/input.json") or a table',
            )
        if not isinstance(schema, dict):
            raise self.fail(field, "must be a JSON Schema object")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            where = f" (at {exc.json_path})" if exc.path else ""
            raise self.fail(field, f"is not a valid JSON Schema: {exc.message}{where}") from exc
        except RecursionError:
            raise self.fail(field, "nests subschemas too deeply") from None
        try:  # a schema whose $ref leads back to itself recurses on every input
            for probe in (None, {}, [], "", 0):
                best_match(input_validator(schema).iter_errors(probe))
        except RecursionError:
            raise self.fail(field, "refers to itself ($ref) without end") from None
        except referencing.exceptions.Unresolvable:
            pass  # said precisely with the sample input, or at call time
        return schema

    def sample_input(self, io: dict, schema: dict | None) -> Any | None:
        field = "io.sample_input"
        if "sample_input" not in io:
            return None
        sample = io["sample_input"]
        self.json_compatible(field, sample)
        if schema is not None:
            error = self.schema_problem(field, sample, schema)
            if error is not None:
                raise self.fail(field, f"does not match io.input_schema at {error.sentence()}")
        return sample

    def examples(self, io: dict, schema: dict | None) -> tuple[dict, ...]:
        """[[io.examples]]: named inputs the try-it console offers, each a table with a
        `name` and an `input` that must match the input schema."""
        field = "io.examples"
        value = io.get("examples")
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
            raise self.fail(field, "must be an array of tables ([[io.examples]])")
        if len(value) > _MAX_EXAMPLES:
            raise self.fail(field, f"has more than {_MAX_EXAMPLES} examples")
        examples, names = [], set()
        for index, example in enumerate(value):
            where = f"{field}[{index}]"
            unknown = sorted(set(example) - {"name", "input"})
            if unknown:
                raise self.fail(where, f"unknown key {unknown[0]!r}; the keys are: name, input")
            name = example.get("name")
            if not isinstance(name, str) or not name.strip():
                raise self.fail(where, "needs a name (text)")
            name = name.strip()
            if len(name) > _EXAMPLE_NAME_LENGTH or any(ord(c) < 32 for c in name):
                raise self.fail(
                    where, f"name must be one line of at most {_EXAMPLE_NAME_LENGTH} characters"
                )
            if name in names:
                raise self.fail(where, f"name {name!r} is used twice")
            names.add(name)
            if "input" not in example:
                raise self.fail(where, "needs an input")
            self.json_compatible(where, example["input"])
            problem = self.schema_problem(where, example["input"], schema)
            if problem is not None:
                raise self.fail(where, f"does not match io.input_schema at {problem.sentence()}")
            examples.append({"name": name, "input": example["input"]})
        return tuple(examples)

    def schema_problem(self, field: str, value: Any, schema: dict | None):
        if schema is None:
            return None
        try:
            return first_input_problem(input_validator(schema), value)
        except referencing.exceptions.Unresolvable as exc:
            raise self.fail(
                "io.input_schema", f"has a $ref that cannot be resolved ({exc})"
            ) from exc
        except RecursionError:
            raise self.fail(field, "nests too deeply to be checked against the schema") from None

    def json_compatible(self, field: str, value: Any) -> None:
        """Refuse TOML values that have no JSON form (dates and times, nan, inf)."""
        if isinstance(value, dict):
            for item in value.values():
                self.json_compatible(field, item)
        elif isinstance(value, list):
            for item in value:
                self.json_compatible(field, item)
        elif isinstance(value, float) and not math.isfinite(value):
            raise self.fail(field, "nan and inf are not valid JSON numbers")
        elif not isinstance(value, str | int | float | bool):
            raise self.fail(field, "TOML dates and times have no JSON form; write them as strings")

    def readme(self) -> str:
        names = ("README.md", "README")
        found = next((name for name in names if (self.root / name).is_file()), None)
        if found is None:
            lower = {name.lower() for name in names}
            found = next(
                (
                    child.name
                    for child in sorted(self.root.iterdir())
                    if child.name.lower() in lower and child.is_file()
                ),
                None,
            )
        if found is None:
            return ""
        path = self.package_path("readme", found, DEFAULT)
        if path.stat().st_size > _MAX_TEXT_FILE:
            raise ManifestError(
                f"readme: {found} is larger than 1 MiB; keep the model page shorter",
                field="readme",
            )
        return path.read_bytes().decode("utf-8", errors="replace")

    # --- paths inside the package -----------------------------------------------------------

    def exists(self, relative: str) -> bool:
        try:
            self.package_path("", relative, DEFAULT)
        except ManifestError:
            return False
        return True

    def package_path(self, field: str, relative: Any, origin: str, *, kind: str = "file") -> Path:
        """The package file (or folder) at `relative`, refusing paths that leave the package."""
        if not isinstance(relative, str) or not relative.strip():
            raise self.fail(field, "must be a path in the package", origin)
        if "\x00" in relative or "\\" in relative:
            raise self.fail(field, f"{_quote(relative)} is not a valid path", origin)
        if relative.startswith("/") or _DRIVE_RE.match(relative):
            raise self.fail(
                field,
                f"{_quote(relative)} is an absolute path; give a path relative to the package",
                origin,
            )
        parts = PurePosixPath(relative).parts
        if ".." in parts:
            raise self.fail(
                field, f'{_quote(relative)} has a ".." component; it must be in the package', origin
            )
        try:
            path = self.root.joinpath(*parts).resolve()
        except (OSError, RuntimeError) as exc:
            raise self.fail(
                field, f"{_quote(relative)} cannot be resolved ({exc})", origin
            ) from exc
        if path != self.root and not path.is_relative_to(self.root):
            raise self.fail(field, f"{_quote(relative)} points outside the package", origin)
        if kind == "folder":
            if not path.is_dir():
                raise self.fail(
                    field, f"folder {_quote(relative)} does not exist in the package", origin
                )
        elif not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist in the package"
            raise self.fail(field, f"file {_quote(relative)} {what}", origin)
        return path


_SCRIPT_SUFFIX = {
    "perl": "pl",
    "sh": "sh",
    "bash": "sh",
    "python3": "py",
    "node": "js",
    "ruby": "rb",
}


def _top_level_names(body: list[ast.stmt]) -> tuple[set[str], bool]:
    """Names a module binds at top level (functions, classes, assignments, imports, also
    inside top-level if/try/with blocks), and whether it has a `from x import *`."""
    names: set[str] = set()
    star = False
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(_assigned(target))
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            names.update(_assigned(node.target))
        elif isinstance(node, ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    star = True
                else:
                    names.add(alias.asname or alias.name)
        nested: list[ast.stmt] = []
        if isinstance(node, ast.If | ast.For | ast.While | ast.With | ast.AsyncWith):
            nested = [*node.body, *getattr(node, "orelse", [])]
        elif isinstance(node, ast.Try | ast.TryStar):
            nested = [*node.body, *node.orelse, *node.finalbody]
            for handler in node.handlers:
                nested.extend(handler.body)
        if nested:
            inner, inner_star = _top_level_names(nested)
            names |= inner
            star = star or inner_star
    return names, star


def _assigned(target: ast.expr) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Tuple | ast.List):
        return {name for element in target.elts for name in _assigned(element)}
    if isinstance(target, ast.Starred):
        return _assigned(target.value)
    return set()


def _quote(value: str) -> str:
    return json.dumps(value if len(value) <= 100 else value[:100] + "…", ensure_ascii=False)


def _plural(items: list, word: str) -> str:
    return word if len(items) == 1 else f"{word}s"


def _listed(unknown: list[str], known: tuple[str, ...]) -> str:
    shown = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        shown.append(f"{_quote(key)} (did you mean {_quote(close[0])}?)" if close else _quote(key))
    return ", ".join(shown)
