"""Running cases on the scripted backend: pass, mismatch, cassettes, coverage, JUnit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from dialogue.backends.scripted import ScriptedBackend
from dialogue.errors import DialogueError
from dialogue.testing import StaleCassette, run_tests, write_junit

from .conftest import RIGHT, write_tests


def test_cases_pass_when_the_model_understands(tests_file):
    seen = []
    run = run_tests([tests_file], backend=ScriptedBackend(RIGHT), progress=seen.append)
    assert (run.passed, run.failed) == (2, 0) and [r.name for r in seen] == ["greets", "buys a dagger"]
    assert run.results[1].turns[1] == {"user": "deal", "got": "SOLD(item=dagger, price=15)", "passed": True,
                                       "expected": "SOLD; slots price=15; not DISCOUNT; state gold=5, "
                                                   "inventory=['dagger']; fallback=false"}


def test_the_first_mismatch_shows_expected_got_and_the_reachable_replies(tests_file):
    run = run_tests([tests_file], backend=ScriptedBackend(["GREETING", "TOO_POOR(item=sword, price=50)"]))
    result = run.results[1]
    assert not result.passed and len(result.turns) == 1  # the case stops at its first mismatch
    assert "turn 1 ('a dagger?'): expected OFFER(item=dagger, price=15), got TOO_POOR(item=sword, price=50)" \
        in result.mismatch
    assert "reachable: INSULTED, GOODBYE, TOO_POOR(item=sword, price=50)" in result.mismatch


@pytest.mark.parametrize("expect, words", [
    ('reply = "OFFER(item=dagger, price=14)"', "expected OFFER(item=dagger, price=14)"),
    ('slots = { item = "sword" }', "expected slot item=sword, got item=dagger"),
    ('not = ["OFFER"]', "expected not OFFER"),
    ("state = { offer_price = 1 }", "expected state offer_price=1, got offer_price=15"),
    ("fallback = true", "expected fallback=true"),
])
def test_each_expectation_is_checked(tmp_path, expect, words):
    path = write_tests(tmp_path, f'[[case]]\nname = "x"\n[[case.turn]]\nuser = "a dagger"\n{expect}\n')
    run = run_tests([path], backend=ScriptedBackend(["OFFER(item=dagger, price=15)"]))
    assert not run.results[0].passed and words in run.results[0].mismatch


def test_k_selects_cases_and_repeat_runs_each_n_times(tests_file):
    run = run_tests([tests_file], backend=ScriptedBackend(RIGHT[1:] * 3), k="DAGGER", repeat=3)
    assert [r.name for r in run.results] == ["buys a dagger"] * 3
    assert run.pass_rates() == {(str(tests_file), "buys a dagger"): (3, 3)}


def test_record_then_replay_never_calls_a_model(tests_file):
    recorded = run_tests([tests_file], backend=ScriptedBackend(RIGHT), record=True)
    assert recorded.passed == 2 and recorded.source == "record"
    cassette = tests_file.with_name("blacksmith.cassette.json")
    data = json.loads(cassette.read_text())
    assert sorted(e["output"] for e in data["entries"].values()) == sorted(RIGHT)
    replayed = run_tests([tests_file])
    assert replayed.source == "replay" and replayed.passed == 2
    silent = ScriptedBackend([])  # any call fails: replay must not call it
    assert run_tests([tests_file], backend=silent, replay=True).passed == 2 and silent.calls == []


def test_re_recording_one_case_keeps_the_others(tests_file):
    run_tests([tests_file], backend=ScriptedBackend(RIGHT), record=True)
    run_tests([tests_file], backend=ScriptedBackend(["GOODBYE"]), record=True, k="greets")
    run = run_tests([tests_file])
    assert [r.passed for r in run.results] == [False, True]
    assert "got GOODBYE" in run.results[0].mismatch


def test_a_stale_cassette_names_the_case_and_says_to_re_record(tests_file):
    run_tests([tests_file], backend=ScriptedBackend(RIGHT), record=True)
    tests_file.write_text(tests_file.read_text().replace('user = "deal"', 'user = "deal, here you go"'))
    run = run_tests([tests_file])
    stale = run.results[1]
    assert not stale.passed and run.results[0].passed
    assert "case 'buys a dagger', turn 2 ('deal, here you go')" in stale.error
    assert "re-record with `dialogue test --record" in stale.error


def test_replay_without_a_cassette_is_an_error(tests_file):
    with pytest.raises(StaleCassette, match="no cassette"):
        run_tests([tests_file], replay=True)


def test_a_file_without_a_policy_cannot_run(tmp_path):
    path = tmp_path / "lost.tests.toml"
    path.write_text('[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi"\n')
    with pytest.raises(DialogueError, match="no policy to test"):
        run_tests([path], backend=ScriptedBackend(["GREETING"]))


def test_coverage_counts_responses_paths_and_questions(tests_file):
    run = run_tests([tests_file], backend=ScriptedBackend(RIGHT), coverage=True)
    coverage = run.coverage
    assert coverage.responses == (3, 18)
    assert "FALLBACK" in coverage.never_emitted and "GREETING" not in coverage.never_emitted
    taken, explored = coverage.paths
    assert taken == 3 and explored > taken
    both, questions = coverage.both_ways
    assert both >= 1 and questions == 10  # 'greets' answered yes and no
    assert str(coverage).startswith("responses 3/18 (17%); paths 3/")
    data = coverage.as_dict()
    assert data["responses"]["emitted"] == 3 and data["paths"]["taken"] == 3


def test_junit_has_a_testcase_per_case_and_the_failure(tests_file, tmp_path):
    run = run_tests([tests_file], backend=ScriptedBackend(["GOODBYE", *RIGHT[1:]]))
    out = tmp_path / "junit.xml"
    write_junit(run, out)
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='greets']/failure")
    assert "expected GREETING, got GOODBYE" in failure.get("message")


def test_a_known_model_miss_is_xfail(tmp_path):
    path = write_tests(tmp_path, '[[case]]\nname = "x"\nxfail = "picks OFFER"\n'
                                 '[[case.turn]]\nuser = "hello"\nreply = "GREETING"\n')
    run = run_tests([path], backend=ScriptedBackend(["OFFER(item=dagger, price=15)"]))
    assert run.results[0].status == "xfail" and run.ok
    better = run_tests([path], backend=ScriptedBackend(["GREETING"]))  # a model that gets it right
    assert better.results[0].status == "XPASS" and better.ok


def test_a_case_starts_in_a_node_and_checks_the_node_after_each_turn(tmp_path):
    from ..conftest import ROOT

    path = tmp_path / "refunds.tests.toml"
    path.write_text(f'policy = "{ROOT / "dialogue" / "examples" / "policies" / "refunds.py"}"\n'
                    '[[case]]\nname = "finds the order"\nnode = "order"\nstate = { verified = true }\n'
                    '[[case.turn]]\nuser = "order KT-482913"\nnode = "outcome"\n\n'
                    '[[case]]\nname = "stays"\nnode = "order"\nstate = { verified = true }\n'
                    '[[case.turn]]\nuser = "hmm"\nnode = "outcome"\n')
    run = run_tests([path], backend=ScriptedBackend(["ORDER_FOUND(order=KT-482913)", "ASK_ORDER"]))
    assert run.results[0].passed
    assert "expected node outcome, got node order after ASK_ORDER" in run.results[1].mismatch
