"""The embedded PostgreSQL: started on demand, reused, never left half-initialised."""

from __future__ import annotations

import os
import subprocess
import time

import psycopg
import pytest

from marketplace.embedded import DATABASE_NAME, EmbeddedPostgres

pytestmark = pytest.mark.slow


@pytest.fixture
def pg(server_tmp_path):
    server = EmbeddedPostgres(server_tmp_path / "var")
    yield server
    server.stop()


def _query(server: EmbeddedPostgres, sql: str, *, password: str | None = None):
    with psycopg.connect(
        host=str(server.socket_dir),
        user="postgres",
        dbname=DATABASE_NAME,
        password=server.password() if password is None else password,
    ) as c:
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


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_only_the_password_opens_it_and_its_socket_is_closed_to_others(pg):
    pg.ensure_running()
    assert _mode(pg.password_file) == 0o600
    assert pg.password_file.stat().st_uid == os.geteuid()
    assert _mode(pg.socket_dir) == 0o700
    hba = (pg.data_dir / "pg_hba.conf").read_text()
    assert "trust" not in hba.replace("nothing is trusted", "")
    assert "scram-sha-256" in hba
    with pytest.raises(psycopg.OperationalError, match="password"):
        _query(pg, "SELECT 1", password="")
    with pytest.raises(psycopg.OperationalError, match="password"):
        _query(pg, "SELECT 1", password="guessed")
    assert _query(pg, "SELECT 1") == [(1,)]
    with psycopg.connect(pg.url()) as connection:
        assert connection.execute("SELECT current_user").fetchone() == ("postgres",)
    assert pg.django_database()["PASSWORD"] == pg.password()


def test_the_password_is_made_once_and_kept_across_restarts(pg):
    pg.ensure_running()
    password = pg.password()
    pg.stop()
    pg.ensure_running()
    assert pg.password() == password
    assert _query(pg, "SELECT 1") == [(1,)]


def _initialise_the_old_way(pg: EmbeddedPostgres) -> None:
    """A data directory as versions before the password made it: trust for every local
    connection, and no password file."""
    pg.root.mkdir(parents=True)
    staging = pg.root / "data.old"
    staging.mkdir(mode=0o700)
    pg._give_to_server_user(staging)
    subprocess.run(
        [pg._bin("initdb"), "-D", str(staging), "--auth=trust", "-U", "postgres"],
        check=True,
        capture_output=True,
        **pg._run_as(),
    )
    staging.rename(pg.data_dir)
    assert not pg.password_file.exists()


def _old_query(pg: EmbeddedPostgres, sql: str):
    with psycopg.connect(host=str(pg.socket_dir), user="postgres", dbname="postgres") as c:
        cursor = c.execute(sql)
        return cursor.fetchall() if cursor.description else None


def test_a_data_directory_of_an_earlier_version_is_closed_on_its_next_start(pg):
    _initialise_the_old_way(pg)
    pg._start()
    _old_query(pg, "CREATE TABLE kept (v int)")
    _old_query(pg, "INSERT INTO kept VALUES (7)")
    pg._pg_ctl(["-m", "fast", "-w", "stop"])

    assert pg.ensure_running() is True
    assert "trust" not in (pg.data_dir / "pg_hba.conf").read_text().replace("nothing is t", "")
    with pytest.raises(psycopg.OperationalError, match="password"):
        _old_query(pg, "SELECT 1")
    with psycopg.connect(pg.url().replace(f"/{DATABASE_NAME}?", "/postgres?")) as connection:
        assert connection.execute("SELECT v FROM kept").fetchall() == [(7,)]
    assert _mode(pg.password_file) == 0o600


def test_a_server_of_an_earlier_version_still_running_is_closed_as_it_runs(pg):
    _initialise_the_old_way(pg)
    pg._start()
    pg.socket_dir.chmod(0o755)  # as earlier versions left it
    assert _old_query(pg, "SELECT 1") == [(1,)]

    assert pg.ensure_running() is False  # already running: not restarted, but closed
    assert _mode(pg.socket_dir) == 0o700
    for _ in range(50):  # the reload is a signal: the postmaster takes it a moment later
        try:
            _old_query(pg, "SELECT 1")
        except psycopg.OperationalError as refused:
            assert "password" in str(refused)
            break
        time.sleep(0.1)
    else:
        raise AssertionError("connections without the password are still accepted")
    pg.ensure_running()  # idempotent
    with psycopg.connect(pg.url().replace(f"/{DATABASE_NAME}?", "/postgres?")) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)


def test_a_socket_directory_someone_else_made_first_is_refused(pg):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a directory owned by another user")
    pg.root.mkdir(parents=True)
    pg.socket_dir.mkdir()
    os.chown(pg.socket_dir, 65534, 65534)
    from marketplace.embedded import EmbeddedPostgresError

    with pytest.raises(EmbeddedPostgresError, match="another user"):
        pg.ensure_running()


def test_url_names_the_password(server_tmp_path, monkeypatch, capsys):
    from marketplace import embedded

    monkeypatch.setenv("MARKETPLACE_VAR_DIR", str(server_tmp_path / "v3"))
    server = embedded.server()
    server.ensure_running()
    try:
        assert embedded.main(["url"]) == 0
        url = capsys.readouterr().out.strip()
        assert f"postgres:{server.password()}@" in url
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT current_database()").fetchone() == (DATABASE_NAME,)
    finally:
        server.stop()
