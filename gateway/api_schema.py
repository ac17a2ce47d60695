"""The call endpoints' examples in the OpenAPI schema (/v1/schema, shown at /v1/docs): the
sample inputs of this catalogue's most called public models, each with the answer its build
recorded, instead of a bare "string". A drf-spectacular postprocessing hook."""

from __future__ import annotations

from django.db import DatabaseError

from catalog.models import Version, Visibility

EXAMPLE_MODELS = 8
REQUEST_ID = "5f0c9b3e-2d1a-4c51-9a43-0f3f0cbb6d1e"
INVOKE_PATHS = ("/v1/algo/{owner}/{name}", "/v1/algo/{owner}/{name}/{version}")


def _sample_versions() -> list[Version]:
    """The newest public version of each of the most called public models that recorded a
    sample input."""
    versions = (
        Version.objects.filter(
            visibility=Visibility.PUBLIC,
            model__visibility=Visibility.PUBLIC,
            build__sample_input__isnull=False,
        )
        .select_related("model__owner", "build")
        .order_by("model_id", "-major", "-minor", "-patch")
        .distinct("model_id")
    )
    ranked = sorted(versions, key=lambda v: (-v.model.calls_30d, v.model.owner.slug, v.model.slug))
    return ranked[:EXAMPLE_MODELS]


def invoke_examples(result, generator, request, public):
    try:
        versions = _sample_versions()
    except DatabaseError:
        return result  # the schema without examples rather than no schema
    if not versions:
        return result
    json_examples, text_examples, answers = {}, {}, {}
    for version in versions:
        label = f"{version.model.full_name} {version.number}"
        key = f"{version.model.owner.slug}/{version.model.slug}"
        sample = version.build.sample_input
        target = text_examples if isinstance(sample, str) else json_examples
        target[key] = {"summary": label, "value": sample}
        if version.build.sample_output is not None:
            answers[key] = {
                "summary": label,
                "value": {
                    "result": version.build.sample_output,
                    "metadata": {
                        "content_type": version.build.sample_output_content_type or "json",
                        "duration": 0.01,
                    },
                    "request_id": REQUEST_ID,
                },
            }
    first = versions[0]
    path_examples = {
        "owner": first.model.owner.slug,
        "name": first.model.slug,
        "version": first.number,
    }
    for path in INVOKE_PATHS:
        operation = result.get("paths", {}).get(path, {}).get("post")
        if operation is None:
            continue
        content = operation.get("requestBody", {}).get("content", {})
        if json_examples and "application/json" in content:
            content["application/json"]["examples"] = json_examples
        if text_examples and "text/plain" in content:
            content["text/plain"]["examples"] = text_examples
        ok = operation.get("responses", {}).get("200", {}).get("content", {})
        if answers and "application/json" in ok:
            ok["application/json"]["examples"] = answers
        responses = operation.get("responses", {})
        _set_example(responses, "202", {"async": "void", "request_id": REQUEST_ID})
        _set_example(
            responses,
            "4XX",
            {
                "error": {
                    "message": f"No model {first.model.owner.slug}/{first.model.slug}x",
                    "error_type": "NotFoundError",
                },
                "request_id": REQUEST_ID,
            },
        )
        _set_example(
            responses,
            "504",
            {
                "error": {
                    "message": "no worker finished the call within 300 seconds",
                    "error_type": "TimeoutError",
                },
                "request_id": REQUEST_ID,
            },
        )
        _set_example(
            responses,
            "503",
            {
                "error": {
                    "message": "The service is temporarily unavailable",
                    "error_type": "UnavailableError",
                },
                "request_id": REQUEST_ID,
            },
        )
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "path" and parameter.get("name") in path_examples:
                parameter["example"] = path_examples[parameter["name"]]
    return result


def _set_example(responses: dict, status: str, value) -> None:
    content = responses.get(status, {}).get("content", {}).get("application/json")
    if content is not None:
        content["example"] = value
