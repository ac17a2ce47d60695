"""The execution backends: a registry filled when the app is ready, each backend running one
request from what the request carries (the gateway's lifecycle does the rest). That nothing in
execution imports the gateway or the catalogue is the floors' import contract (lint-imports)."""

from __future__ import annotations

import pytest

from execution.backends import ExecutionRequest, backends, get_backend
from execution.backends.http import HttpBackend
from execution.backends.local import LocalBackend


def test_the_registry_holds_the_backends_that_run_one_request():
    assert backends.names() == ["local", "http"]
    assert isinstance(get_backend("local"), LocalBackend)
    assert isinstance(get_backend("http"), HttpBackend)
    # Dispatching to workers is the gateway's lifecycle, not a backend.
    with pytest.raises(LookupError, match="unknown execution backend 'celery'"):
        get_backend("celery")


def test_the_http_backend_forwards_to_the_endpoint_on_the_request(settings):
    # No database here: the backend reads its server from the request, not the catalogue.
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    request = ExecutionRequest(
        request_id="r",
        build_id="b",
        content_type="json",
        data={"x": 1},
        timeout=2,
        endpoint={"url": "http://127.0.0.1:1/predict", "protocol": "json"},
    )
    result = HttpBackend().run(request)
    assert result.status == "failed"
    assert result.error["message"].startswith("the inference server is not allowed")
