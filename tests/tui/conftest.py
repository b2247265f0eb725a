"""The TUI driven by Pilot on the scripted backend, at the smallest size it supports."""

from __future__ import annotations

import shutil
import sys
import types
from dataclasses import dataclass, field

import pytest

from dialogue.backends.scripted import ScriptedBackend

from ..conftest import ROOT

SIZE = (80, 24)
BLACKSMITH = ROOT / "dialogue" / "examples" / "policies" / "blacksmith.py"


def blacksmith_app(tmp_path, answers=(), *, strict=True, **options):
    """The app on the blacksmith policy, with its tests file (and catalog copy) under tmp_path;
    `strict=False` lets the script answer what no constrained model could."""
    from dialogue.tui import make_app

    options.setdefault("tests_path", tmp_path / "blacksmith.tests.toml")
    app = make_app(BLACKSMITH, backend=ScriptedBackend(list(answers), strict=strict), **options)
    app.mask_latency = True
    return app


@pytest.fixture
def catalog_copy(tmp_path):
    """A copy of the blacksmith catalog that a test may edit and save."""
    path = tmp_path / "blacksmith.toml"
    shutil.copy(ROOT / "dialogue" / "examples" / "catalogs" / "blacksmith.toml", path)
    return path


async def settle(pilot) -> None:
    """Wait until every worker is done and the screen has caught up."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


@dataclass
class Result:
    name: str
    passed: bool
    mismatch: str = ""
    turns: list = field(default_factory=list)


@dataclass
class Run:
    results: list
    coverage: str = "responses 2/17 (12%); paths 2/30"

    @property
    def passed(self):
        return sum(r.passed for r in self.results)

    @property
    def failed(self):
        return len(self.results) - self.passed


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    """A dialogue.testing with two cases, one failing; records every call."""
    calls = []
    outcomes = {
        "greets": Result("greets", True, turns=[{"user": "hello", "expected": "GREETING", "got": "GREETING"}]),
        "buys a shield": Result("buys a shield", False, "turn 1: expected OFFER(item=shield, price=30), "
                                "got TOO_POOR(item=shield, price=30)",
                                [{"user": "a shield", "expected": "OFFER(item=shield, price=30)",
                                  "got": "TOO_POOR(item=shield, price=30)", "passed": False}]),
    }

    def load_tests(path):
        return [types.SimpleNamespace(name=name) for name in outcomes]

    def run_tests(paths, *, backend=None, mode="prompted", k=None, record=False, coverage=False,
                  progress=None, replay=None, **rest):
        calls.append({"paths": paths, "k": k, "record": record, "mode": mode, "backend": backend,
                      "replay": replay})
        results = [r for name, r in outcomes.items() if k is None or k in name]
        for result in results:
            if progress:
                progress(result)
        return Run(results)

    from dialogue.testing import TestFile

    module = types.ModuleType("dialogue.testing")
    module.load_tests, module.run_tests, module.TestFile = load_tests, run_tests, TestFile
    monkeypatch.setitem(sys.modules, "dialogue.testing", module)
    (tmp_path / "blacksmith.tests.toml").write_text("# cases\n")
    return calls
