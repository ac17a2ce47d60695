from __future__ import annotations

from marketplace.core.health import DEGRADED, DOWN, OK, ComponentHealth

from ..runner_service import RunnerClient, RunnerUnavailable
from . import (
    ExecutionBackend,
    ExecutionRequest,
    ExecutionResult,
    ExecutionUnavailable,
    result_from_runner,
)


class LocalBackend(ExecutionBackend):
    """Calls run on this host's runner service."""

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        try:
            answer = RunnerClient().call(
                build_id=request.build_id,
                content_type=request.content_type,
                data=request.data,
                timeout=request.timeout,
                request_id=request.request_id,
                credential=request.credential,
            )
        except RunnerUnavailable as exc:
            raise ExecutionUnavailable(str(exc)) from exc
        return result_from_runner(answer)

    def cancel(self, request_id: str) -> bool:
        try:
            return RunnerClient().cancel(request_id)
        except RunnerUnavailable:
            return False

    def health(self) -> ComponentHealth:
        try:
            stats = RunnerClient().health()
        except RunnerUnavailable as exc:
            return ComponentHealth(DOWN, "local", str(exc), required=False)
        message = (
            f"{stats['processes']} warm processes ({stats['busy']} busy) of "
            f"{stats['max_processes']}; sandbox {'on' if stats['sandbox'] else 'off'}"
        )
        return ComponentHealth(OK if stats["sandbox"] else DEGRADED, "local", message)
