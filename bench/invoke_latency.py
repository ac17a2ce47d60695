"""Invocation overhead: a warm no-op model called through the full gateway (auth, version
resolution, limits, invocation record, runner round trip, sandboxed process) against a bare
gunicorn WSGI app returning the same bytes, at the same concurrency and with the same
number of gunicorn workers. Prints p50/p99 latency and throughput, and their ratios.

    .venv/bin/python bench/invoke_latency.py [--concurrency 8] [--seconds 10] [--workers 3]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _platform import Platform, free_port, percentile

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
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def bare_server(workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "bare_app:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
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
    env = {
        **os.environ,
        "MARKETPLACE_API_URL": platform.url,
        "MARKETPLACE_API_KEY": platform.key,
        "XDG_CONFIG_HOME": str(folder.parent),
    }
    subprocess.run(
        [
            str(Path(sys.executable).parent / "marketplace"),
            "publish",
            str(folder),
            "--owner",
            "demo",
            "--bump",
            "major",
            "--visibility",
            "public",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return f"{platform.url}/v1/algo/demo/noop"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--metering", choices=["on", "off"], default="on")
    args = parser.parse_args()
    env = {
        "RATE_LIMIT_PER_KEY_PER_MINUTE": "0",
        "TEAM_RATE_LIMIT_PER_MINUTE": "0",
        "TEAM_CONCURRENCY_LIMIT": "0",
        "RUNNER_MAX_PER_VERSION": "4",
        "LOG_LEVEL": "WARNING",
    }
    with Platform(web_workers=args.workers, env=env) as platform:
        url = publish_noop(platform)
        headers = {"Authorization": f"Simple {platform.key}", "Content-Type": "application/json"}
        load(url, headers, concurrency=args.concurrency, seconds=2)  # warm every process
        gateway = load(url, headers, concurrency=args.concurrency, seconds=args.seconds)
    bare_process, bare_url = bare_server(args.workers)
    try:
        load(
            bare_url, {"Content-Type": "application/json"}, concurrency=args.concurrency, seconds=1
        )
        bare = load(
            bare_url,
            {"Content-Type": "application/json"},
            concurrency=args.concurrency,
            seconds=args.seconds,
        )
    finally:
        bare_process.terminate()
        bare_process.wait(10)
    print(
        f"concurrency {args.concurrency}, {args.seconds:g} s each, {args.workers} gunicorn "
        "workers each"
    )
    print(f"{'':10} {'requests':>9} {'errors':>7} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9}")
    for name, result in (("gateway", gateway), ("bare app", bare)):
        print(
            f"{name:10} {result['requests']:>9} {result['errors']:>7} "
            f"{result['throughput']:>9.1f} {result['p50_ms']:>9.2f} {result['p99_ms']:>9.2f}"
        )
    print(
        f"ratios gateway/bare: p50 {gateway['p50_ms'] / bare['p50_ms']:.1f}x, "
        f"p99 {gateway['p99_ms'] / bare['p99_ms']:.1f}x, "
        f"throughput {gateway['throughput'] / bare['throughput']:.2f}x"
    )


if __name__ == "__main__":
    main()
