"""Invocation overhead: a warm no-op model called through the full gateway (auth, version
resolution, rate and concurrency limits (on, far above the load), invocation record,
metering, runner round trip, sandboxed process) against a bare gunicorn WSGI app returning
the same bytes, at the same concurrency and with the same number of gunicorn workers and
threads per worker. Prints p50/p99 latency and throughput, and their ratios.

    .venv/bin/python bench/invoke_latency.py [--concurrency 8] [--seconds 10] [--workers 3]
        [--threads 4] [--metering on|off|compare] [--rounds 3] [--price 0.00001]

--threads is the platform's WEB_THREADS (default 4, marketplace/core/gunicorn_conf.py); the
bare app gets as many. --threads 1 measures plain sync workers.

--metering on|off starts the platform with BILLING_METERING on or off. With metering on, the
no-op model's hardware class gets a compute price (--price credits per second, a
ComputePrice row written through the platform's own database; 0 leaves it unpriced), so
every call takes the priced path: price lookup, usage record, MonthlySpend update, budget
check.

--baseline-code PATH measures this checkout's code against another checkout's (a git worktree
of main, say) in the same run: both platforms up, loaded in turn for --rounds rounds,
alternating which goes first, then the bare app. Besides latency and throughput it prints
the CPU time the server's processes spent per call, in all and by part (web, runner with
its model processes, the platform's PostgreSQL, the Celery workers), which a busy machine
disturbs less than the latency.

--metering compare measures what metering costs a call: two platforms, one with metering on
(priced) and one with it off, run side by side and loaded in turn, --rounds rounds of
--seconds each, alternating which goes first, then the bare app. It prints throughput and
p50/p95/p99 latency of each, the ratios on/off, and what each platform recorded (usage
records and the priced total on, none off).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _platform import ROOT, Platform, free_port, percentile, publish, tree_cpu_seconds

BODY = json.dumps({"text": "hi"}).encode()


def load(url: str, headers: dict, *, concurrency: int, seconds: float) -> dict:
    parsed = urllib.parse.urlparse(url)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client():
        nonlocal errors
        mine = []
        while time.monotonic() < stop_at:
            connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            started = time.perf_counter()
            try:
                connection.request("POST", parsed.path, body=BODY, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
            finally:
                connection.close()
            if ok:
                mine.append(time.perf_counter() - started)
            else:
                with lock:
                    errors += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    return {
        "requests": len(latencies),
        "errors": errors,
        "throughput": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "latencies": latencies,
        "elapsed": elapsed,
    }


def combine(results: list[dict]) -> dict:
    """Several load runs of one target as one: all latencies, throughput over all the time."""
    latencies = [x for r in results for x in r["latencies"]]
    elapsed = sum(r["elapsed"] for r in results)
    return {
        "requests": len(latencies),
        "errors": sum(r["errors"] for r in results),
        "throughput": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "latencies": latencies,
        "elapsed": elapsed,
        "rounds": [r["throughput"] for r in results],
    }


def bare_server(workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "bare_app:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        cwd=Path(__file__).resolve().parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/v1/algo/demo/noop"
    for _ in range(100):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/")
            break
        except OSError:
            time.sleep(0.1)
    return process, url


def publish_noop(platform: Platform) -> str:
    folder = Path(tempfile.mkdtemp()) / "noop"
    folder.mkdir()
    (folder / "model.toml").write_text(
        'name = "noop"\nruntime = "python"\nentrypoint = "predict.py:apply"\n'
    )
    (folder / "predict.py").write_text("def apply(data):\n    return {'echo': data}\n")
    publish(platform, folder)
    return f"{platform.url}/v1/algo/demo/noop"


def platform_python(platform: Platform, code: str) -> dict:
    """Run `code` in a Django shell on the platform's own database; it prints one JSON line."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["MARKETPLACE_VAR_DIR"] = str(platform.directory / "var")
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


SET_PRICE = """
import json
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from billing.models import ComputePrice
from catalog.models import Model
model = Model.objects.get(owner__slug="demo", slug="noop")
ComputePrice.objects.create(
    hardware_class=model.hardware_class, price_per_second=Decimal("{price}"),
    effective_from=timezone.now() - timedelta(days=1), note="bench/invoke_latency.py",
)
print(json.dumps({{"hardware_class": model.hardware_class}}))
"""

USAGE = """
import json
from django.db.models import Count, Q, Sum
from billing.models import MonthlySpend, UsageRecord
records = UsageRecord.objects.aggregate(
    n=Count("pk"), billed=Count("pk", filter=Q(billed=True)), total=Sum("total")
)
spend = MonthlySpend.objects.filter(project="").aggregate(calls=Sum("calls"), total=Sum("total"))
print(json.dumps({"records": records, "spend": spend}, default=str))
"""


def platform_env(metering: bool) -> dict:
    # The limits are on, as in production, but far above what the bench sends: every call
    # pays for the rate check of its key and team and for its team's concurrency slot.
    return {
        "RATE_LIMIT_PER_KEY_PER_MINUTE": "1000000",
        "TEAM_RATE_LIMIT_PER_MINUTE": "1000000",
        "TEAM_CONCURRENCY_LIMIT": "32",  # the default
        "RUNNER_MAX_PER_VERSION": "4",
        "LOG_LEVEL": "WARNING",
        "BILLING_METERING": "true" if metering else "false",
    }


def prepare(platform: Platform, *, metering: bool, price: str) -> tuple[str, dict, str]:
    """Publish the no-op model, price its hardware class when metering is on (unpriced
    otherwise, or with --price 0). Returns its URL, the call headers and a description."""
    url = publish_noop(platform)
    described = "metering off"
    if metering:
        described = "metering on, unpriced"
        if Decimal(price) > 0:
            hardware = platform_python(platform, SET_PRICE.format(price=price))["hardware_class"]
            described = f"metering on, {hardware} priced at {price}/s"
    headers = {"Authorization": f"Simple {platform.key}", "Content-Type": "application/json"}
    return url, headers, described


def measured_load(pid: int, url: str, headers: dict, platform: Platform | None = None, **kwargs):
    """`load`, with the CPU time the server's processes (`pid` and its descendants) spent
    on it: `cpu_ms` per answered request; with a `platform`, also `cpu_parts` (seconds per
    part: web, runner with its model processes, postgres, ...)."""
    before = tree_cpu_seconds(pid)
    parts_before = platform.cpu_seconds() if platform else {}
    result = load(url, headers, **kwargs)
    result["cpu_seconds"] = tree_cpu_seconds(pid) - before
    result["cpu_ms"] = 1000 * result["cpu_seconds"] / max(result["requests"], 1)
    if platform is not None:
        parts_after = platform.cpu_seconds()
        result["cpu_parts"] = {
            part: seconds - parts_before.get(part, 0.0) for part, seconds in parts_after.items()
        }
    return result


def run_bare(args) -> dict:
    bare_process, bare_url = bare_server(args.workers, args.threads)
    try:
        headers = {"Content-Type": "application/json"}
        load(bare_url, headers, concurrency=args.concurrency, seconds=1)
        return measured_load(
            bare_process.pid,
            bare_url,
            headers,
            concurrency=args.concurrency,
            seconds=args.seconds,
        )
    finally:
        bare_process.terminate()
        bare_process.wait(10)


def print_rows(rows: list[tuple[str, dict]], *, p95: bool = False) -> None:
    width = max(10, *(len(name) for name, _ in rows))
    print(
        f"{'':{width}} {'requests':>9} {'errors':>7} {'req/s':>9} {'p50 ms':>9}"
        + (f" {'p95 ms':>9}" if p95 else "")
        + f" {'p99 ms':>9}"
    )
    for name, result in rows:
        print(
            f"{name:{width}} {result['requests']:>9} {result['errors']:>7} "
            f"{result['throughput']:>9.1f} {result['p50_ms']:>9.2f}"
            + (f" {result['p95_ms']:>9.2f}" if p95 else "")
            + f" {result['p99_ms']:>9.2f}"
        )


def single(args) -> None:
    """The gateway (metering on or off) against the bare app."""
    metering = args.metering == "on"
    with Platform(web_workers=args.workers, env=platform_env(metering)) as platform:
        url, headers, described = prepare(platform, metering=metering, price=args.price)
        load(url, headers, concurrency=args.concurrency, seconds=2)  # warm every process
        gateway = load(url, headers, concurrency=args.concurrency, seconds=args.seconds)
    bare = run_bare(args)
    print(
        f"concurrency {args.concurrency}, {args.seconds:g} s each, {args.workers} gunicorn "
        f"workers of {args.threads} threads each; gateway: {described}"
    )
    print_rows([("gateway", gateway), ("bare app", bare)])
    print(
        f"ratios gateway/bare: p50 {gateway['p50_ms'] / bare['p50_ms']:.1f}x, "
        f"p99 {gateway['p99_ms'] / bare['p99_ms']:.1f}x, "
        f"throughput {gateway['throughput'] / bare['throughput']:.2f}x"
    )


def compare(args) -> None:
    """Metering on (priced) against metering off: both platforms up, loaded in turn."""
    with (
        Platform(web_workers=args.workers, env=platform_env(True)) as on,
        Platform(web_workers=args.workers, env=platform_env(False)) as off,
    ):
        targets = {
            "metering on": prepare(on, metering=True, price=args.price),
            "metering off": prepare(off, metering=False, price=args.price),
        }
        for url, headers, _ in targets.values():
            load(url, headers, concurrency=args.concurrency, seconds=2)  # warm every process
        runs: dict[str, list[dict]] = {name: [] for name in targets}
        names = list(targets)
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                url, headers, _ = targets[name]
                runs[name].append(
                    load(url, headers, concurrency=args.concurrency, seconds=args.seconds)
                )
        recorded = {
            "metering on": platform_python(on, USAGE),
            "metering off": platform_python(off, USAGE),
        }
    bare = run_bare(args)
    results = {name: combine(r) for name, r in runs.items()}
    print(
        f"concurrency {args.concurrency}, {args.rounds} alternating rounds of "
        f"{args.seconds:g} s per platform, {args.workers} gunicorn workers of {args.threads} "
        "threads each; "
        f"{targets['metering on'][2]}"
    )
    print_rows([*((f"gateway, {n}", r) for n, r in results.items()), ("bare app", bare)], p95=True)
    on_, off_ = results["metering on"], results["metering off"]
    print(
        "throughput per round: "
        + "; ".join(
            f"{n} " + ", ".join(f"{t:.1f}" for t in r["rounds"]) for n, r in results.items()
        )
    )
    print(
        f"ratios metering on/off: p50 {on_['p50_ms'] / off_['p50_ms']:.2f}x, "
        f"p95 {on_['p95_ms'] / off_['p95_ms']:.2f}x, p99 {on_['p99_ms'] / off_['p99_ms']:.2f}x, "
        f"throughput {on_['throughput'] / off_['throughput']:.2f}x"
    )
    print(
        f"ratios gateway/bare: p50 on {on_['p50_ms'] / bare['p50_ms']:.1f}x, "
        f"off {off_['p50_ms'] / bare['p50_ms']:.1f}x; throughput on "
        f"{on_['throughput'] / bare['throughput']:.2f}x, off "
        f"{off_['throughput'] / bare['throughput']:.2f}x"
    )
    for name, usage in recorded.items():
        records, spend = usage["records"], usage["spend"]
        print(
            f"{name}: {records['n']} usage records ({records['billed']} billed, total "
            f"{records['total']}), MonthlySpend {spend['calls']} calls, total {spend['total']}"
        )


def versus(args) -> None:
    """This checkout's code against another checkout's (--baseline-code), both platforms up
    and loaded in turn, --rounds rounds alternating which goes first, then the bare app."""
    metering = args.metering == "on"
    platforms = {
        "before": Platform(
            web_workers=args.workers, env=platform_env(metering), root=Path(args.baseline_code)
        ),
        "after": Platform(web_workers=args.workers, env=platform_env(metering)),
    }
    try:
        for platform in platforms.values():
            platform.wait_ready(timeout=600)  # two at once on a busy machine
        before, after = platforms["before"], platforms["after"]
        targets = {
            "before": (before, *prepare(before, metering=metering, price=args.price)),
            "after": (after, *prepare(after, metering=metering, price=args.price)),
        }
        for _, url, headers, _ in targets.values():
            load(url, headers, concurrency=args.concurrency, seconds=2)  # warm every process
        runs: dict[str, list[dict]] = {name: [] for name in targets}
        names = list(targets)
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                platform, url, headers, _ = targets[name]
                runs[name].append(
                    measured_load(
                        platform.process.pid,
                        url,
                        headers,
                        platform,
                        concurrency=args.concurrency,
                        seconds=args.seconds,
                    )
                )
    finally:
        for platform in platforms.values():  # both were started, ready or not
            platform.stop()
    bare = run_bare(args)
    results = {name: combine(r) for name, r in runs.items()}
    for name, rounds in runs.items():
        requests = sum(r["requests"] for r in rounds)
        results[name]["cpu_ms"] = 1000 * sum(r["cpu_seconds"] for r in rounds) / max(requests, 1)
        parts: dict[str, float] = {}
        for r in rounds:
            for part, seconds in r["cpu_parts"].items():
                parts[part] = parts.get(part, 0.0) + seconds
        results[name]["cpu_parts_ms"] = {
            part: 1000 * seconds / max(requests, 1) for part, seconds in sorted(parts.items())
        }
    print(
        f"concurrency {args.concurrency}, {args.rounds} alternating rounds of {args.seconds:g} s "
        f"per platform, {args.workers} gunicorn workers of {args.threads} threads each; "
        f"{targets['after'][3]}; before: {args.baseline_code}, after: {ROOT}"
    )
    rows = [(f"gateway {name}", r) for name, r in results.items()] + [("bare app", bare)]
    print_rows(rows, p95=True)
    for name, result in [*rows]:
        print(f"{name}: {result['cpu_ms']:.2f} ms of the server's CPU per call")
        if "cpu_parts_ms" in result:
            print(
                "    by part: "
                + ", ".join(f"{part} {ms:.2f}" for part, ms in result["cpu_parts_ms"].items())
            )
    for name, result in results.items():
        print(
            f"{name}: p50 {result['p50_ms'] - bare['p50_ms']:+.2f} ms, "
            f"p99 {result['p99_ms'] - bare['p99_ms']:+.2f} ms above the bare app; "
            f"throughput {result['throughput'] / bare['throughput']:.2f}x the bare app's; "
            f"CPU per call {result['cpu_ms'] / bare['cpu_ms']:.1f}x the bare app's"
        )
    b, a = results["before"], results["after"]
    print(
        f"after/before: p50 {a['p50_ms'] / b['p50_ms']:.2f}x, "
        f"p99 {a['p99_ms'] / b['p99_ms']:.2f}x, "
        f"throughput {a['throughput'] / b['throughput']:.2f}x, CPU per call "
        f"{a['cpu_ms'] / b['cpu_ms']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("WEB_THREADS", "4")),
        help="threads per gunicorn worker, on both sides (the platform's WEB_THREADS)",
    )
    parser.add_argument("--metering", choices=["on", "off", "compare"], default="on")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds (compare, --baseline-code)"
    )
    parser.add_argument(
        "--baseline-code",
        help="another checkout (e.g. a git worktree of main): its platform against this one's, "
        "loaded in turn in the same run",
    )
    parser.add_argument(
        "--price", default="0.00001", help="credits per second with metering on (0: unpriced)"
    )
    args = parser.parse_args()
    os.environ["WEB_THREADS"] = str(args.threads)  # the platforms started below inherit it
    if args.baseline_code:
        versus(args)
    elif args.metering == "compare":
        compare(args)
    else:
        single(args)


if __name__ == "__main__":
    main()
