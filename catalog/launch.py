"""How the runner starts the model of a build: the function the `run_runner` command gives
the runner service (execution never imports the catalogue itself)."""

from __future__ import annotations

from execution.process import LaunchSpec
from execution.runtimes import get_runtime

from . import builder, services
from .models import Build, BuildStatus


def launch_spec_for_build(build_id: str) -> LaunchSpec:
    """How to start the model of one successful build (its environment already exists)."""
    build = (
        Build.objects.select_related("model")  # model_spec_for reads the model's owner
        .filter(pk=build_id, status=BuildStatus.SUCCEEDED)
        .first()
    )
    if build is None:
        raise LookupError(f"no successful build {build_id}")
    spec = builder.model_spec_for(build, services.package_dir(build))
    return get_runtime(spec.runtime).prepare(spec, log=lambda _line: None).launch
