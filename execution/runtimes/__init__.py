"""Runtimes: how a model of each kind is prepared (its environment) and started (its
LaunchSpec). One small class per runtime, added to the `runtimes` registry in
ExecutionConfig.ready(); adding a runtime is one module and one line there."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from marketplace.core.registry import Registry

from ..environments import Log, PythonEnvironment, ensure_python_environment
from ..process import LaunchSpec
from ..sandbox import ResourceLimits


@dataclass(frozen=True)
class ModelSpec:
    """What the execution layer needs to know about one built model version."""

    runtime: str
    entrypoint: str | list[str]
    package_dir: Path
    load: str | None = None
    requirements: str = ""
    network: bool = False
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    # Whose environment this is when it cannot be shared (see environments.py).
    owner: str = ""


@dataclass(frozen=True)
class Prepared:
    """A model ready to start: its launch spec and the environment key it runs in."""

    launch: LaunchSpec
    environment_key: str
    environment_reused: bool


class Runtime:
    name: str = ""
    # Requirements every model of this runtime needs, on top of its own.
    base_requirements: tuple[str, ...] = ()

    def prepare(self, spec: ModelSpec, *, log: Log) -> Prepared:
        raise NotImplementedError

    def missing(self) -> str | None:
        """What this host lacks to run models of this runtime (None: nothing)."""
        return None


class PythonBased(Runtime):
    def environment(self, spec: ModelSpec, *, log: Log) -> PythonEnvironment:
        requirements = "\n".join([*self.base_requirements, spec.requirements])
        return ensure_python_environment(requirements, owner=spec.owner, log=log)

    def prepare(self, spec: ModelSpec, *, log: Log) -> Prepared:
        env = self.environment(spec, log=log)
        launch = LaunchSpec(
            argv=[str(env.python), *self.arguments(spec)],
            package_dir=spec.package_dir,
            env=self.extra_env(spec),
            read_only_paths=env.read_only_paths(),
            network=spec.network,
            limits=spec.limits,
            **self.protocol(),
        )
        return Prepared(launch, env.key, env.reused)

    def arguments(self, spec: ModelSpec) -> list[str]:
        raise NotImplementedError

    def extra_env(self, spec: ModelSpec) -> dict[str, str]:
        return {}

    def protocol(self) -> dict:
        # The python shim serves the API relay in a thread of the model's own interpreter.
        return {"result_channel": "fd", "ready": "handshake", "hosts_api_relay": True}


runtimes: Registry[Runtime] = Registry("runtime")


def get_runtime(name: str) -> Runtime:
    try:
        return runtimes.get(name)
    except LookupError:
        raise ValueError(f"unknown runtime {name!r}") from None


def runtime_names() -> list[str]:
    return sorted(runtimes.names())
