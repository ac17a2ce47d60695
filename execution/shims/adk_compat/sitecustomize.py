"""Loaded by Python at start-up for ADK algorithms only (the adk runtime puts this folder on
PYTHONPATH). algorithmia-adk's error path calls traceback.format_exception(etype=...), a
keyword Python 3.10 removed, so every error an algorithm raises would kill its process.
Accepting the old keyword lets those errors reach the caller as the ADK meant them to; the
algorithm's own code is not touched."""

import traceback

_format_exception = traceback.format_exception


def _format_exception_accepting_etype(*args, **kwargs):
    if "etype" in kwargs:
        # The old first argument; with value and tb given, 3.10+ ignores it as well.
        args = (kwargs.pop("etype"), *args)
    return _format_exception(*args, **kwargs)


traceback.format_exception = _format_exception_accepting_etype
