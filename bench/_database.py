"""The database a benchmark runs on: a fresh one, on a private embedded PostgreSQL unless
DATABASE_URL is set, migrated, and dropped (with the private server) at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _platform import ROOT


@dataclass
class Database:
    admin: dict  # psycopg connection arguments for the server's maintenance database
    name: str
    server: object | None = None  # the private embedded PostgreSQL, when one was started
    var_dir: Path | None = None

    def execute(self, statement) -> None:
        import psycopg

        with psycopg.connect(**self.admin, autocommit=True) as conn:
            conn.execute(statement)

    def exists(self) -> bool:
        import psycopg

        with psycopg.connect(**self.admin, autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.name])
            return found.fetchone() is not None

    def drop(self) -> None:
        from psycopg import sql

        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
        )


def bootstrap(name: str, *, pg_settings: list[str] = (), reuse: bool = False) -> Database:
    """Start the server (a private embedded PostgreSQL unless DATABASE_URL is set), create a
    fresh database `name` on it (with `reuse`, keep the one there is, e.g. from `--keep`),
    point Django at it before any connection is opened, and migrate it."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
    os.chdir(ROOT)
    server, var_dir = None, None
    if not os.environ.get("DATABASE_URL", "").strip():
        from marketplace import embedded

        # The checkout's embedded server is shared with `make run` and `make test`, which
        # stop it when they started it; a private one (same binaries, same server settings)
        # lives exactly as long as the benchmark and never sees their data or load spikes.
        var_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        var_dir.chmod(0o755)
        os.environ["MARKETPLACE_VAR_DIR"] = str(var_dir)
        server = embedded.EmbeddedPostgres(var_dir)
        began = time.perf_counter()
        server.ensure_running()
        print(f"private embedded PostgreSQL in {var_dir}: {time.perf_counter() - began:.1f} s")
    from django.conf import settings

    default = settings.DATABASES["default"]
    admin = {
        "dbname": default["NAME"],
        "user": default.get("USER"),
        "password": default.get("PASSWORD"),
        "host": default.get("HOST"),
        "port": default.get("PORT"),
    }
    admin = {k: str(v) for k, v in admin.items() if v}
    if name == admin["dbname"]:
        raise SystemExit(f"refusing to run on the application's own database {name!r}")
    database = Database(admin, name, server, var_dir)
    from psycopg import sql

    if not (reuse and database.exists()):
        database.drop()
        database.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    default["NAME"] = name
    if pg_settings:
        options = default.setdefault("OPTIONS", {})
        extra = " ".join(f"-c {setting}" for setting in pg_settings)
        options["options"] = f"{options.get('options', '')} {extra}".strip()
        print(f"session settings: {options['options']}")

    import django

    django.setup()
    from django.core.management import call_command

    began = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"database {name}: created and migrated in {time.perf_counter() - began:.1f} s")
    return database


def finish(database: Database, keep: bool) -> None:
    from django.db import connections

    connections.close_all()
    if keep:
        print(f"kept database {database.name}")
        if database.server is not None:
            print(
                f"  psql: {database.server.url().replace('/marketplace?', f'/{database.name}?')}"
                f"\n  stop: MARKETPLACE_VAR_DIR={database.var_dir} "
                ".venv/bin/python -m marketplace.embedded stop"
            )
        return
    try:
        database.drop()
        print(f"dropped database {database.name}")
    finally:
        if database.server is not None:
            database.server.stop()
            shutil.rmtree(database.var_dir, ignore_errors=True)
            print("private embedded PostgreSQL stopped and removed")
