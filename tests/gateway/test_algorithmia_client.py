"""The official Algorithmia Python client, unchanged, against a live server: JSON, text and
binary input, results and metadata, model errors as AlgorithmException, output=raw and
output=void, and an unchanged ADK algorithm published and called."""

from __future__ import annotations

import time

import Algorithmia
import pytest
from Algorithmia.algorithm import OutputType
from Algorithmia.errors import AlgorithmException

from catalog.demo.loader import MODELS_DIR
from gateway.models import Invocation
from tests.factories import make_key
from tests.gateway.conftest import publish

pytestmark = pytest.mark.slow


@pytest.fixture
def client(live_server, toolbox, owner):
    _key, secret = make_key(owner)
    return Algorithmia.client(secret, live_server.url)


def test_json_text_and_binary(client):
    response = client.algo("ada/toolbox/1.0.0").pipe({"text": "hi"})
    assert response.result == {"echo": {"text": "hi"}}
    assert response.metadata.content_type == "json" and response.metadata.duration >= 0
    assert client.algo("ada/toolbox").pipe("quiet please").result == "QUIET PLEASE"
    binary = client.algo("ada/toolbox").pipe(bytearray(b"\x00\x01\x02"))
    assert binary.metadata.content_type == "binary" and binary.result == b"\x02\x01\x00"


def test_model_errors_raise_algorithm_exception(client):
    with pytest.raises(AlgorithmException) as raised:
        client.algo("ada/toolbox").pipe({"fail": "no good"})
    assert raised.value.message == "no good"
    assert raised.value.error_type == "AlgorithmError"
    assert "Traceback" in (raised.value.stack_trace or "")  # the caller owns the model


def test_raw_output(client):
    algo = client.algo("ada/toolbox").set_options(output=OutputType.raw)
    assert algo.pipe("abc") == "ABC"


def test_void_output_runs_asynchronously(client, async_worker):
    algo = client.algo("ada/toolbox").set_options(output=OutputType.void)
    response = algo.pipe({"text": "later"})
    assert response.async_protocol == "void" and response.request_id
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        invocation = Invocation.objects.get(pk=response.request_id)
        if invocation.is_final:
            break
        time.sleep(0.2)
    assert invocation.status == "succeeded" and invocation.result == {"echo": {"text": "later"}}


def test_an_unchanged_adk_algorithm(client, owner):
    import shutil
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp()) / "adk"
    shutil.copytree(MODELS_DIR / "roman-numerals", folder)
    version = publish(owner, {}, folder=folder)
    name = version.model.slug
    result = client.algo(f"ada/{name}").pipe(version.build.sample_input).result
    assert result == version.build.sample_output
