"""The pytest plugin: *.tests.toml files are collected and each case is a test."""

from __future__ import annotations

from dialogue.backends.scripted import ScriptedBackend
from dialogue.testing import run_tests

from .conftest import RIGHT, write_tests

# The inner run goes without the snapshot plugin (its session temp folder is shared) and caches.
QUIET = ("-p", "no:cacheprovider", "-p", "no:textual-snapshot")


def test_pytest_collects_and_runs_the_cases_by_replay(pytester):
    path = write_tests(pytester.path)
    run_tests([path], backend=ScriptedBackend(RIGHT), record=True)
    result = pytester.runpytest("-v", *QUIET)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*blacksmith.tests.toml::greets PASSED*",
                                 "*blacksmith.tests.toml::buys a dagger PASSED*"])


def test_a_failing_case_shows_its_mismatch(pytester):
    path = write_tests(pytester.path)
    run_tests([path], backend=ScriptedBackend(["GOODBYE", *RIGHT[1:]]), record=True)
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*case 'greets' failed*", "*expected GREETING, got GOODBYE*",
                                 "*reachable: *"])


def test_cases_without_a_cassette_are_marked_model(pytester):
    write_tests(pytester.path)
    pytester.makeini("[pytest]\nmarkers =\n    model: the embedded model\n")
    result = pytester.runpytest("-m", "not model", *QUIET)
    result.assert_outcomes(deselected=2)
