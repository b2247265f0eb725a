"""The top-level tui/ folder installs as dialogue.tui, with its stylesheet."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.tui


def test_every_package_is_listed_and_tui_maps_to_dialogue_tui():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dialogue").rglob("__init__.py")}
    data = {".".join(p.relative_to(ROOT).parts) for p in (ROOT / "dialogue" / "examples").rglob("*")
            if p.is_dir() and p.name != "__pycache__"}  # folders of example files, shipped as data
    assert found | data | {"dialogue.tui"} == set(setuptools["packages"]), "list new packages in pyproject.toml"
    assert setuptools["package-dir"] == {"dialogue.tui": "tui"}
    assert "*.tcss" in setuptools["package-data"]["dialogue.tui"]
    assert (ROOT / "tui" / "app.tcss").is_file()


def test_dialogue_tui_imports_from_outside_the_repository(tmp_path):
    out = subprocess.run([sys.executable, "-c", "import dialogue.tui as t; print(t.__file__); import tui"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip().endswith("tui/__init__.py"), out.stderr
    assert "No module named 'tui'" in out.stderr  # no top-level package named tui
