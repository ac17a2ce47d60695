"""What lending a model the platform's API costs its cold start: the same no-op python model
started (to its ready handshake) and stopped with and without its door
(`ModelProcess(api_access=...)`: the door's socket and thread on the host, the api relay
forked inside the sandbox, two more bind mounts), interleaved in one run so the host's load
weighs on both alike.

    DATABASE_URL=... .venv/bin/python bench/api_door_start.py [--runs 20]

Prints p50 and min of each and their ratio. Needs a working bubblewrap."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

import django  # noqa: E402

django.setup()

from execution.process import ModelProcess  # noqa: E402
from execution.runtimes import ModelSpec, get_runtime  # noqa: E402
from execution.sandbox import require_bubblewrap  # noqa: E402


def spec_for(folder: Path):
    folder.chmod(0o755)  # the sandbox's user reads it when the platform is root
    (folder / "predict.py").write_text("def apply(data):\n    return data\n")
    spec = ModelSpec(runtime="python", entrypoint="predict.py:apply", package_dir=folder)
    return get_runtime("python").prepare(spec, log=lambda _line: None).launch


def start_once(spec, *, api_access: bool) -> float:
    process = ModelProcess(spec, sandbox=True, api_access=api_access)
    started = time.perf_counter()
    process.start(timeout=120)
    elapsed = time.perf_counter() - started
    assert process.call("json", {"x": 1}, timeout=30).result == {"x": 1}
    process.stop()
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    require_bubblewrap()
    with tempfile.TemporaryDirectory(prefix="bench-door-") as folder:
        spec = spec_for(Path(folder))
        start_once(spec, api_access=False)  # warm the page cache and the probe
        without, with_door = [], []
        for _ in range(args.runs):
            without.append(start_once(spec, api_access=False))
            with_door.append(start_once(spec, api_access=True))
    for name, values in (("without the door", without), ("with the door", with_door)):
        print(f"{name:>18}: p50 {statistics.median(values):7.1f} ms  min {min(values):7.1f} ms")
    print(
        f"{'ratio':>18}: p50 {statistics.median(with_door) / statistics.median(without):.2f}x"
        f"  min {min(with_door) / min(without):.2f}x"
    )


if __name__ == "__main__":
    main()
