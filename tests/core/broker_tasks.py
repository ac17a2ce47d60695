"""A task for the broker's tests (test_postgres_broker), loaded by the worker they start
with `--include`: its first run kills the pool process that runs it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from celery import shared_task


@shared_task(name="tests.core.broker_tasks.die_once")
def die_once(runs: str) -> None:
    path = Path(runs)
    first = not path.exists()
    with path.open("a") as log:
        log.write("started\n")
    if first:
        os.kill(os.getpid(), signal.SIGKILL)
    with path.open("a") as log:
        log.write("finished\n")
