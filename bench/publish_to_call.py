"""How long from `marketplace publish` of a model with no extra requirements to its first
successful call, against the same model's code run bare (a fresh Python process importing
it and calling apply) measured in the same run.

    .venv/bin/python bench/publish_to_call.py [--runs 5]

It also says where the time went, from the build's own timestamps (created, started,
finished; same host, same clock): the CLI's start and the upload until the build exists,
the build waiting for the prefork worker, the build itself (its environment, the model's
start, its sample call), the CLI after the build (its next poll, the version's
publication, its exit), and the first call (a cold start: the runner starts the new
version's process).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _platform import Platform, get_json, publish

MODEL_TOML = """
name = "{name}"
title = "Benchmark echo"
runtime = "python"
entrypoint = "predict.py:apply"
[io]
sample_input = {{text = "hello"}}
"""
PREDICT = "def apply(data):\n    return {'echo': data}\n"


def _folder(name: str) -> Path:
    folder = Path(tempfile.mkdtemp()) / name
    folder.mkdir()
    (folder / "model.toml").write_text(MODEL_TOML.format(name=name))
    (folder / "predict.py").write_text(PREDICT)
    return folder


def _bare(folder: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import predict; predict.apply({'text': 'hello'})"],
        cwd=folder,
        check=True,
    )
    return time.perf_counter() - started


def _moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _publish_and_call(platform: Platform, folder: Path, name: str) -> dict:
    wall_started = time.time()
    started = time.perf_counter()
    publish(platform, folder)
    published = time.perf_counter()
    request = urllib.request.Request(
        f"{platform.url}/v1/algo/demo/{name}",
        data=json.dumps({"text": "hi"}).encode(),
        headers={"Authorization": f"Simple {platform.key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        body = json.loads(response.read())
    assert body["result"] == {"echo": {"text": "hi"}}, body
    total = time.perf_counter() - started
    _status, builds = get_json(
        f"{platform.url}/v1/models/demo/{name}/builds",
        headers={"Authorization": f"Simple {platform.key}"},
    )
    build = builds["results"][0]
    created, begun, ended = (_moment(build[k]) for k in ("created_at", "started_at", "finished_at"))
    publish_wall = published - started
    return {
        "publish": publish_wall,
        "total": total,
        "cli start, upload": created - wall_started,
        "queued": begun - created,
        "build": ended - begun,
        "cli after build": wall_started + publish_wall - ended,
        "first call": total - publish_wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # As `make run` starts it: with one prefork slot, a build waited behind the search
    # embedding that the model's creation queues just before it (seconds on a busy host).
    with Platform(web_workers=3, worker_concurrency=2) as platform:
        bare_times, runs = [], []
        for _ in range(args.runs):
            name = f"bench-{uuid.uuid4().hex[:8]}"
            folder = _folder(name)
            bare_times.append(_bare(folder))
            runs.append(_publish_and_call(platform, folder, name))
    publish_times = [run["publish"] for run in runs]
    total_times = [run["total"] for run in runs]
    bare = statistics.median(bare_times)
    total = statistics.median(total_times)
    print(f"runs: {args.runs}; 3 web workers, prefork worker concurrency 2 (make run's)")
    print(f"publish (upload, build, version)   median {statistics.median(publish_times):.2f} s")
    print(
        f"publish to first successful call   median {total:.2f} s "
        f"(min {min(total_times):.2f}, max {max(total_times):.2f})"
    )
    print(f"baseline: the same code run bare   median {bare:.3f} s")
    print(f"ratio publish-to-call / bare run:  {total / bare:.1f}x")
    print("where it went (medians):")
    for part in ("cli start, upload", "queued", "build", "cli after build", "first call"):
        print(f"  {part:<17} {statistics.median(run[part] for run in runs) * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
