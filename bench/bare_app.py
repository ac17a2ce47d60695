"""The baseline of the invocation benchmark: a bare WSGI app that answers every POST with
the bytes the gateway answers for a warm no-op model."""

import json
import uuid

BODY_TEMPLATE = {
    "result": {"echo": {"text": "hi"}},
    "metadata": {"content_type": "json", "duration": 0.0002},
}


def application(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    body = json.dumps({**BODY_TEMPLATE, "request_id": str(uuid.uuid4())}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
