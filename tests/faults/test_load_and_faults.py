"""Load and faults, short form (the long form is bench/load_faults.py): a whole platform
serves concurrent synchronous, asynchronous and short-timeout calls while, one after the
other, a model process, the runner and the Celery worker are killed with SIGKILL and the
platform's own PostgreSQL and broker are restarted. Afterwards every accepted call has
exactly one final status and one usage record, no caller hung past its timeout, every
refusal was a clear 503, and the platform recovered by itself (its supervisor restarted
what died) and serves new calls."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.faults.harness import (
    FAULTS,
    FaultPlatform,
    Load,
    check_accounting,
    fault_report,
    figures,
    format_figures,
    new_directory,
    run_with_faults,
    wait_recovered,
)
from tests.live_platform import processes_mentioning

pytestmark = pytest.mark.slow


@pytest.fixture
def platform():
    directory = new_directory("faults")
    try:
        # FAULTS_BROKER=embedded|redis picks the broker; by default a private redis-server
        # where one is installed, else the embedded broker.
        platform = FaultPlatform(directory, broker=os.environ.get("FAULTS_BROKER", "auto"))
        try:
            began = time.monotonic()
            platform.start()
            print(f"\nplatform up, model published and warm in {time.monotonic() - began:.1f} s")
            yield platform
        finally:
            platform.stop()
        # Nothing the platform started outlives it, not even the model processes of the
        # runner that was killed.
        assert processes_mentioning(str(platform.var_dir)) == []
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_calls_are_accounted_for_and_the_platform_recovers_from_faults_under_load(platform):
    pids = {name: platform.child(name).pid for name in ("runner", "worker", "calls", "beat")}
    load = Load(platform, concurrency=4)
    load.start()
    try:
        faults = run_with_faults(
            platform, load, list(FAULTS), before=2, between=1, outage=2, log=print
        )
    finally:
        load.stop()
    calls = load.snapshot()
    print(format_figures(figures("under faults", calls, 0, load.now())))
    print("\n".join(fault_report(calls, faults, window=5)))

    recovered_in = wait_recovered(platform, timeout=60)
    accounting = check_accounting(platform, calls)
    print(f"recovered in {recovered_in:.1f} s; accounting: {accounting}")

    assert not accounting.problems, "\n".join(accounting.problems[:30])
    assert accounting.accepted > 50, accounting
    # The faults really hit calls (some failed), and the supervisor restarted the children.
    hit = {c.outcome for c in calls if c.kind != "overrun"} - {"ok", "accepted (async)"}
    assert hit, "no fault reached a call"
    assert [f.name for f in faults] == list(FAULTS)
    for name, pid in pids.items():
        assert platform.child(name).pid != pid, f"the {name} was not restarted"
    assert "restarting it in" in platform.output()
    # Each fault window still completed calls once the fault was over.
    for fault in faults:
        after = [c for c in calls if c.started >= fault.ended and c.correct]
        assert after, f"no call succeeded after {fault.detail}"


def test_the_supervisor_restarts_a_dead_child_with_backoff_and_gives_up_on_a_crash_loop():
    """run_platform's restart policy on a real child that dies at once every time: restarts
    wait 1, 2, 4, 8, 16 then 30 s, and the seventh quick death stops the platform."""
    from marketplace.core.management.commands import run_platform

    command = run_platform.Command()
    child = run_platform._Child(
        "crasher", [sys.executable, "-c", "raise SystemExit(3)"], {}, process=None, started_at=0
    )
    delays = []
    for _ in range(run_platform.RESTART_LIMIT):
        child.start()
        assert child.process.wait(timeout=30) == 3
        began = time.monotonic()
        assert command._schedule_restart(child, 3) is False
        delays.append(round(child.restart_at - began))
    assert delays == [1, 2, 4, 8, 16, 30]
    child.start()
    child.process.wait(timeout=30)
    assert command._schedule_restart(child, 3) is True
    # A child that had been running for a while starts again after the first step.
    child.quick_restarts = 4
    child.process = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    child.process.wait(timeout=30)
    child.started_at = time.monotonic() - run_platform.STABLE_AFTER_SECONDS - 1
    assert command._schedule_restart(child, 0) is False
    assert child.quick_restarts == 0 and child.restart_at - time.monotonic() <= 1


def test_a_database_outage_is_a_503_not_a_500():
    """What an API request gets when PostgreSQL is unreachable (seen under the faults
    above): the documented error shape with 503 and Retry-After."""
    from django.db import OperationalError

    from marketplace.core.api import exception_handler

    response = exception_handler(
        OperationalError('connection failed: connection to server on socket "/x" failed'), {}
    )
    assert response.status_code == 503
    assert response.data["error"]["error_type"] == "UnavailableError"
    assert "database" in response.data["error"]["message"]
    assert response["Retry-After"] == "5"
