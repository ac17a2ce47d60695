"""Where a call's time goes in the gateway: py-spy samples the one gunicorn worker of a
platform (limits on; metering on and priced unless --metering off) while --concurrency
clients call a warm no-op model, and this prints the share of the worker's request time
spent in each stage of a call, inclusive, with the call's p50 as measured by the client at
the same time.

    .venv/bin/pip install py-spy    # not a dependency of the project
    .venv/bin/python bench/profile_invoke.py [--seconds 12] [--gil] [--raw out.txt]
        [--concurrency 1] [--metering on|off]

--gil samples only while the worker holds the GIL (its own CPU work, without the time it
waits for PostgreSQL or the runner). The stages are matched by function name: see STAGES.
With several threads per worker (WEB_THREADS) a share is of all the threads' request time.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _platform import Platform
from invoke_latency import load, platform_env, prepare

# Stage -> the frame (function [file]) whose inclusive share is the stage's.
STAGES = [
    ("whole request (Django, from the WSGI handler)", r"^WSGIHandler\.__call__"),
    ("  DRF (APIView.dispatch, with the view)", r"^APIView\.dispatch"),
    ("  the view: InvokeApi.post", r"^InvokeApi\.post"),
    ("whole request (the hot path)", r"^HotPath\.respond"),
    ("  the call: HotPath._answer", r"^HotPath\._answer"),
    ("    authentication (key)", r"^(ApiKeyAuthentication\.authenticate|_authenticated_key)"),
    ("    parse_call", r"^parse_call"),
    ("    authorise_call (model, membership, version, scopes)", r"^authorise_call"),
    ("    admission (rate check, slot, invocation insert)", r"^(check_rates|admit \[)"),
    ("    budget cap check", r"^cap_check"),
    ("    invocation insert (on its own)", r"^(_insert \[gateway|QuerySet\.create)"),
    ("    concurrency slot (on its own)", r"^concurrency_slot"),
    ("    runner round trip", r"^LocalBackend\.run"),
    ("    finish (final status, usage record, spend)", r"^finish \[gateway"),
    ("  all PostgreSQL statements", r"^CursorWrapper\.execute \["),
]


def frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rstrip().rpartition(" ")
    names = []
    for frame in stack.split(";"):
        match = re.match(r"(.*?) \((.*?):\d+\)", frame)
        if match:
            where = match.group(2).split("site-packages/")[-1]
            names.append(f"{match.group(1)} [{where}]")
        else:
            names.append(frame)
    return names, int(count)


def shares(raw: Path) -> tuple[int, dict[str, float]]:
    inclusive: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        names, count = frames(line)
        if not any(
            name.startswith(("SyncWorker.handle_request", "ThreadWorker.handle_request"))
            for name in names
        ):
            continue
        total += count
        for label, pattern in STAGES:
            if any(re.search(pattern, name) for name in names):
                inclusive[label] += count
    return total, {label: 100 * inclusive[label] / max(total, 1) for label, _ in STAGES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--gil", action="store_true")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--metering", choices=["on", "off"], default="on")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    raw = args.raw or Path(tempfile.mkdtemp()) / "stacks.txt"
    metering = args.metering == "on"
    with Platform(web_workers=1, env=platform_env(metering)) as platform:
        url, headers, described = prepare(platform, metering=metering, price="0.00001")
        load(url, headers, concurrency=args.concurrency, seconds=3)
        table = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True)
        rows = [line.split(None, 2) for line in table.stdout.splitlines()[1:]]
        masters = {pid for pid, _, cmd in rows if f"127.0.0.1:{platform.port}" in cmd}
        worker = next(pid for pid, ppid, cmd in rows if ppid in masters and "gunicorn" in cmd)
        measured: dict = {}
        client = threading.Thread(
            target=lambda: measured.update(
                load(url, headers, concurrency=args.concurrency, seconds=args.seconds + 3)
            )
        )
        client.start()
        time.sleep(1)
        subprocess.run(
            [py_spy, "record", "-p", worker, "-d", str(int(args.seconds)), "-r", "500"]
            + ["-f", "raw", "-o", str(raw), "--nonblocking"]
            + (["--gil"] if args.gil else []),
            check=True,
            capture_output=True,
        )
        client.join()
    total, by_stage = shares(raw)
    print(
        f"{described}; {args.concurrency} clients; p50 {measured['p50_ms']:.2f} ms, {total} samples"
    )
    print("share of the worker's request time" + (" holding the GIL" if args.gil else ""))
    for label, share in by_stage.items():
        print(f"{share:6.1f}%  {label}")


if __name__ == "__main__":
    main()
