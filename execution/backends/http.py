"""The `http` backend: the model lives on an existing inference server. Its catalogue entry
(a build whose runtime is "http") names the server's URL and protocol, which the gateway
passes on the request (`ExecutionRequest.endpoint`); calls are forwarded there with the
same auth, limits, metering and errors as any other model.

Protocols:
- `oip-v2`: the Open Inference Protocol (KServe, Triton, MLServer, Seldon):
  POST {url}/v2/models/{model_name}/infer. A JSON input of named arrays
  ({"x": [[1, 2]]}) becomes typed, shaped tensors; a full OIP request ({"inputs": [...]})
  is passed through. The answer's outputs come back as {name: nested array}.
- `json`: POST the JSON input to {url}; the JSON answer is the result.
"""

from __future__ import annotations

import contextlib
import json
import time
from functools import reduce

from django.conf import settings

from marketplace.core.health import OK, ComponentHealth
from marketplace.core.outbound import (
    OutboundError,
    OutboundRefused,
    OutboundTimeout,
    outbound_request,
    short_line,
)

from . import ExecutionBackend, ExecutionRequest, ExecutionResult

PROTOCOLS = ("oip-v2", "json")


class HttpModelError(Exception):
    pass


def _shape(value) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def _flatten(value) -> list:
    if isinstance(value, list):
        return [item for sub in value for item in _flatten(sub)]
    return [value]


def _datatype(values: list) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP32"
    return "BYTES"


def _reshape(data: list, shape: list[int]):
    if not shape or len(shape) == 1:
        return data
    size = reduce(lambda a, b: a * b, shape[1:], 1)
    return [_reshape(data[i * size : (i + 1) * size], shape[1:]) for i in range(shape[0])]


def oip_request(data, *, input_name: str = "input-0") -> dict:
    if isinstance(data, dict) and isinstance(data.get("inputs"), list):
        return data
    named = data if isinstance(data, dict) else {input_name: data}
    inputs = []
    for name, value in named.items():
        array = value if isinstance(value, list) else [value]
        flat = _flatten(array)
        inputs.append(
            {"name": name, "shape": _shape(array), "datatype": _datatype(flat), "data": flat}
        )
    return {"inputs": inputs}


def oip_result(answer: dict):
    outputs = answer.get("outputs")
    if not isinstance(outputs, list):
        raise HttpModelError("the inference server's answer has no outputs")
    return {
        out.get("name", f"output-{i}"): _reshape(out.get("data", []), out.get("shape", []))
        for i, out in enumerate(outputs)
    }


def _timeout_result(timeout: float) -> ExecutionResult:
    return ExecutionResult(
        "timeout",
        error={
            "message": f"the inference server did not answer within {timeout:g} seconds",
            "error_type": "TimeoutError",
        },
    )


def _failure(message: str, started: float) -> ExecutionResult:
    return ExecutionResult(
        "failed",
        duration=time.monotonic() - started,
        error={"message": message, "error_type": "AlgorithmError"},
    )


def _error_detail(body: bytes) -> str:
    """One short line of an error answer: its JSON "error" when it has one."""
    with contextlib.suppress(ValueError):
        error = json.loads(body).get("error")
        if isinstance(error, str):
            return short_line(error)
    return short_line(body)


def forward(config: dict, content_type: str, data, timeout: float) -> ExecutionResult:
    """Send one call to the model's inference server, under the outbound policy. An error
    carries at most one short line of what the server said."""
    protocol = config.get("protocol", "json")
    if content_type != "json":
        return ExecutionResult(
            "failed", error={"message": "this model takes JSON input", "error_type": "InputError"}
        )
    if protocol == "oip-v2":
        url = f"{config['url'].rstrip('/')}/v2/models/{config['model_name']}/infer"
        body = oip_request(data, input_name=config.get("input_name", "input-0"))
    else:
        url, body = config["url"], data
    started = time.monotonic()
    try:
        response = outbound_request(
            "POST",
            url,
            body=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "modelplace-gateway/1",
            },
            timeout=timeout,
            max_response_bytes=settings.SANDBOX_ANSWER_BYTES,
        )
    except OutboundTimeout:
        return _timeout_result(timeout)
    except OutboundRefused as refusal:
        return _failure(f"the inference server is not allowed: {refusal}", started)
    except OutboundError as error:
        return _failure(f"the inference server could not be reached: {error}", started)
    if not response.ok:
        detail = _error_detail(response.body)
        return _failure(
            f"the inference server answered HTTP {response.status}"
            + (f": {detail}" if detail else ""),
            started,
        )
    duration = time.monotonic() - started
    try:
        answer = json.loads(response.body or b"null")
        result = oip_result(answer) if protocol == "oip-v2" else answer
    except ValueError:
        return _failure("the inference server's answer is not JSON", started)
    except (HttpModelError, AttributeError, TypeError) as exc:
        message = str(exc) if isinstance(exc, HttpModelError) else "the answer is not OIP"
        return _failure(message, started)
    return ExecutionResult("succeeded", result=result, content_type="json", duration=duration)


class HttpBackend(ExecutionBackend):
    def run(self, request: ExecutionRequest) -> ExecutionResult:
        return forward(request.endpoint, request.content_type, request.data, request.timeout)

    def health(self) -> ComponentHealth:
        return ComponentHealth(OK, "http", "forwards to each model's own inference server")
