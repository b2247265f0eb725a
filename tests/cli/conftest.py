"""Helpers for the command-line tests: run `dialogue` as a user does, in a folder of one's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import FIXTURES, ROOT

SHOP_TESTS = '''\
[[case]]
name = "greets"
[[case.turn]]
user = "hello"
reply = "GREETING"
'''


def dialogue(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m dialogue ARGS` in `cwd`, with this checkout's package first on the path."""
    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environ.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run([sys.executable, "-m", "dialogue", *args], capture_output=True, text=True, cwd=cwd,
                          env=environ)


@pytest.fixture
def shop_folder(tmp_path: Path) -> Path:
    """A folder holding the shop policy, its catalog and a tests file for it."""
    folder = tmp_path / "shop"
    folder.mkdir()
    shutil.copy(FIXTURES / "policies" / "shop.py", folder)
    shutil.copy(FIXTURES / "policies" / "shop.toml", folder)
    (folder / "shop.tests.toml").write_text(SHOP_TESTS, encoding="utf-8")
    return folder
