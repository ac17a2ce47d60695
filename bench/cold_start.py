"""Cold start: the first call of a just-published version (no warm process exists for it),
as the HTTP client sees it (POST /v1/algo/demo/NAME/VERSION), against the same model's
`import` + `apply(...)` run bare in a fresh process in the same sandbox, measured in the same
run. The warm call (the same version again) is measured too, for context.

    .venv/bin/python bench/cold_start.py [--runs 10] [--warm 5]

Each run publishes a new version whose predict.py differs by a comment (the same package
uploaded again would be the same build, already warm), checks that its first call was a
cold start and the next ones were not (the invocation's `cold_start`), then calls it warm.

The baseline runs in one long-lived Django shell on the platform's own database and
settings: for each run's build it takes the runner's launch spec (`catalog.launch:
launch_spec_for_build`) and the command the runner would run (`execution.process:
launch_command`: the same bubblewrap arguments, interpreter and environment), with the
model's interpreter told to `-c "import predict; predict.apply(...)"` instead of starting
the shim, and the same rlimits; it times that process from fork to exit. The model's own
cgroup is not made for the baseline: making it is part of what the platform adds.

"Each run's pair" is the difference between a run's first call and the bare run just before
it, the steadier figure on a busy host; "of the percentiles" subtracts the percentiles.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _platform import ROOT, Platform, get_json, percentile, publish

MODEL_TOML = """
name = "{name}"
title = "Benchmark cold start"
runtime = "python"
entrypoint = "predict.py:apply"
"""
PREDICT = "# run {marker}\ndef apply(data):\n    return {{'echo': data}}\n"
INPUT = {"text": "hi"}

# The baseline: a Django shell reading one build id per line and answering one JSON line
# with how long the bare run of that build's model took, in the sandbox the runner uses.
BARE = """
import json, os, shutil, subprocess, sys, tempfile, time
from catalog.launch import launch_spec_for_build
from execution.process import launch_command
from execution.sandbox import apply_limits, require_bubblewrap, sandbox_enabled, sandbox_owner
sandbox = sandbox_enabled()
if sandbox:
    require_bubblewrap()  # found and probed once, before any timing
code = "import predict; predict.apply(" + repr(json.loads(INPUT)) + ")"
print(json.dumps({"ready": True, "sandbox": sandbox}), flush=True)
for line in sys.stdin:
    spec = launch_spec_for_build(line.strip())
    tmp = tempfile.mkdtemp(prefix="bench-bare-")
    os.chmod(tmp, 0o700)
    if sandbox_owner() is not None:
        os.chown(tmp, *sandbox_owner())
    command = launch_command(spec, sandbox=sandbox, tmp_dir=tmp, argv=[spec.argv[0], "-c", code])
    def prepare(limits=spec.limits, inner=command.preexec):
        apply_limits(limits)
        if inner is not None:
            inner()
    started = time.perf_counter()
    done = subprocess.run(command.argv, env=command.env, cwd=command.cwd, preexec_fn=prepare,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"seconds": elapsed, "code": done.returncode, "stderr": done.stderr[-2000:]}),
          flush=True)
"""


class BareRunner:
    """The baseline's Django shell, on the platform's database and settings."""

    def __init__(self, platform: Platform):
        env = {
            k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}
        }
        env["MARKETPLACE_VAR_DIR"] = str(platform.directory / "var")
        env["LOG_LEVEL"] = "WARNING"
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "shell",
                "--no-imports",
                "-c",
                f"INPUT = {json.dumps(json.dumps(INPUT))}\n{BARE}",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.sandbox = self._answer()["sandbox"]

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the baseline's shell stopped (exit {self.process.wait()})")
        return json.loads(line)

    def run(self, build_id: str) -> float:
        self.process.stdin.write(build_id + "\n")
        self.process.stdin.flush()
        answer = self._answer()
        if answer["code"] != 0:
            raise SystemExit(f"the bare run failed ({answer['code']}):\n{answer['stderr']}")
        return answer["seconds"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


def call(platform: Platform, url: str) -> tuple[float, str]:
    """One synchronous call as the client sees it: seconds, and the request id."""
    request = urllib.request.Request(
        url,
        data=json.dumps(INPUT).encode(),
        headers={"Authorization": f"Simple {platform.key}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        body = json.loads(response.read())
    elapsed = time.perf_counter() - started
    assert body.get("result") == {"echo": INPUT}, body
    return elapsed, body["request_id"]


def invocation(platform: Platform, request_id: str) -> dict:
    status, body = get_json(
        f"{platform.url}/v1/invocations/{request_id}",
        headers={"Authorization": f"Simple {platform.key}"},
    )
    assert status == 200, body
    return body


def newest_version(platform: Platform, name: str) -> tuple[str, str]:
    """The newest version of demo/NAME: its label and its build's id."""
    status, body = get_json(
        f"{platform.url}/v1/models/demo/{name}/versions",
        headers={"Authorization": f"Simple {platform.key}"},
    )
    assert status == 200, body
    newest = body["results"][0] if isinstance(body, dict) else body[0]
    return newest["version"], str(newest["build"])


def row(label: str, values: list[float]) -> str:
    return (
        f"{label:34} p50 {percentile(values, 50) * 1000:8.1f} ms   "
        f"p90 {percentile(values, 90) * 1000:8.1f} ms   "
        f"min {min(values) * 1000:8.1f}   max {max(values) * 1000:8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10, help="versions published, one each")
    parser.add_argument("--warm", type=int, default=5, help="warm calls after each first call")
    args = parser.parse_args()
    name = f"cold-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp()) / name
    folder.mkdir()
    (folder / "model.toml").write_text(MODEL_TOML.format(name=name))
    env = {
        "RATE_LIMIT_PER_KEY_PER_MINUTE": "0",
        "TEAM_RATE_LIMIT_PER_MINUTE": "0",
        "TEAM_CONCURRENCY_LIMIT": "0",
        "LOG_LEVEL": "WARNING",
    }
    cold, warm, bare, cold_server, warm_server = [], [], [], [], []
    with Platform(env=env) as platform:
        bare_runner = BareRunner(platform)
        try:
            for run in range(args.runs):
                (folder / "predict.py").write_text(PREDICT.format(marker=uuid.uuid4().hex))
                publish(platform, folder)
                version, build_id = newest_version(platform, name)
                url = f"{platform.url}/v1/algo/demo/{name}/{version}"
                bare.append(bare_runner.run(build_id))
                seconds, request_id = call(platform, url)
                first = invocation(platform, request_id)
                assert first["cold_start"], f"run {run}: the first call was not a cold start"
                cold.append(seconds)
                cold_server.append(first["duration"])
                for _ in range(args.warm):
                    seconds, request_id = call(platform, url)
                    again = invocation(platform, request_id)
                    assert not again["cold_start"], f"run {run}: a warm call started a process"
                    warm.append(seconds)
                    warm_server.append(again["duration"])
        finally:
            bare_runner.close()
    print(
        f"runs: {args.runs} (a new version each: its first call starts its process), "
        f"{args.warm} warm calls after each; sandbox {'on' if bare_runner.sandbox else 'OFF'}"
    )
    print(row("first call (cold), client", cold))
    print(row("  invocation's own duration", cold_server))
    print(row("warm call, client", warm))
    print(row("  invocation's own duration", warm_server))
    print(row("bare import+apply, same sandbox", bare))
    above = [c - b for c, b in zip(cold, bare, strict=True)]
    print(
        f"cold above bare, each run's pair: p50 {percentile(above, 50) * 1000:.1f} ms, "
        f"p90 {percentile(above, 90) * 1000:.1f} ms"
    )
    print(
        f"cold above bare, of the percentiles: "
        f"p50 {(percentile(cold, 50) - percentile(bare, 50)) * 1000:.1f} ms, "
        f"p90 {(percentile(cold, 90) - percentile(bare, 90)) * 1000:.1f} ms"
    )
    print(
        f"cold above warm: p50 {(percentile(cold, 50) - percentile(warm, 50)) * 1000:.1f} ms; "
        f"ratios cold/bare p50 {percentile(cold, 50) / percentile(bare, 50):.2f}x, "
        f"p90 {percentile(cold, 90) / percentile(bare, 90):.2f}x"
    )


if __name__ == "__main__":
    main()
