"""What the OpenAPI schema at /v1/schema says beyond each view's own annotations: how API keys
are sent, and the error body every operation may answer. (Paginated lists get their envelope
from drf-spectacular itself, through each list view's `pagination_class`.)"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error a caller can cause (marketplace.core.errors.ApiError)",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "error_type": {"type": "string", "example": "InputError"},
                "fields": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Per input field, what is wrong with it",
                },
                "path": {
                    "type": "array",
                    "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                    "description": "A call's input not matching the model's input schema: "
                    "the keys and indexes from the input's root to the field at fault",
                },
                "rule": {
                    "type": "string",
                    "description": "A call's input not matching the model's input schema: "
                    "the JSON Schema keyword it broke (maximum, required, type, ...)",
                },
            },
            "required": ["message", "error_type"],
        },
        "request_id": {"type": "string"},
    },
    "required": ["error"],
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "marketplace.accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Simple <key>`, `Bearer <key>` or the bare key",
        }


def _error_response(description: str) -> dict:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}
        },
    }


def complete_schema(result, generator, request, public):
    """drf-spectacular postprocessing hook for what holds for every operation:

    - it may answer a 4xx (bad input, no or wrong key, not allowed, not found, conflict, too
      large, rate limited...) and a 503 (a component it needs is down), all in the one
      documented error body; a call of a model may also time out (504);
    - a text query parameter (choices and dates included) may be sent empty, which means
      "not given" (`?group_by=&start=`, as HTML forms send them)."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    for path, item in result.get("paths", {}).items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if (
                    parameter["in"] == "query"
                    and parameter.get("schema", {}).get("type") == "string"
                ):
                    parameter["allowEmptyValue"] = True
            responses = operation.setdefault("responses", {})
            responses.setdefault("4XX", _error_response("The request cannot be served as sent"))
            responses.setdefault("503", _error_response("A component is down; retry later"))
            if path.startswith("/v1/algo/"):
                responses.setdefault("504", _error_response("The model did not finish in time"))
    return result
