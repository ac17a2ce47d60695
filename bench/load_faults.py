"""Sustained concurrent calls on a whole platform (what `make run` starts), first without
faults (the baseline) and then while, one after the other, a model process, the runner and
the Celery worker are killed with SIGKILL and the platform's own PostgreSQL and broker are
restarted. Prints p50/p90/p99 latency, throughput and outcomes for the baseline, the fault
phase and each fault's window, with ratios against the baseline measured in the same run;
then checks that every accepted call has exactly one final status and one usage record,
that no caller hung past its timeout, and that the platform recovered by itself.

The short, bounded form of the same run is tests/faults/test_load_and_faults.py; both use
tests/faults/harness.py.

    .venv/bin/python bench/load_faults.py [--duration 300] [--baseline 60] [--concurrency 8]
        [--faults model,runner,worker,database,broker] [--outage 5] [--window 10]
        [--broker auto|redis|embedded] [--keep]

Exits 1 when the accounting check finds a problem or the platform does not recover.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults.harness import (  # noqa: E402 - after the path is set
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=300, help="seconds of the fault phase")
    parser.add_argument("--baseline", type=float, default=60, help="seconds without faults")
    parser.add_argument("--concurrency", type=int, default=8, help="calling threads")
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"comma-separated, in order, from {', '.join(FAULTS)} (empty: none)",
    )
    parser.add_argument("--outage", type=float, default=5, help="seconds a server stays down")
    parser.add_argument("--window", type=float, default=10, help="seconds measured per fault")
    parser.add_argument(
        "--broker",
        choices=["auto", "redis", "embedded"],
        default="auto",
        help="a private redis-server, the embedded one (in PostgreSQL), or redis if installed",
    )
    parser.add_argument("--keep", action="store_true", help="keep the platform's directory")
    args = parser.parse_args()
    faults = [name for name in args.faults.split(",") if name]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")

    directory = new_directory("bench-load-faults")
    began = time.monotonic()
    platform = FaultPlatform(directory, broker=args.broker)
    problems: list[str] = []
    try:
        platform.start()
        print(
            f"platform up (broker: {platform.broker}), model published and warm in "
            f"{time.monotonic() - began:.1f} s; {args.concurrency} threads calling"
        )
        load = Load(platform, args.concurrency)
        load.start()
        try:
            time.sleep(args.baseline)
            fault_phase_start = load.now()
            print(f"baseline over at {fault_phase_start:.1f} s; faults:")
            spacing = args.duration / max(len(faults), 1)
            done = run_with_faults(
                platform,
                load,
                faults,
                before=min(5.0, spacing / 2),
                between=1,
                spacing=spacing,
                outage=args.outage,
            )
            time.sleep(max(0.0, fault_phase_start + args.duration - load.now()))
        finally:
            load.stop()
        calls = load.snapshot()
        end = max(c.started for c in calls) if calls else fault_phase_start

        baseline = figures("baseline (no faults)", calls, 0, fault_phase_start)
        under = figures("under faults (whole phase)", calls, fault_phase_start, end)
        print()
        print(format_figures(baseline))
        print(format_figures(under, baseline))
        for line in fault_report(calls, done, window=args.window, baseline=baseline):
            print(line)
        print("outcomes (all calls):")
        for outcome, count in Counter(c.outcome for c in calls).most_common():
            print(f"    {outcome:<30} {count:7d}")

        try:
            recovered = wait_recovered(platform, timeout=120)
            print(f"after the load: /readyz ok and new calls succeed within {recovered:.1f} s")
        except AssertionError as failure:
            problems.append(f"no recovery: {failure}")
        accounting = check_accounting(platform, calls)
        print(
            f"accounting: {accounting.accepted} accepted calls seen, "
            f"{accounting.invocations} invocations "
            f"({', '.join(f'{k} {v}' for k, v in accounting.statuses.most_common())}); "
            f"open ones settled in {accounting.settled_after:.1f} s"
        )
        problems += accounting.problems
    finally:
        platform.stop()
        if args.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    if problems:
        print(f"\n{len(problems)} PROBLEMS:")
        for problem in problems[:50]:
            print(f"  - {problem}")
        return 1
    print("every accepted call has one final status and one usage record; none hung")
    return 0


if __name__ == "__main__":
    sys.exit(main())
