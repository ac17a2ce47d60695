"""The `http` backend: the model lives on an existing inference server. Its catalogue entry
(a build whose runtime is "http") names the server's URL and protocol, and the gateway
forwards calls there with the same auth, limits, metering and errors as any other model.

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
import urllib.error
import urllib.request
from functools import reduce

from marketplace.core.health import OK, ComponentHealth

from . import ExecutionBackend, ExecutionRequest, ExecutionResult, register

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


def forward(config: dict, content_type: str, data, timeout: float) -> ExecutionResult:
    """Send one call to the model's inference server."""
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
    request = urllib.request.Request(  # noqa: S310 - http(s) checked when the model was made
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "modelplace-gateway/1",
        },
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:2000].decode("utf-8", errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("error", detail)
        return ExecutionResult(
            "failed",
            duration=time.monotonic() - started,
            error={
                "message": f"the inference server answered HTTP {exc.code}: {detail}",
                "error_type": "AlgorithmError",
            },
        )
    except TimeoutError:
        return ExecutionResult(
            "timeout",
            error={
                "message": f"the inference server did not answer within {timeout:g} seconds",
                "error_type": "TimeoutError",
            },
        )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return ExecutionResult(
                "timeout",
                error={
                    "message": f"the inference server did not answer within {timeout:g} seconds",
                    "error_type": "TimeoutError",
                },
            )
        return ExecutionResult(
            "failed",
            duration=time.monotonic() - started,
            error={
                "message": f"the inference server could not be reached: {reason}",
                "error_type": "AlgorithmError",
            },
        )
    duration = time.monotonic() - started
    try:
        result = oip_result(answer) if protocol == "oip-v2" else answer
    except HttpModelError as exc:
        return ExecutionResult(
            "failed", duration=duration, error={"message": str(exc), "error_type": "AlgorithmError"}
        )
    return ExecutionResult("succeeded", result=result, content_type="json", duration=duration)


@register
class HttpBackend(ExecutionBackend):
    name = "http"

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        from catalog.models import Build

        build = Build.objects.only("manifest").get(pk=request.build_id)
        return forward(build.manifest["http"], request.content_type, request.data, request.timeout)

    def health(self) -> ComponentHealth:
        return ComponentHealth(OK, "http", "forwards to each model's own inference server")
