"""The try-it console: what its template (catalog/_console.html) and script
(static/js/console.js) need to call one version of a model from its page.

The form is drawn by django-jsonform's React JSON-schema form from the version's input
schema. That form reads a dialect of JSON Schema (every field needs a `type`, `required` is
said per field, files are `format: data-url`), so `form_schema` translates the model's schema
into it: only the keywords a form needs are kept, which also keeps away anything the author
wrote for the browser to follow (links, uri fields). Titles and descriptions stay text: React
never inserts them as markup."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.urls import reverse

from marketplace.accounts import policies

from .models import Model, Version

# Keywords copied as they are (their values are plain data); the rest are translated below
# or left out.
_PLAIN = (
    "title",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "default",
)
_FORMATS = ("date", "time", "date-time", "email")
_TYPES = ("string", "number", "integer", "boolean", "object", "array")
_TYPE_NAMES = {
    "array": "a list",
    "object": "an object",
    "string": "a text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "yes or no",
}
_MAX_DEPTH = 32
_IMAGE_HINTS = ("image", "picture", "photo")


@dataclass(frozen=True)
class Example:
    name: str
    input: Any


def _type_of_value(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _enum_type(values: list) -> str:
    types = {_type_of_value(v) for v in values}
    if types <= {"integer", "number"} and types:
        return "integer" if types == {"integer"} else "number"
    return types.pop() if len(types) == 1 else "string"


def _is_file_field(key: str, node: dict) -> bool:
    """A string that carries a file: base64 content, or named like an image's base64."""
    if node.get("contentEncoding") == "base64":
        return True
    media = node.get("contentMediaType")
    if isinstance(media, str) and media.startswith("image/"):
        return True
    lowered = key.lower()
    return "base64" in lowered or ("b64" in lowered and any(h in lowered for h in _IMAGE_HINTS))


def _translate(node: Any, key: str, depth: int) -> dict:
    if depth > _MAX_DEPTH or not isinstance(node, dict):
        return {"type": "string"}
    out: dict = {}
    for word in _PLAIN:
        if word in node and (word == "default" or not isinstance(node[word], dict | list)):
            out[word] = node[word]
    if isinstance(node.get("title"), str):
        out["title"] = node["title"][:200]
    if isinstance(node.get("description"), str):
        out["help_text"] = node["description"][:500]
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        out["$ref"] = ref
        return out
    for word in ("oneOf", "anyOf"):
        if isinstance(node.get(word), list) and node[word]:
            out[word] = [_translate(n, key, depth + 1) for n in node[word][:20]]
            for index, choice in enumerate(out[word]):
                choice.setdefault("title", _choice_title(node[word][index], index))
            return out
    if isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
        return {**_translate(node["allOf"][0], key, depth + 1), **out}
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k in _TYPES), None)
    if "const" in node:
        out["enum"] = [node["const"]]
        out["default"] = node["const"]
        kind = kind or _type_of_value(node["const"])
    elif isinstance(node.get("enum"), list) and node["enum"]:
        out["enum"] = node["enum"]
        kind = kind or _enum_type(node["enum"])
    if kind not in _TYPES:
        kind = (
            "object"
            if "properties" in node
            else "array"
            if "items" in node or "prefixItems" in node
            else "string"
        )
    out["type"] = kind
    if kind == "object":
        properties = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        required = node.get("required") if isinstance(node.get("required"), list) else []
        out["properties"] = {}
        # PostgreSQL's jsonb keeps an object's keys shortest first, not as written: the
        # required fields come first, each group in alphabetical order.
        names = sorted(properties, key=lambda name: (name not in required, name))
        for name in names[:200]:
            sub = properties[name]
            field = _translate(sub, name, depth + 1)
            if name in required:
                field["required"] = True
            out["properties"][name] = field
        extra = node.get("additionalProperties")
        if not properties and extra is not False:
            out["additionalProperties"] = (
                _translate(extra, key, depth + 1) if isinstance(extra, dict) else True
            )
    elif kind == "array":
        items = node.get("items")
        if not isinstance(items, dict) and isinstance(node.get("prefixItems"), list):
            items = node["prefixItems"][0] if node["prefixItems"] else None
        out["items"] = (
            _translate(items, key, depth + 1) if isinstance(items, dict) else {"type": "string"}
        )
    elif kind == "string":
        if _is_file_field(key, node):
            out["format"] = "data-url"
        elif node.get("format") in _FORMATS:
            out["format"] = node["format"]
        elif isinstance(node.get("maxLength"), int) and node["maxLength"] > 200:
            out["widget"] = "textarea"
    return out


def _choice_title(node: Any, index: int) -> str:
    if isinstance(node, dict):
        if isinstance(node.get("title"), str):
            return node["title"][:80]
        if isinstance(node.get("$ref"), str):
            return node["$ref"].rsplit("/", 1)[-1][:80]
        properties = node.get("properties")
        if isinstance(properties, dict) and properties:
            const = next(
                (p["const"] for p in properties.values() if isinstance(p, dict) and "const" in p),
                None,
            )
            if isinstance(const, str):
                return const[:80]
            return "{" + ", ".join(list(properties)[:4]) + "}"
        if isinstance(node.get("type"), str):
            return _TYPE_NAMES.get(node["type"], node["type"])
    return f"form {index + 1}"


def form_schema(input_schema: dict | None, sample: Any = None) -> dict | None:
    """The schema the console's form draws, or None when there is nothing to draw a form of
    (no schema and no sample object to infer one from: raw JSON or text only)."""
    if isinstance(input_schema, dict) and input_schema:
        schema = _translate(input_schema, "", 0)
        for defs in ("$defs", "definitions"):  # each where the schema's $refs point
            if isinstance(input_schema.get(defs), dict):
                schema[defs] = {
                    name: _translate(sub, name, 1)
                    for name, sub in list(input_schema[defs].items())[:200]
                }
        return schema
    if isinstance(sample, dict) and sample:
        return _translate(_inferred(sample), "", 0)
    return None


def _inferred(value: Any) -> dict:
    kind = _type_of_value(value)
    if kind == "object":
        return {"type": "object", "properties": {k: _inferred(v) for k, v in value.items()}}
    if kind == "array":
        return {"type": "array", "items": _inferred(value[0]) if value else {"type": "string"}}
    return {"type": kind}


def examples_of(version: Version) -> list[Example]:
    """The inputs to load: the sample first, then the manifest's named examples."""
    build = version.build
    found = []
    if build.sample_input is not None:
        found.append(Example("Sample", build.sample_input))
    for example in (build.manifest or {}).get("examples") or ():
        found.append(Example(example["name"], example["input"]))
    return found


def version_endpoint(model: Model, version: Version) -> str:
    return f"/v1/algo/{model.owner.slug}/{model.slug}/{version.number}"


def console_context(
    *, request, model: Model, versions: list[Version], version: Version | None = None
) -> dict:
    """The console of `version`, else of the one the picker chose (`?try=1.0.0`), else of the
    newest. `versions` are those the reader may call, newest first, for the picker."""
    picked = request.GET.get("try")
    chosen = version or next((v for v in versions if v.number == picked), None)
    chosen = chosen or (versions[0] if versions else None)
    if chosen is None:
        return {"console": None}
    build = chosen.build
    manifest = build.manifest or {}
    schema = form_schema(manifest.get("input_schema"), build.sample_input)
    examples = examples_of(chosen)
    signed_in = request.user.is_authenticated
    anonymous = not signed_in and model.anonymous_tries and model.visibility == "public"
    here = request.get_full_path()
    config = {
        "endpoint": version_endpoint(model, chosen),
        "version": chosen.number,
        "schema": schema,
        "examples": [{"name": e.name, "input": e.input} for e in examples],
        "anonymous": anonymous,
    }
    first = examples[0].input if examples else None
    return {
        "console": {
            "version": chosen,
            "versions": versions,
            "pinned": version is not None,
            "can_allow_anonymous": signed_in and policies.can_administer(request.user, model.owner),
            "settings_url": reverse("catalog:anonymous_tries", args=[model.owner.slug, model.slug]),
            "can_run": signed_in or anonymous,
            "anonymous": anonymous,
            "has_form": schema is not None,
            "first_input": json.dumps(first, indent=2, ensure_ascii=False)
            if first is not None and not isinstance(first, str)
            else (first or ""),
            "first_is_text": isinstance(first, str),
            "signup_url": f"{reverse('accounts:signup')}?next={_quoted(here)}%23try-it",
            "login_url": f"{reverse('accounts:login')}?next={_quoted(here)}%23try-it",
            "config": config,
        }
    }


def _quoted(path: str) -> str:
    return quote(path, safe="/")
