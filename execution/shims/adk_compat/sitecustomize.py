"""Loaded by Python at start-up for ADK algorithms only (the adk runtime puts this folder on
PYTHONPATH). algorithmia-adk's error path calls traceback.format_exception(etype=...), a
keyword Python 3.10 removed, so every error an algorithm raises would kill its process.
Accepting the old keyword lets those errors reach the caller as the ADK meant them to; the
algorithm's own code is not touched. It also serves the relay to the platform's API in a
thread, when the sandbox lends the algorithm the API (see the end)."""

import os
import sys
import traceback

_format_exception = traceback.format_exception


def _format_exception_accepting_etype(*args, **kwargs):
    if "etype" in kwargs:
        # The old first argument; with value and tb given, 3.10+ ignores it as well.
        args = (kwargs.pop("etype"), *args)
    return _format_exception(*args, **kwargs)


traceback.format_exception = _format_exception_accepting_etype


def _serve_the_api_relay():
    """The relay to the platform's API (shims/api_relay.py), in a thread of the algorithm's
    own interpreter, when the sandbox lends it the API; the shims' folder is on sys.path
    only while it is imported."""
    if not os.environ.get("MARKETPLACE_API_SOCKET"):
        return
    shims = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, shims)
    try:
        import api_relay  # noqa: PLC0415 - only when lent the API, from the shims folder

        api_relay.serve_in_thread_if_asked()
    finally:
        sys.path.remove(shims)


_serve_the_api_relay()
