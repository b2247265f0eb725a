"""`dialogue test` on the command line: output, exit codes, JUnit and coverage files."""

from __future__ import annotations

import json

from dialogue.backends.scripted import ScriptedBackend
from dialogue.cli import main
from dialogue.testing import run_tests

from .conftest import RIGHT, write_tests


def recorded(tests_file, answers=RIGHT):
    run_tests([tests_file], backend=ScriptedBackend(answers), record=True)
    return tests_file


def test_a_passing_run_exits_0_and_prints_each_case(tests_file, capsys):
    assert main(["test", str(recorded(tests_file))]) == 0
    out = capsys.readouterr().out
    assert "pass  greets" in out and "pass  buys a dagger" in out
    assert "2 passed (replay, prompted)" in out


def test_a_failure_exits_1_with_expected_got_and_reachable(tests_file, capsys):
    assert main(["test", str(recorded(tests_file, ["GOODBYE", *RIGHT[1:]]))]) == 1
    out = capsys.readouterr().out
    assert "FAIL  greets" in out and "expected GREETING, got GOODBYE" in out and "reachable: " in out
    assert "1 passed, 1 failed" in out


def test_a_folder_is_searched_and_k_selects(tests_file, capsys):
    recorded(tests_file)
    assert main(["test", str(tests_file.parent), "-k", "dagger"]) == 0
    out = capsys.readouterr().out
    assert "buys a dagger" in out and "greets" not in out


def test_a_stale_cassette_exits_1_naming_the_case(tests_file, capsys):
    recorded(tests_file)
    tests_file.write_text(tests_file.read_text().replace('"hello"', '"hi"'))
    assert main(["test", str(tests_file)]) == 1
    out = capsys.readouterr().out
    assert "ERROR greets" in out and "re-record with `dialogue test --record" in out


def test_replay_without_a_cassette_exits_1(tests_file, capsys):
    assert main(["test", "--replay", str(tests_file)]) == 1
    assert "no cassette" in capsys.readouterr().err


def test_a_broken_file_exits_1_with_file_line(tmp_path, capsys):
    path = write_tests(tmp_path, '[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi"\nreply = "HELLO"\n')
    assert main(["test", str(path)]) == 1
    assert f"{path}:6:" in capsys.readouterr().err


def test_junit_and_coverage_files_and_fail_under(tests_file, tmp_path, capsys):
    recorded(tests_file)
    junit, cover = tmp_path / "junit.xml", tmp_path / "coverage.json"
    assert main(["test", str(tests_file), "--junit", str(junit), "--coverage-json", str(cover)]) == 0
    assert "<testcase" in junit.read_text()
    data = json.loads(cover.read_text())
    assert data["responses"]["emitted"] == 3 and data["responses"]["total"] == 18
    out = capsys.readouterr().out
    assert "coverage: responses 3/18 (17%)" in out and "never emitted: " in out
    assert main(["test", str(tests_file), "--fail-under", "50"]) == 1
    assert "under 50%" in capsys.readouterr().out


def test_repeat_reports_each_case_pass_rate(tests_file, capsys):
    recorded(tests_file)
    assert main(["test", str(tests_file), "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "100%  2/2  greets" in out and "100%  4/4  all" in out
