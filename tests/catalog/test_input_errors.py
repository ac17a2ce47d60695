"""What a caller is told when an input does not match a model's input schema: the field's
path, the rule it broke, and no Python repr of the input (catalog/packages/input_errors.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.packages import input_validator
from catalog.packages.input_errors import first_input_problem, json_path

DEMO = Path(__file__).resolve().parents[2] / "catalog" / "demo" / "models"


def schema_of(model: str) -> dict:
    return json.loads((DEMO / model / "schema" / "input.json").read_text())


def problem(model: str, data):
    return first_input_problem(input_validator(schema_of(model)), data)


@pytest.mark.parametrize(
    ("model", "data", "path", "rule", "message"),
    [
        # The object alternative of the iris schema is the one an object means.
        (
            "iris-classifier",
            {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 500, "petal_width": 0.2},
            ("petal_length",),
            "maximum",
            "must be at most 100",
        ),
        (
            "iris-classifier",
            {"sepal_length": 0, "sepal_width": 3.5, "petal_length": 1, "petal_width": 0.2},
            ("sepal_length",),
            "exclusiveMinimum",
            "must be more than 0",
        ),
        (
            "iris-classifier",
            {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4},
            ("petal_width",),
            "required",
            "is required",
        ),
        (
            "iris-classifier",
            {"sepal_length": "5", "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 1},
            ("sepal_length",),
            "type",
            "must be number, not a string",
        ),
        (
            "image-utils",
            {"image_base64": "x", "op": "explode"},
            ("op",),
            "enum",
            'must be one of "info", "thumbnail"',
        ),
        ("image-utils", {"image_base64": "x", "size": 0}, ("size",), "minimum", "at least 1"),
        (
            "image-utils",
            {"image_base64": "x", "colour": "red"},
            ("colour",),
            "additionalProperties",
            "is not an allowed field here",
        ),
        # Two object alternatives fit an object: the rule broken is the choice itself.
        ("sentiment", {"txt": 1}, (), "oneOf", "matches none of the 4 accepted forms"),
        ("sentiment", {"text": ""}, ("text",), "minLength", "at least 1 characters"),
    ],
)
def test_the_problem_names_the_field_and_the_rule(model, data, path, rule, message):
    found = problem(model, data)
    assert found is not None
    assert (found.path, found.rule) == (path, rule)
    assert message in found.message
    sentence = found.sentence()
    assert sentence.startswith(json_path(path) + ": ") and sentence.endswith(f"({rule})")
    # Never the input's Python repr, as jsonschema's own messages have it.
    assert "{'" not in sentence and "is not valid under" not in sentence


def test_a_valid_input_has_no_problem():
    assert problem("sentiment", {"text": "I love it"}) is None


def test_json_paths_quote_keys_that_are_not_identifiers():
    assert json_path(()) == "$"
    assert json_path(("flowers", 0, "petal length")) == '$.flowers[0]["petal length"]'
    assert json_path(('a"]', 1)) == '$["a\\"]"][1]'
