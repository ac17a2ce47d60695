"""Property-based fuzzing of the whole /v1 API with schemathesis, against the schema the app
itself serves at /v1/schema.

Every generated request (schema examples, then fuzzed positive and negative data) is sent
once per caller: a full-access personal key, a team key that may only read billing, a key
that may only call one model, and no key at all. Path parameters are either generated or
real (owners, models, versions, builds, teams, members, keys, invocations, webhooks, budget
projects of a seeded world), so requests reach real objects, not only 404s. Each answer must:

- never be a 5xx (but the documented 504 of a model call that ran out of its own timeout);
- have a status code, content type, headers and body that the schema documents;
- if it is an error (4xx), be in the documented shape {"error": {"message", "error_type"}};
- reject negative data (a request the schema forbids is not answered with a success).

The invoke operations run a real model through this host's runner service (a warm sandboxed
process), with `timeout` capped at a few seconds so a generated value cannot stall the run.
Each request runs in a savepoint that is rolled back: the world stays the same for every
example, whatever DELETE or revoke the fuzzer tried before. The run is derandomized (fixed
seed), bounded by a per-operation example budget, and does not shrink.
"""

from __future__ import annotations

import json
import os

import hypothesis
import jsonschema
import pytest
import schemathesis
from django.db import transaction
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import Client

from tests.fuzz.conftest import World

pytestmark = pytest.mark.slow

# FUZZ_MAX_EXAMPLES / FUZZ_COVERAGE=1 make a deeper run locally; CI runs the bounded one.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "6"))
COVERAGE_PHASE = os.environ.get("FUZZ_COVERAGE") == "1"
SEED = 20261126
# The invoke operations take a `timeout` (seconds); the echo model answers in milliseconds,
# so this only bounds what a generated huge value could cost.
MAX_TIMEOUT_SECONDS = 3.0

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "suppress-health-check": ["all"],
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
            # Every request is sent with each caller's own credentials (or none).
            "with-security-parameters": False,
        },
        "phases": {
            "examples": {"enabled": True, "fill-missing": True},
            "coverage": {"enabled": COVERAGE_PHASE},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)


@schemathesis.check
def error_in_documented_shape(ctx, response, case) -> None:
    """Every error answer is {"error": {"message": str, "error_type": str, ...}} (plus the
    request id), as JSON; so is a model's own error in an invoke answer."""
    content_type = response.headers.get("content-type", [""])[0]
    if response.status_code < 400:
        if case.path.startswith("/v1/algo/") and content_type.startswith("application/json"):
            body = json.loads(response.content)
            if isinstance(body, dict) and "error" in body:  # the model raised
                _assert_error_body(body, response)
        return
    assert content_type.startswith("application/json"), (
        f"{response.status_code} answered as {content_type!r}: {response.content[:200]!r}"
    )
    _assert_error_body(json.loads(response.content), response)


def _assert_error_body(body, response) -> None:
    assert isinstance(body, dict) and "error" in body, f"no error object: {body!r}"
    assert set(body) <= {"error", "request_id"}, f"unexpected keys {sorted(body)}: {body!r}"
    error = body["error"]
    assert isinstance(error, dict), f"error is not an object: {body!r}"
    assert isinstance(error.get("message"), str) and error["message"], f"no message: {body!r}"
    assert isinstance(error.get("error_type"), str) and error["error_type"], (
        f"no error_type: {body!r}"
    )


@schemathesis.check
def not_a_server_error_but_a_call_timeout(ctx, response, case) -> None:
    """No 5xx, except the documented 504 of a model call that ran out of its own `timeout`
    (the fuzzer sends timeouts down to 5e-324 seconds)."""
    if response.status_code == 504 and case.path.startswith("/v1/algo/"):
        error = json.loads(response.content)["error"]
        assert error["error_type"] == "TimeoutError", error
        return
    not_a_server_error(ctx, response, case)


CHECKS = [
    not_a_server_error_but_a_call_timeout,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    error_in_documented_shape,
]


FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
PRESET_RANGES = ("this_month", "last_month", "last_30_days")


def _checks_for(case, raw: dict) -> list:
    """All the checks, except negative data rejection where accepting the value is known and
    deliberate:
    - DRF reads an empty form field of an optional input as "not sent" (HTML forms send every
      field); JSON bodies are still held to the schema;
    - a report with a preset `range` ignores `start` and `end` (as the schema says);
    - DRF's serializers coerce JSON scalars: a number where a string is expected becomes its
      text, 0 and 1 where a boolean is expected become false and true. A body that is valid
      once coerced that way is accepted by design (DRF's, not this project's)."""
    query = case.query if isinstance(case.query, dict) else {}
    if (
        (case.media_type or "").startswith(FORM_MEDIA_TYPES)
        or query.get("range") in PRESET_RANGES
        or _valid_once_coerced_by_drf(case, raw)
    ):
        return [check for check in CHECKS if check is not negative_data_rejection]
    return CHECKS


def _valid_once_coerced_by_drf(case, raw: dict) -> bool:
    if not isinstance(case.body, dict) or case.media_type != "application/json":
        return False
    operation = raw["paths"][case.path][case.method.lower()]
    reference = operation["requestBody"]["content"]["application/json"]["schema"].get("$ref")
    if reference is None:
        return False
    component = raw["components"]["schemas"][reference.rsplit("/", 1)[1]]
    properties = component.get("properties", {})
    coerced, changed = dict(case.body), False  # (False == 0: compare nothing, count)
    for name, value in case.body.items():
        kind = properties.get(name, {}).get("type")
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if kind == "string":
            coerced[name], changed = str(value), True
        elif kind == "boolean" and value in (0, 1):
            coerced[name], changed = bool(value), True
    validator = jsonschema.Draft202012Validator(
        {**component, "components": raw["components"]}, format_checker=jsonschema.FormatChecker()
    )
    return changed and validator.is_valid(coerced)


# Valid bodies for writes that random data rarely gets past the business rules with, so
# the examples phase also reaches their success paths.
BODY_EXAMPLES = {
    ("post", "/v1/teams"): {"slug": "initech", "name": "Initech"},
    ("post", "/v1/teams/{team}/members"): {"username": "bob", "role": "member"},
    ("patch", "/v1/teams/{team}/members/{username}"): {"role": "admin"},
    ("put", "/v1/teams/{team}/budget"): {"monthly_amount": "25.00", "thresholds": [50, 90]},
    ("put", "/v1/teams/{team}/budgets/{project}"): {"monthly_amount": "5.00", "hard_cap": True},
    ("post", "/v1/teams/{team}/webhooks"): {
        "url": "https://hooks.example.com/x",
        "events": ["build.failed"],
    },
    ("post", "/v1/prices"): {"hardware_class": "gpu", "price_per_second": "0.002"},
    ("post", "/v1/models/{owner}/{name}/versions"): {"bump": "patch", "visibility": "public"},
}


def _with_real_examples(raw: dict, world: World) -> dict:
    """Give every path parameter the real values of the world as explicit examples, so
    the examples phase calls existing objects (consistent sets: a model's own builds), and
    some writes a valid body."""
    for path, item in raw["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            if (method, path) in BODY_EXAMPLES:
                content = operation["requestBody"]["content"]["application/json"]
                content["example"] = BODY_EXAMPLES[(method, path)]
            parameters = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            names = frozenset(p["name"] for p in parameters)
            combos = world.path_parameter_sets(names)[:3] if names else []
            for parameter in parameters:
                parameter["examples"] = {
                    f"real-{i}": {"value": combo[parameter["name"]]}
                    for i, combo in enumerate(combos)
                }
    return raw


def _path_parameter_validators(raw: dict) -> dict:
    """Per (method, path), a validator of its path parameters as the schema defines them."""
    validators = {}
    for path, item in raw["paths"].items():
        for method, operation in item.items():
            parameters = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            validators[(method, path)] = jsonschema.Draft202012Validator(
                {
                    "type": "object",
                    "properties": {p["name"]: p["schema"] for p in parameters},
                    "required": [p["name"] for p in parameters],
                },
                format_checker=jsonschema.FormatChecker(),
            )
    return validators


@pytest.fixture
def api_schema(fuzz_world, wsgi_app):
    response = Client(wsgi_app).get(
        "/v1/schema", headers={"Accept": "application/vnd.oai.openapi+json"}
    )
    assert response.status_code == 200, response.text
    raw = _with_real_examples(response.json, fuzz_world)
    schema = schemathesis.openapi.from_dict(raw, config=CONFIG)
    schema.app = wsgi_app

    validators = _path_parameter_validators(raw)

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        if not isinstance(path_parameters, dict) or not path_parameters:
            return st.just(path_parameters)
        operation = (context.operation.method.lower(), context.operation.path)
        if not validators[operation].is_valid(path_parameters):
            return st.just(path_parameters)  # negative data: send it as generated
        combos = fuzz_world.path_parameter_sets(frozenset(path_parameters))
        if not combos:
            return st.just(path_parameters)
        # Mostly real objects, sometimes whatever was generated (unknown ids).
        return st.one_of(st.sampled_from(combos), st.sampled_from(combos), st.just(path_parameters))

    @schema.hook
    def map_query(context, query):
        if isinstance(query, dict) and "timeout" in query:
            try:
                if float(query["timeout"]) > MAX_TIMEOUT_SECONDS:
                    query["timeout"] = MAX_TIMEOUT_SECONDS
            except (TypeError, ValueError):
                pass  # not a number: the API must answer 400
        return query

    return schema


fuzzed = schemathesis.pytest.from_fixture("api_schema")


@fuzzed.parametrize()
@hypothesis.settings(deadline=None, derandomize=True)
def test_every_operation_answers_as_its_schema_says(case, fuzz_world, api_schema):
    for caller in fuzz_world.callers:
        with transaction.atomic():
            response = case.call(headers=caller.headers)
            transaction.set_rollback(True)
        try:
            checks = _checks_for(case, api_schema.raw_schema)
            case.validate_response(response, checks=checks, headers=caller.headers)
        except FailureGroup as exc:
            raise FailureGroup(list(exc.exceptions), f"As {caller.name}: {exc.message}") from None
