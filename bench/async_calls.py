"""Asynchronous calls (`output=void`): how long an accepted call waits before a worker starts
it, and how many no-op asynchronous calls the platform completes a second, on the default
embedded broker (PostgreSQL through kombu's SQLAlchemy transport) and, where they answer, on
Redis and RabbitMQ. The baseline, measured in the same run on the same platform: the same
model called synchronously, so each figure is also printed as a ratio to a synchronous call.

    .venv/bin/python bench/async_calls.py [--calls 200] [--paced 50]
        [--brokers embedded,redis,amqp] [--redis URL] [--amqp URL]
        [--web-workers 3] [--worker-concurrency 2] [--compare /work/main]

Two measurements per broker, on a platform started as `make run` starts it (web workers and
Celery concurrency as given; limits off, metering off):
- start wait: --paced calls sent one at a time, each after the previous one finished; the wait
  is the invocation's `started_at - created_at` (both taken by the platform's clock).
- throughput: --calls calls sent at once by 8 clients; completed calls per second from the
  first accepted to the last finished, and the CPU time each part of the platform (web,
  Celery worker main process and pool, runner and model, PostgreSQL) spent per call over
  that run, less what the bench's own status reads cost (measured after the run by reading
  as many again): on a shared machine calls/s follows the load, CPU per call much less.
  The CPU per synchronous call (the paced ones) is printed beside it: the web's share of a
  synchronous call (the WSGI hot path) against its share of an asynchronous one (the view).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _platform import ROOT, Platform, percentile
from invoke_latency import BODY, platform_env, publish_noop


def post(url: str, headers: dict) -> tuple[int, dict]:
    parsed = urllib.parse.urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        connection.request("POST", f"{parsed.path}?{parsed.query}", body=BODY, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


# Status reads (GET /v1/invocations/{id}) the bench made: their CPU is the bench's, not the
# calls', and is taken out of the CPU per call (`reads_cpu`).
STATUS_READS = [0]


def invocation(platform: Platform, headers: dict, request_id: str) -> dict:
    STATUS_READS[0] += 1
    parsed = urllib.parse.urlparse(platform.url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        connection.request("GET", f"/v1/invocations/{request_id}", headers=headers)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def wait_final(
    platform: Platform, headers: dict, request_id: str, timeout: float = 120, poll: float = 0.005
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = invocation(platform, headers, request_id)
        if body.get("status") in {"succeeded", "failed", "timeout", "canceled"}:
            return body
        time.sleep(poll)
    raise RuntimeError(f"invocation {request_id} did not finish within {timeout} s")


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sync_latency(url: str, headers: dict, calls: int) -> list[float]:
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        status, _body = post(url, headers)
        if status == 200:
            latencies.append(time.perf_counter() - started)
    return latencies


def start_waits(platform: Platform, url: str, headers: dict, calls: int) -> list[float]:
    waits = []
    for _ in range(calls):
        status, body = post(f"{url}?output=void", headers)
        if status != 202:
            raise RuntimeError(f"an asynchronous call was answered {status}: {body}")
        final = wait_final(platform, headers, body["request_id"])
        waits.append((moment(final["started_at"]) - moment(final["created_at"])).total_seconds())
    return waits


def throughput(platform: Platform, url: str, headers: dict, calls: int) -> dict:
    ids: list[str] = []
    lock = threading.Lock()
    per_client = -(-calls // 8)

    def client():
        mine = []
        for _ in range(per_client):
            status, body = post(f"{url}?output=void", headers)
            if status == 202:
                mine.append(body["request_id"])
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(8)]
    reads_before = STATUS_READS[0]
    cpu_before = platform.cpu_seconds()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Polled slowly: the figures are the platform's own timestamps, and the polls' web time
    # would otherwise be counted in the CPU per call.
    finals = [wait_final(platform, headers, request_id, poll=0.2) for request_id in ids]
    cpu_after = platform.cpu_seconds()
    reads = STATUS_READS[0] - reads_before
    read_cpu = reads_cpu(platform, headers, ids, reads)
    first = min(moment(f["created_at"]) for f in finals)
    last = max(moment(f["finished_at"]) for f in finals)
    span = (last - first).total_seconds()
    return {
        "calls": len(finals),
        "succeeded": sum(f["status"] == "succeeded" for f in finals),
        "span_s": span,
        "per_second": len(finals) / span if span else float("inf"),
        "cpu_ms": {
            part: max(cpu_after[part] - cpu_before.get(part, 0.0) - read_cpu.get(part, 0.0), 0)
            * 1000
            / max(len(finals), 1)
            for part in sorted(cpu_after)
        },
        "status_reads": reads,
    }


def reads_cpu(platform: Platform, headers: dict, ids: list[str], reads: int) -> dict:
    """The CPU that many status reads of finished calls cost each part of the platform."""
    before = platform.cpu_seconds()
    for n in range(reads):
        invocation(platform, headers, ids[n % len(ids)])
    after = platform.cpu_seconds()
    return {part: after[part] - before.get(part, 0.0) for part in after}


def measure(name: str, broker_url: str | None, args, root: Path) -> dict:
    env = platform_env(False)
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
        # Queues of this run's own: a Redis database or RabbitMQ virtual host is shared with
        # whatever else runs on the host, whose workers would otherwise take these calls.
        run = f"bench-{uuid.uuid4().hex[:8]}"
        env["CELERY_DEFAULT_QUEUE"] = run
        env["CATALOG_BUILD_QUEUE"] = f"{run}-builds"
        env["GATEWAY_ASYNC_QUEUE"] = f"{run}-invocations"
    with Platform(
        web_workers=args.web_workers,
        worker_concurrency=args.worker_concurrency,
        env=env,
        root=root,
    ) as platform:
        url = publish_noop(platform)
        headers = {"Authorization": f"Simple {platform.key}", "Content-Type": "application/json"}
        sync_latency(url, headers, 20)  # warm the model process and the web workers
        cpu_before = platform.cpu_seconds()
        sync = sync_latency(url, headers, args.paced)
        cpu_after = platform.cpu_seconds()
        sync_cpu = {
            part: (cpu_after[part] - cpu_before.get(part, 0.0)) * 1000 / max(len(sync), 1)
            for part in sorted(cpu_after)
        }
        waits = start_waits(platform, url, headers, args.paced)
        flow = throughput(platform, url, headers, args.calls)
    return {"broker": name, "sync": sync, "sync_cpu": sync_cpu, "waits": waits, "flow": flow}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--paced", type=int, default=50)
    parser.add_argument("--brokers", default="embedded,redis,amqp")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--compare",
        metavar="CHECKOUT",
        help="also measure another checkout's code (e.g. main), one after the other per broker",
    )
    args = parser.parse_args()
    roots = [("this", ROOT)] + ([("compared", Path(args.compare))] if args.compare else [])
    urls = {"embedded": None, "redis": args.redis, "amqp": args.amqp}
    print(
        f"{args.paced} paced and {args.calls} concurrent no-op asynchronous calls; "
        f"{args.web_workers} web workers, Celery concurrency {args.worker_concurrency}"
    )
    print(
        f"{'broker':<10} {'sync p50 ms':>11} {'start wait p50 ms':>17} {'p95 ms':>8} "
        f"{'wait/sync':>9} {'async calls/s':>13} {'succeeded':>9}"
    )
    for name, root in ((n, r) for n in args.brokers.split(",") for r in roots):
        if args.compare:
            print(f"{name} broker, code of {root[0]} checkout ({root[1]}):")
        try:
            result = measure(name, urls[name], args, root[1])
        except (RuntimeError, OSError) as error:
            print(f"{name:<10} not measured: {str(error).strip().splitlines()[-1][:200]}")
            continue
        sync_p50 = statistics.median(result["sync"]) * 1000
        wait_p50 = percentile(result["waits"], 50) * 1000
        wait_p95 = percentile(result["waits"], 95) * 1000
        flow = result["flow"]
        print(
            f"{name:<10} {sync_p50:>11.1f} {wait_p50:>17.1f} {wait_p95:>8.1f} "
            f"{wait_p50 / sync_p50:>8.1f}x {flow['per_second']:>13.1f} "
            f"{flow['succeeded']:>4}/{flow['calls']}"
        )
        cpu = flow["cpu_ms"]
        parts = ", ".join(f"{part} {ms:.2f}" for part, ms in cpu.items())
        print(
            f"{'':<10} CPU ms per async call (less the bench's {flow['status_reads']} status "
            f"reads): {parts}; total {sum(cpu.values()):.2f}"
        )
        sync_cpu = result["sync_cpu"]
        parts = ", ".join(f"{part} {ms:.2f}" for part, ms in sync_cpu.items() if ms >= 0.01)
        print(
            f"{'':<10} CPU ms per synchronous call (paced, one at a time): {parts}; "
            f"total {sum(sync_cpu.values()):.2f}"
        )


if __name__ == "__main__":
    main()
