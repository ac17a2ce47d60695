import shlex

from ..process import LaunchSpec
from . import ModelSpec, Prepared, Runtime


class CommandRuntime(Runtime):
    """Any executable that speaks the runner protocol itself on stdin/stdout, e.g.
    `entrypoint = ["perl", "main.pl"]`. Its stderr is its log."""

    name = "command"

    def prepare(self, spec: ModelSpec, *, log) -> Prepared:
        argv = (
            spec.entrypoint if isinstance(spec.entrypoint, list) else shlex.split(spec.entrypoint)
        )
        resolved = [
            argv[0]
            if "/" not in argv[0] and not _in_package(spec, argv[0])
            else f"{{package}}/{argv[0]}",
            *argv[1:],
        ]
        launch = LaunchSpec(
            argv=resolved,
            package_dir=spec.package_dir,
            result_channel="stdout",
            ready="immediate",
            network=spec.network,
            limits=spec.limits,
        )
        return Prepared(launch, "system", True)


def _in_package(spec: ModelSpec, name: str) -> bool:
    return (spec.package_dir / name).is_file()
