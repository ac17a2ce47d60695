"""The embedded PostgreSQL: started on demand, reused, never left half-initialised."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from marketplace.embedded import DATABASE_NAME, EmbeddedPostgres

pytestmark = pytest.mark.slow


@pytest.fixture
def pg(server_tmp_path):
    server = EmbeddedPostgres(server_tmp_path / "var")
    yield server
    server.stop()


def _query(server: EmbeddedPostgres, sql: str):
    with psycopg.connect(host=str(server.socket_dir), user="postgres", dbname=DATABASE_NAME) as c:
        cursor = c.execute(sql)
        return cursor.fetchall() if cursor.description else None


def test_start_reuse_stop_and_keep_data(pg):
    assert pg.ensure_running() is True
    assert pg.ensure_running() is False  # a second caller reuses it
    _query(pg, "CREATE TABLE kept (v int)")
    _query(pg, "INSERT INTO kept VALUES (42)")
    assert pg.stop() is True
    assert not pg.is_running()
    assert pg.stop() is False
    assert pg.ensure_running() is True
    assert _query(pg, "SELECT v FROM kept") == [(42,)]
    extensions = {row[0] for row in _query(pg, "SELECT name FROM pg_available_extensions")}
    assert {"pg_trgm", "unaccent", "vector"} <= extensions


def test_listens_on_no_tcp_port(pg):
    pg.ensure_running()
    assert _query(pg, "SHOW listen_addresses") == [("",)]


def test_interrupted_initialisation_is_redone(pg):
    pg.root.mkdir(parents=True)
    leftover = pg.root / "data.init-12345"
    leftover.mkdir()
    (leftover / "PG_VERSION").write_text("18")
    pg.data_dir.mkdir()  # a data directory without PG_VERSION: never initialised
    assert pg.ensure_running() is True
    assert not leftover.exists()
    assert (pg.data_dir / "PG_VERSION").exists()


def test_stale_pid_file_after_a_crash_does_not_block_a_restart(pg):
    pg.ensure_running()
    pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    subprocess.run(["kill", "-9", str(pid)], check=True)
    for _ in range(50):
        if not pg.is_running():
            break
        import time

        time.sleep(0.1)
    assert pg.ensure_running() is True
    assert _query(pg, "SELECT 1") == [(1,)]


def test_run_wrapper_stops_only_what_it_started(server_tmp_path, monkeypatch):
    from marketplace import embedded

    monkeypatch.setenv("MARKETPLACE_VAR_DIR", str(server_tmp_path / "v2"))
    (server_tmp_path / "v2").mkdir()
    assert embedded.main(["run", "--", "true"]) == 0
    server = embedded.server()
    assert not server.is_running()
    server.ensure_running()
    try:
        assert embedded.main(["run", "--", "true"]) == 0
        assert server.is_running()
    finally:
        server.stop()
