"""Say why an input does not match a model's input schema, the way a person fixes it: the
field's path, the rule it broke (the JSON Schema keyword), and a sentence without Python
reprs of the input. The gateway answers calls with it, the manifest reader checks samples
and examples with it, and the try-it console shows it at the field."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError, best_match

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_SHOWN = 60  # characters of a value quoted in a message


@dataclass(frozen=True)
class InputProblem:
    path: tuple[str | int, ...]  # keys and indexes from the input's root to the field
    rule: str  # the JSON Schema keyword broken: "maximum", "required", "type", ...
    message: str  # what is wrong with that field, without the path

    @property
    def json_path(self) -> str:
        return json_path(self.path)

    def sentence(self) -> str:
        return f"{self.json_path}: {self.message} ({self.rule})"


def json_path(path) -> str:
    """`$.flowers[0].petal_length`; a key that is not an identifier is quoted: `$["a b"]`."""
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _SIMPLE_KEY.match(part):
            parts.append(f".{part}")
        else:
            parts.append(f"[{json.dumps(part)}]")
    return "".join(parts)


def first_input_problem(validator, instance: Any) -> InputProblem | None:
    """The most useful problem of `instance` under `validator` (a jsonschema validator), or
    None when it is valid. May raise what iter_errors raises (RecursionError,
    referencing's Unresolvable)."""
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    return describe(_closest(error))


def _closest(error: ValidationError) -> ValidationError:
    """For oneOf/anyOf, the error inside the one alternative that has the input's own shape
    (the object alternative for an object), when only one has it; otherwise the error itself."""
    while error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[int, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        shaped = [
            errors
            for errors in branches.values()
            if not any(e.validator in ("type", "const", "enum") and not e.path for e in errors)
        ]
        if len(shaped) != 1:
            break
        error = best_match(shaped[0])
    return error


def describe(error: ValidationError) -> InputProblem:
    path = tuple(error.absolute_path)
    rule = str(error.validator)
    value = error.validator_value
    instance = error.instance
    if rule == "required":
        missing = next(
            (name for name in value if isinstance(instance, dict) and name not in instance),
            None,
        )
        if missing is not None:
            return InputProblem((*path, missing), rule, "is required")
    if rule == "additionalProperties" and isinstance(instance, dict):
        allowed = set((error.schema or {}).get("properties", {}))
        extra = sorted(k for k in instance if k not in allowed)
        if extra:
            return InputProblem((*path, extra[0]), rule, "is not an allowed field here")
    return InputProblem(path, rule, _message(rule, value, instance, error))


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _message(rule: str, value: Any, instance: Any, error: ValidationError) -> str:
    messages = {
        "type": lambda: (
            f"must be {' or '.join(value) if isinstance(value, list) else value}, "
            f"not {_type_name(instance)}"
        ),
        "minimum": lambda: f"must be at least {_shown(value)}",
        "maximum": lambda: f"must be at most {_shown(value)}",
        "exclusiveMinimum": lambda: f"must be more than {_shown(value)}",
        "exclusiveMaximum": lambda: f"must be less than {_shown(value)}",
        "multipleOf": lambda: f"must be a multiple of {_shown(value)}",
        "minLength": lambda: f"must be at least {value} characters long",
        "maxLength": lambda: f"must be at most {value} characters long",
        "pattern": lambda: f"must match the pattern {_shown(value)}",
        "format": lambda: f"must be a valid {_shown(value)}",
        "minItems": lambda: f"must have at least {value} items",
        "maxItems": lambda: f"must have at most {value} items",
        "uniqueItems": lambda: "must not repeat an item",
        "minProperties": lambda: f"must have at least {value} fields",
        "maxProperties": lambda: f"must have at most {value} fields",
        "enum": lambda: f"must be one of {', '.join(_shown(v) for v in value)}",
        "const": lambda: f"must be {_shown(value)}",
        "required": lambda: "is missing a required field",
        "additionalProperties": lambda: "has a field that is not allowed",
        "oneOf": lambda: (
            f"matches none of the {len(value)} accepted forms"
            if error.context
            else f"matches more than one of the {len(value)} accepted forms"
        ),
        "anyOf": lambda: f"matches none of the {len(value)} accepted forms",
        "not": lambda: "has a form that is not accepted",
        "false": lambda: "is not allowed",
    }
    if rule in messages:
        return messages[rule]()
    # Another keyword: jsonschema's sentence, less the input's Python repr in front.
    return re.sub(r"^.*? (is|are|does|has|should) ", r"\1 ", error.message, count=1)[:300]
