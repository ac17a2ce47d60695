"""The try-it console's form schema (catalog/console.py: form_schema): the model's JSON Schema
in the dialect of django-jsonform's React form, with only what a form needs."""

from __future__ import annotations

import json
from pathlib import Path

from catalog.console import form_schema

DEMO = Path(__file__).resolve().parents[2] / "catalog" / "demo" / "models"


def test_every_field_gets_a_type_and_its_rules():
    schema = form_schema(
        {
            "type": "object",
            "properties": {
                "op": {"enum": ["info", "resize"], "default": "info"},
                "mode": {"const": "fast"},
                "size": {"type": "integer", "minimum": 1, "maximum": 4096},
                "ratio": {"type": ["number", "null"], "exclusiveMinimum": 0},
                "flags": {"items": {"type": "boolean"}, "maxItems": 3},
                "where": {"properties": {"lat": {"type": "number"}}},
                "name": {"type": "string", "title": "Name", "description": "Who"},
            },
            "required": ["size", "name"],
        }
    )
    fields = schema["properties"]
    assert fields["op"] == {"default": "info", "enum": ["info", "resize"], "type": "string"}
    assert fields["mode"]["enum"] == ["fast"] and fields["mode"]["type"] == "string"
    assert fields["size"] == {"minimum": 1, "maximum": 4096, "type": "integer", "required": True}
    assert fields["ratio"]["type"] == "number" and fields["ratio"]["exclusiveMinimum"] == 0
    assert fields["flags"]["type"] == "array" and fields["flags"]["items"] == {"type": "boolean"}
    assert fields["where"]["type"] == "object"
    assert fields["name"]["help_text"] == "Who" and fields["name"]["required"] is True
    # Required fields first, then the rest, each alphabetically (jsonb loses the order).
    assert list(fields)[:2] == ["name", "size"]


def test_files_become_pickers_and_links_never_reach_the_form():
    schema = form_schema(
        {
            "type": "object",
            "properties": {
                "image_base64": {"type": "string"},
                "photo": {"type": "string", "contentMediaType": "image/png"},
                "blob": {"type": "string", "contentEncoding": "base64"},
                "home": {"type": "string", "format": "uri", "default": "javascript:alert(1)"},
                "born": {"type": "string", "format": "date"},
            },
            "links": [{"href": "javascript:alert(1)"}],
            "headerTemplate": "{{ self }}",
        }
    )
    fields = schema["properties"]
    assert {fields[n]["format"] for n in ("image_base64", "photo", "blob")} == {"data-url"}
    assert "format" not in fields["home"]  # a uri field would be drawn as a link
    assert fields["born"]["format"] == "date"
    assert "links" not in schema and "headerTemplate" not in schema


def test_refs_and_alternatives_of_the_demo_schemas_are_kept():
    iris = json.loads((DEMO / "iris-classifier@2" / "schema" / "input.json").read_text())
    schema = form_schema(iris)
    assert [choice.get("$ref") for choice in schema["oneOf"]][:2] == [
        "#/$defs/flowerObject",
        "#/$defs/flowers",
    ]
    flower = schema["$defs"]["flowerObject"]
    assert flower["properties"]["petal_length"] == {"$ref": "#/$defs/measurement", "required": True}
    assert schema["$defs"]["measurement"]["exclusiveMinimum"] == 0


def test_without_a_schema_the_form_follows_the_sample_object():
    assert form_schema(None, {"text": "hi", "n": 2}) == {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "text": {"type": "string"}},
    }
    assert form_schema(None, "just text") is None
    assert form_schema(None, None) is None
