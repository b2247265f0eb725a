"""Fixtures for the store tests: a fresh store on each backend (an SQLite file, a database on a
throwaway PostgreSQL server), and making a file read-only.

Every test that takes `db` runs on both backends; a test about SQLite files only is marked
`@sqlite_only` (helpers.py). Where PostgreSQL is not installed, its half of the suite is
skipped with the reason (tests/store/postgres.py says how it is found).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from . import postgres
from .helpers import new_session, open_store

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the whole test run, stopped (and its folder removed) at the end."""
    reason = postgres.unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = postgres.PostgresServer().start()
    postgres.CURRENT = server
    yield server
    postgres.CURRENT = None
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def db(backend, tmp_path, request):
    """Where a new store goes: a file path (SQLite), or the URL of a new empty database (PostgreSQL)."""
    if backend == "sqlite":
        return tmp_path / "support.db"
    return request.getfixturevalue("postgres_server").create_database()


@pytest.fixture
def store(db):
    """An open store with versions saved and a session 's' started."""
    store = open_store(db)
    new_session(store, "s")
    yield store
    store.close()


@pytest.fixture
def make_readonly():
    """Make a file read-only for this process: chmod, or `chattr +i` when running as root."""
    made = []
    root = os.geteuid() == 0

    def make(path):
        if not root:
            path.chmod(0o444)
        elif not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)],
                                                          capture_output=True).returncode != 0:
            pytest.skip("running as root where `chattr +i` is not available: no way to make a file read-only")
        made.append(path)

    yield make
    for path in made:
        if root:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o644)
