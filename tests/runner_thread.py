"""The host's runner service, serving in a thread of the test process on a socket of the
test's choosing, with the catalogue's answers, as `run_runner` gives them to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from catalog.launch import launch_spec_for_build
from catalog.services import reservations_wanted
from execution.pool import WarmPool
from execution.runner_service import serve


@contextmanager
def runner_serving(path: Path, pool: WarmPool) -> Iterator[WarmPool]:
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=serve,
        args=(path, pool),
        kwargs={
            "launch_spec_for_build": launch_spec_for_build,
            "reservations_wanted": reservations_wanted,
            "ready": ready,
            "stop": stop,
        },
        daemon=True,
    )
    thread.start()
    assert ready.wait(10), "the runner did not start serving"
    try:
        yield pool
    finally:
        stop.set()
        thread.join(10)
