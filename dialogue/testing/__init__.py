"""Conversation tests: TOML cases beside a policy, run by `dialogue test` and by pytest.

A tests file (`policies/NAME.tests.toml`) holds cases: a starting state and turns of
user text, each with what the reply must be. `run_tests` runs them on a live backend or
replays the model's recorded choices from a cassette (`NAME.cassette.json`), and can
report coverage: catalog lines emitted, decision paths taken, `said` questions answered
both ways.
"""

from __future__ import annotations

from .cases import Case, Expected, TestFile, case_to_toml, load_test_file, load_tests
from .cassette import Cassette, StaleCassette
from .coverage import Coverage
from .junit import write_junit
from .runner import CaseResult, FileRunner, Run, run_tests

__all__ = [
    "Case",
    "CaseResult",
    "Cassette",
    "Coverage",
    "Expected",
    "FileRunner",
    "Run",
    "StaleCassette",
    "TestFile",
    "case_to_toml",
    "load_test_file",
    "load_tests",
    "run_tests",
    "write_junit",
]
