"""Runs one build: prepare the version's isolated environment, start the model once through
the execution layer's runner, and run its sample input."""

from __future__ import annotations

import logging
import threading
import time
import traceback

from execution.backends.http import forward
from execution.environments import BuildEnvironmentError
from execution.process import ModelProcess, ModelProcessError
from execution.runtimes import ModelSpec, get_runtime
from execution.sandbox import sandbox_enabled

from . import services
from .models import Build

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 300
SAMPLE_TIMEOUT_SECONDS = 300


class BuildLog:
    """Appends to the build's log in the database, batched, so the page and the API can
    follow a build live."""

    def __init__(self, build_id):
        self.build_id = build_id
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def __call__(self, line: str) -> None:
        with self._lock:
            self._pending.append(line.rstrip("\n") + "\n")
            due = time.monotonic() - self._last_flush > 0.5
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            text = "".join(self._pending)
            self._pending.clear()
            self._last_flush = time.monotonic()
        services.build_append_log(self.build_id, text)


def model_spec_for(build: Build, package_dir) -> ModelSpec:
    manifest = build.manifest
    requirements = ""
    if manifest.get("requirements"):
        requirements = (package_dir / manifest["requirements"]).read_text()
    return ModelSpec(
        runtime=build.runtime,
        entrypoint=manifest["entrypoint"],
        load=manifest.get("load"),
        package_dir=package_dir,
        requirements=requirements,
        network=bool(manifest.get("network", False)),
        owner=str(build.model.owner_id),
    )


def _check_remote_model(build: Build, log: BuildLog) -> None:
    """A model on an inference server has nothing to install: its build checks the server
    answers the sample input."""
    config = build.manifest["http"]
    log(f"Model served by {config['url']} ({config['protocol']})")
    sample_output, content_type = None, ""
    if build.sample_input is not None:
        result = forward(config, "json", build.sample_input, SAMPLE_TIMEOUT_SECONDS)
        if result.status != "succeeded":
            raise ModelProcessError(f"the sample input failed: {result.error['message']}")
        sample_output, content_type = result.result, result.content_type
        log(f"Sample input answered in {result.duration * 1000:.1f} ms")
    log("Build succeeded")
    log.flush()
    services.build_succeed(
        build, environment_key="", sample_output=sample_output, content_type=content_type
    )


def execute_build(build_id) -> None:
    build = services.build_claim(build_id)
    if build is None:
        return
    log = BuildLog(build.pk)
    stop_heartbeat = threading.Event()

    def heartbeat():
        while not stop_heartbeat.wait(10):
            services.build_heartbeat(build.pk)
            log.flush()

    threading.Thread(target=heartbeat, daemon=True, name="build-heartbeat").start()
    process = None
    started = time.monotonic()
    try:
        if build.runtime == "http":
            _check_remote_model(build, log)
            return
        package_dir = services.package_dir(build)
        spec = model_spec_for(build, package_dir)
        runtime = get_runtime(spec.runtime)
        log(f"Building {build.model.full_name} ({spec.runtime} runtime)")
        prepared = runtime.prepare(spec, log=log)
        sandbox = sandbox_enabled()
        log(
            "Starting the model "
            + ("in the sandbox" if sandbox else "WITHOUT a sandbox (the operator set SANDBOX=off)")
        )
        process = ModelProcess(prepared.launch, sandbox=sandbox)
        load_started = time.monotonic()
        process.start(timeout=START_TIMEOUT_SECONDS)
        log(f"Model loaded in {time.monotonic() - load_started:.2f}s")
        sample_output, content_type = None, ""
        if build.sample_input is not None:
            kind = "text" if isinstance(build.sample_input, str) else "json"
            result = process.call(kind, build.sample_input, timeout=SAMPLE_TIMEOUT_SECONDS)
            if result.stdout:
                log("Model output:\n" + result.stdout.rstrip())
            if not result.ok:
                error = result.error
                log(error.get("stacktrace") or "")
                raise ModelProcessError(
                    f"the sample input failed: {error.get('error_type')}: {error.get('message')}"
                )
            sample_output, content_type = result.result, result.content_type
            log(f"Sample input ran in {result.duration * 1000:.1f} ms")
        log(f"Build succeeded in {time.monotonic() - started:.1f}s")
        log.flush()
        services.build_succeed(
            build,
            environment_key=prepared.environment_key,
            sample_output=sample_output,
            content_type=content_type,
        )
    except (ModelProcessError, BuildEnvironmentError, RuntimeError, ValueError, OSError) as exc:
        output = getattr(exc, "output", "")
        if output:
            log(output.rstrip())
        message = getattr(exc, "message", None) or str(exc)
        log(f"Build failed: {message}")
        log.flush()
        services.build_fail(build, error=message)
    except Exception as exc:
        logger.exception("build %s crashed", build.pk)
        log("Build failed: internal error\n" + traceback.format_exc())
        log.flush()
        services.build_fail(build, error=f"internal error: {exc}")
    finally:
        stop_heartbeat.set()
        if process is not None:
            process.stop()
