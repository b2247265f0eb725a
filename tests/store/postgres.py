"""A throwaway PostgreSQL server for the tests and the store benchmark.

`initdb` into a new temporary folder, `pg_ctl start` on 127.0.0.1 and a free port, password
authentication (scram-sha-256) for TCP, `stop()` removes it all. The server binaries are found
on PATH (`initdb`), else in Debian's /usr/lib/postgresql/VERSION/bin. PostgreSQL refuses to run
as root: run as root, the server runs as the `postgres` system user (Debian's postgresql package
creates it), and the temporary folder is handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SUPERUSER, PASSWORD = "dialogue", "a password for the test server"
SERVER_USER = "postgres"  # who runs the server when this process is root
CURRENT: PostgresServer | None = None  # the test run's server, once started


def bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, else the newest Debian /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
                      if p.parts[-3].isdigit() else 0)
    return versions[-1].parent if versions else None


def unavailable() -> str | None:
    """Why no server can be started here (None: one can)."""
    import importlib.util

    if importlib.util.find_spec("psycopg") is None or importlib.util.find_spec("psycopg_pool") is None:
        return "psycopg or psycopg-pool is not installed (pip install 'dialogue[postgres]')"
    if bin_dir() is None:
        return ("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin); "
                "install it (Debian: apt-get install postgresql) to run the PostgreSQL store tests")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return (f"running as root without a {SERVER_USER!r} user: PostgreSQL refuses to run as root; "
                    f"create one (useradd --system {SERVER_USER}) or run the tests as another user")
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One PostgreSQL server in a temporary folder; `url(database)` names a database on it.

    `fsync=False` (the tests) skips flushing to disk: faster, and nothing the tests check
    depends on surviving a power cut; the benchmark keeps it on.
    """

    def __init__(self, *, fsync: bool = False) -> None:
        self.bin = bin_dir()
        self.fsync = fsync
        self.folder = Path(tempfile.mkdtemp(prefix="dialogue-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        self._user = pwd.getpwnam(SERVER_USER) if os.geteuid() == 0 else None
        self._databases = 0

    # -- running commands as the server's user ------------------------------------------------

    def _run(self, *command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        options = {}
        if self._user is not None:
            options = dict(user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[])
        return subprocess.run([str(self.bin / command[0]), *command[1:]], cwd=self.folder, capture_output=True,
                              text=True, timeout=timeout, check=check, **options)

    def start(self) -> PostgresServer:
        if self._user is not None:
            os.chown(self.folder, self._user.pw_uid, self._user.pw_gid)
        password = self.folder / "password"
        password.write_text(PASSWORD + "\n")
        if self._user is not None:
            os.chown(password, self._user.pw_uid, self._user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(password), "-E", "UTF8",
                  "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-instructions")
        settings = {"listen_addresses": "'127.0.0.1'", "port": str(self.port),
                    "unix_socket_directories": f"'{self.folder}'", "fsync": "on" if self.fsync else "off",
                    "max_connections": "200", "shared_buffers": "32MB", "log_min_messages": "warning"}
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("".join(f"{key} = {value}\n" for key, value in settings.items()))
        self._ctl("start")
        return self

    def _ctl(self, action: str, *options: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *options, action)

    def restart(self) -> None:
        """Stop (fast: open connections are cut) and start again on the same port."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        if self.data.exists() and (self.data / "postmaster.pid").exists():
            self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def start_again(self) -> None:
        """Start a stopped (or killed) server again: it recovers from its WAL first."""
        self._ctl("start")

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash); `start_again()` recovers it."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)

    # -- databases -----------------------------------------------------------------------

    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str | None = PASSWORD) -> str:
        auth = user if password is None else f"{user}:{_quoted(password)}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql as the superuser (over the unix socket); its output."""
        out = self._run("psql", "-X", "-q", "-A", "-t", "-h", str(self.folder), "-p", str(self.port),
                        "-U", SUPERUSER, "-d", database, "-v", "ON_ERROR_STOP=1", "-c", statement)
        return out.stdout.strip()

    def create_database(self, prefix: str = "store") -> str:
        """A new empty database; its URL."""
        self._databases += 1
        name = f"{prefix}_{self._databases}"
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def dump(self, database: str) -> str:
        """Everything the database holds, as pg_dump writes it."""
        return self._run("pg_dump", "-h", str(self.folder), "-p", str(self.port), "-U", SUPERUSER, database).stdout


def _quoted(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
