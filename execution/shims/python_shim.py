"""Runs a Python model behind the runner protocol. Started by the platform inside the
sandbox with the model's own interpreter:

    python python_shim.py ENTRY [LOAD]     ENTRY/LOAD: "path/to/file.py:function"

Requests arrive one JSON object per line on stdin; responses go, one JSON object per line,
to the file descriptor named by MARKETPLACE_RESULT_FD, so nothing the model prints can ever
corrupt a result. What the model prints while handling a request is returned with it.
"""

import binascii
import contextlib
import importlib.util
import io
import json
import os
import sys

_OUTPUT_LIMIT = 64 * 1024


def _load_function(spec: str, root: str):
    path, _, name = spec.rpartition(":")
    full_path = path if os.path.isabs(path) else os.path.join(root, path)
    module_name = os.path.splitext(os.path.basename(full_path))[0]
    module_spec = importlib.util.spec_from_file_location(module_name, full_path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    return getattr(module, name)


def _decode(request):
    content_type = request.get("content_type", "json")
    data = request.get("data")
    if content_type == "binary":
        return binascii.a2b_base64(data or "")
    return data


def _encode(result):
    if isinstance(result, bytes | bytearray | memoryview):
        return binascii.b2a_base64(bytes(result), newline=False).decode("ascii"), "binary"
    if isinstance(result, str):
        return result, "text"
    return result, "json"


def _error(exc, *, error_type=None):
    return {
        "message": str(exc) or type(exc).__name__,
        "error_type": error_type or getattr(exc, "error_type", None) or "AlgorithmError",
        "stacktrace": _stacktrace(exc),
    }


def _stacktrace(exc):
    """The stack trace of `exc`, being handled. traceback (with linecache, tokenize and
    textwrap: a few ms) is imported when a model first fails, not on every start, where it
    would delay every cold start; after the model's folder went on sys.path, so a module of
    the model's that shadows one of those leaves the exception's own line instead."""
    try:
        import traceback  # noqa: PLC0415 - only once a model fails, see above

        return traceback.format_exc()
    except Exception:
        return f"{type(exc).__name__}: {exc}\n"


def main():
    channel = os.fdopen(int(os.environ["MARKETPLACE_RESULT_FD"]), "w", buffering=1)

    def send(message):
        channel.write(json.dumps(message, default=_json_default) + "\n")
        channel.flush()

    root = os.getcwd()
    try:
        if os.environ.get("MARKETPLACE_API_SOCKET"):
            # The relay to the platform's API, in a thread of this interpreter (this folder
            # is still first on sys.path).
            import api_relay  # noqa: PLC0415 - only when lent the API

            api_relay.serve_in_thread_if_asked()
        sys.path.insert(0, root)
        apply = _load_function(sys.argv[1], root)
        state = None
        has_load = len(sys.argv) > 2 and sys.argv[2]
        if has_load:
            state = _load_function(sys.argv[2], root)()
    except BaseException as exc:  # report any failure to load, then stop
        send({"ready": False, "error": _error(exc, error_type="LoadingError")})
        return 1
    send({"ready": True})

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        captured = io.StringIO()
        response = {"id": request.get("id")}
        try:
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
                data = _decode(request)
                result = apply(data, state) if has_load else apply(data)
            response["result"], response["content_type"] = _encode(result)
            json.dumps(response["result"], default=_json_default)
        except Exception as exc:
            response.pop("result", None)
            response.pop("content_type", None)
            response["error"] = _error(exc)
        printed = captured.getvalue()
        if len(printed) > _OUTPUT_LIMIT:
            printed = printed[:_OUTPUT_LIMIT] + f"\n[output cut at {_OUTPUT_LIMIT} characters]\n"
        response["stdout"] = printed
        send(response)
    return 0


def _json_default(value):
    """numpy scalars and arrays, sets and the like, as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"result of type {type(value).__name__} is not JSON serialisable")


if __name__ == "__main__":
    sys.exit(main())
