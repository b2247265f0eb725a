"""Fixtures for the store tests: a fresh store file, and making a file read-only."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .helpers import new_session, open_store


@pytest.fixture
def db(tmp_path):
    return tmp_path / "support.db"


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
