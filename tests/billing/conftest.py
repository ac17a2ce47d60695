from tests.gateway.conftest import async_worker, owner, runner, storage, toolbox  # noqa: F401
