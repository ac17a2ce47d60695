"""The `http` backend against a small real inference server started by the test: an Open
Inference Protocol v2 model and a plain JSON one, registered through the API, built (the
sample input answered), published and called through the gateway like any other model."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from catalog import builder
from catalog.models import Build
from execution.backends.http import oip_request, oip_result
from tests.conftest import assert_error_shape
from tests.factories import UserFactory
from tests.gateway.conftest import key_client
from tests.receivers import allow_outbound

pytestmark = pytest.mark.slow


class InferenceServer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v2/models/adder/infer":
            tensor = next(i for i in body["inputs"] if i["name"] == "x")
            width = tensor["shape"][1]
            rows = [tensor["data"][i : i + width] for i in range(0, len(tensor["data"]), width)]
            sums = [sum(row) for row in rows]
            self._answer(
                200,
                {
                    "model_name": "adder",
                    "outputs": [
                        {"name": "sum", "shape": [len(sums)], "datatype": "FP32", "data": sums},
                        {
                            "name": "echo",
                            "shape": tensor["shape"],
                            "datatype": tensor["datatype"],
                            "data": tensor["data"],
                        },
                    ],
                },
            )
        elif self.path == "/v2/models/broken/infer":
            self._answer(400, {"error": "input x has the wrong shape"})
        elif self.path == "/json/upper":
            self._answer(200, {"upper": str(body.get("text", "")).upper()})
        elif self.path == "/json/slow":
            time.sleep(5)
            self._answer(200, {})
        else:
            self._answer(404, {"error": "no such model"})

    def log_message(self, *args):
        pass


@pytest.fixture
def inference_server(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), InferenceServer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    allow_outbound(settings, url)
    yield url
    server.shutdown()


def test_tensor_conversions():
    request = oip_request({"x": [[1, 2], [3, 4]], "flag": True, "name": "a"})
    assert request["inputs"][0] == {
        "name": "x",
        "shape": [2, 2],
        "datatype": "INT64",
        "data": [1, 2, 3, 4],
    }
    assert request["inputs"][1]["datatype"] == "BOOL"
    assert request["inputs"][2]["datatype"] == "BYTES"
    assert oip_request({"inputs": []}) == {"inputs": []}
    assert oip_result({"outputs": [{"name": "y", "shape": [2, 3], "data": list(range(6))}]}) == {
        "y": [[0, 1, 2], [3, 4, 5]]
    }


def _register(client, owner, spec) -> Build:
    response = client.post(f"/v1/models/{owner}", spec, format="json")
    assert response.status_code == 202, response.content
    build = Build.objects.get(pk=response.json()["build"]["id"])
    builder.execute_build(build.pk)
    build.refresh_from_db()
    return build


def test_oip_v2_model_end_to_end(inference_server, transactional_db, storage):
    owner = UserFactory(username="ops")
    client = key_client(owner)
    build = _register(
        client,
        "ops",
        {
            "name": "adder",
            "title": "Adder on Triton",
            "tags": ["math"],
            "http": {"url": inference_server, "protocol": "oip-v2", "model_name": "adder"},
            "sample_input": {"x": [[1, 2, 3]]},
        },
    )
    assert build.status == "succeeded", build.log
    assert build.sample_output == {"sum": [6], "echo": [[1, 2, 3]]}
    published = client.post(
        "/v1/models/ops/adder/versions", {"bump": "major", "visibility": "public"}, format="json"
    )
    assert published.status_code == 201
    caller = key_client(UserFactory())
    response = caller.post("/v1/algo/ops/adder", {"x": [[1, 1], [2, 2.5]]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["result"] == {"sum": [2, 4.5], "echo": [[1, 1], [2, 2.5]]}


def test_errors_and_timeouts_of_the_inference_server(
    inference_server, transactional_db, storage, settings
):
    owner = UserFactory(username="ops")
    client = key_client(owner)
    failing = _register(
        client,
        "ops",
        {
            "name": "broken",
            "http": {"url": inference_server, "protocol": "oip-v2", "model_name": "broken"},
            "sample_input": {"x": [1]},
        },
    )
    assert failing.status == "failed" and "wrong shape" in failing.error

    upper = _register(
        client,
        "ops",
        {
            "name": "upper",
            "http": {"url": f"{inference_server}/json/upper", "protocol": "json"},
            "sample_input": {"text": "hi"},
        },
    )
    assert upper.sample_output == {"upper": "HI"}
    client.post(
        "/v1/models/ops/upper/versions", {"bump": "major", "visibility": "public"}, format="json"
    )
    assert client.post("/v1/algo/ops/upper", {"text": "abc"}, format="json").json()["result"] == {
        "upper": "ABC"
    }

    _register(
        client,
        "ops",
        {
            "name": "slow",
            "http": {"url": f"{inference_server}/json/slow", "protocol": "json"},
        },
    )
    client.post(
        "/v1/models/ops/slow/versions", {"bump": "major", "visibility": "public"}, format="json"
    )
    timed_out = client.post("/v1/algo/ops/slow?timeout=1", {}, format="json")
    assert_error_shape(timed_out, 504, "TimeoutError")

    allow_outbound(settings, "http://127.0.0.1:9/")  # the discard port: nothing listens
    nowhere = _register(
        client,
        "ops",
        {
            "name": "gone",
            "http": {"url": "http://127.0.0.1:9/", "protocol": "json"},
        },
    )
    client.post(
        "/v1/models/ops/gone/versions", {"bump": "major", "visibility": "public"}, format="json"
    )
    error = client.post("/v1/algo/ops/gone", {}, format="json").json()["error"]
    assert "could not be reached" in error["message"]
    assert nowhere.status == "succeeded"  # no sample input to check


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"name": "x1", "http": {"url": "ftp://x", "protocol": "json"}}, "http.url"),
        ({"name": "x1", "http": {"url": "http://x", "protocol": "grpc"}}, "http.protocol"),
        ({"name": "x1", "http": {"url": "http://x", "protocol": "oip-v2"}}, "http.model_name"),
        ({"name": "Bad Name", "http": {"url": "http://x"}}, "name"),
    ],
)
def test_invalid_remote_models_are_400s(spec, field, transactional_db, storage):
    owner = UserFactory(username="ops")
    error = assert_error_shape(
        key_client(owner).post("/v1/models/ops", spec, format="json"), 400, "InputError"
    )
    assert error["message"].startswith(field)
