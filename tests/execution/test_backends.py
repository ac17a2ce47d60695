"""The execution backends: a registry filled when the app is ready, each backend running one
request from what the request carries, and nothing in execution reaching up to the gateway
or the catalogue (the gateway's lifecycle does the rest)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import execution
from execution.backends import ExecutionRequest, backends, get_backend
from execution.backends.http import HttpBackend
from execution.backends.local import LocalBackend

EXECUTION = Path(execution.__file__).parent


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


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_execution_never_imports_the_gateway_and_its_backends_not_the_catalogue():
    for path in sorted(EXECUTION.rglob("*.py")):
        above = {m for m in _imported_modules(path) if m.split(".")[0] in {"gateway"}}
        assert not above, f"{path} imports {above}"
    for path in [*sorted((EXECUTION / "backends").glob("*.py")), EXECUTION / "apps.py"]:
        above = {m for m in _imported_modules(path) if m.split(".")[0] in {"gateway", "catalog"}}
        assert not above, f"{path} imports {above}"
