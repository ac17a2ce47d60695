import shutil
from pathlib import Path

from ..process import LaunchSpec
from . import ModelSpec, Prepared, Runtime


class NodeRuntime(Runtime):
    """`entrypoint = "index.js"` exporting apply(input, state) and optionally load()."""

    name = "node"

    def missing(self) -> str | None:
        if shutil.which("node") is None:
            return "Node.js is not installed on this host"
        return None

    def prepare(self, spec: ModelSpec, *, log) -> Prepared:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError(self.missing())
        node_path = Path(node).resolve()
        log(f"Using Node.js at {node_path}")
        launch = LaunchSpec(
            argv=[str(node_path), "{shims}/node_shim.js", str(spec.entrypoint)],
            package_dir=spec.package_dir,
            read_only_paths=[node_path.parent.parent],
            network=spec.network,
            limits=spec.limits,
        )
        return Prepared(launch, "node-system", True)
