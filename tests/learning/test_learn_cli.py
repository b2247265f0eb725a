"""`dialogue correct` and `dialogue learn` end to end on real store files and a policy copy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dialogue.understanding.examples import load_examples

from ..conftest import ROOT
from ..store.engines import FLOW, played

HELMET = [("a dagger?", "OFFER(item=dagger, price=15)"), ("do u fix helmets", "GREETING")]


@pytest.fixture
def db(tmp_path, policy):
    """A store with session player-7 (two turns: an offer, then a wrong GREETING)."""
    path = tmp_path / "support.db"
    played(path, "player-7", HELMET, policy_path=policy)
    return path


# -- correct ------------------------------------------------------------------------------------


def test_correct_records_and_says_what_was_corrected(cli, db):
    code, out, err = cli("correct", "player-7", 1, "REPAIRED", "--db", db, "--note", "a repair")
    assert (code, err) == (0, "")
    assert out == "turn 1 of player-7: GREETING -> REPAIRED (by j.doe)\n"  # --by defaults to $USER
    code, out, _ = cli("correct", "player-7", 1, "RUMOUR", "--db", db, "--by", "a.n.other")
    assert code == 0 and out.splitlines() == ["turn 1 of player-7: GREETING -> RUMOUR (by a.n.other)",
                                              "  this supersedes the earlier correction to REPAIRED"]


@pytest.mark.parametrize("args, message", [
    (("nobody", 0, "REPAIRED"), "dialogue: no session 'nobody' in "),
    (("player-7", 5, "REPAIRED"), "dialogue: session 'player-7' has no turn 5: it has turns 0 to 1"),
    (("player-7", 1, "REPAIRD"), "hint: did you mean 'REPAIRED'?"),
])
def test_correct_refuses_bad_input_clearly(cli, db, args, message):
    code, out, err = cli("correct", *args, "--db", db)
    assert (code, out) == (1, "") and message in err and "Traceback" not in err


def test_correct_needs_a_reviewer(cli, db, monkeypatch):
    monkeypatch.delenv("USER")
    code, _, err = cli("correct", "player-7", 1, "REPAIRED", "--db", db)
    assert code == 1 and err == "dialogue: name the reviewer with --by NAME ($USER is not set)\n"


def test_correct_says_a_hashed_message_cannot_be_learned(cli, tmp_path, policy):
    db = tmp_path / "private.db"
    played(db, "s", [("hello", "GREETING")], policy_path=policy, store_messages=False)
    code, out, _ = cli("correct", "s", 0, "RUMOUR", "--db", db)
    assert code == 0 and "kept only a salted hash" in out and "`dialogue learn` cannot learn from it" in out


# -- learn --------------------------------------------------------------------------------------


def test_learn_appends_the_correction_beside_the_policy(cli, db, policy, examples):
    cli("correct", "player-7", 1, "REPAIRED", "--db", db)
    code, out, err = cli("learn", policy, "--db", db)
    assert (code, err) == (0, ""), err
    assert "+ 'do u fix helmets' -> REPAIRED  [main]  correction of turn 1 of player-7 by j.doe" in out
    assert f"added 1 example to {examples} (1 from corrections); 0 were already there" in out
    (example,) = load_examples(examples)
    assert (example.message, example.reply, example.node, example.source) == \
        ("do u fix helmets", "REPAIRED", "main", "correction")
    assert (example.session, example.turn, example.by) == ("player-7", 1, "j.doe") and example.at
    assert example.state["offer"] == "dagger" and example.state["offer_price"] == 15  # after turn 0


def test_learning_twice_adds_nothing_the_second_time(cli, db, policy, examples):
    cli("correct", "player-7", 1, "REPAIRED", "--db", db)
    cli("learn", policy, "--db", db)
    before = examples.read_bytes()
    code, out, _ = cli("learn", policy, "--db", db)
    assert code == 0 and f"added 0 examples to {examples}; 1 was already there" in out and "+ " not in out
    assert examples.read_bytes() == before


def test_hashed_messages_are_counted_and_skipped(cli, db, policy, examples):
    played(db, "private-1", [("my card is 4111", "GREETING")], policy_path=policy, store_messages=False)
    cli("correct", "private-1", 0, "RUMOUR", "--db", db)
    cli("correct", "player-7", 1, "REPAIRED", "--db", db)
    code, out, _ = cli("learn", policy, "--db", db)
    assert code == 0 and "added 1 example" in out
    assert ("1 correction not used: the store kept only a salted hash of the message (store_messages=False), "
            "not the text, so there is nothing to learn from (turn 0 of private-1)") in out
    assert [e.session for e in load_examples(examples)] == ["player-7"]


def test_dry_run_writes_nothing_and_output_goes_where_told(cli, db, policy, examples, tmp_path):
    cli("correct", "player-7", 1, "REPAIRED", "--db", db)
    code, out, _ = cli("learn", policy, "--db", db, "--dry-run")
    assert code == 0 and "would add 1 example" in out and "nothing written (--dry-run)" in out
    assert not examples.exists()
    elsewhere = tmp_path / "reviewed.toml"
    assert cli("learn", policy, "--db", db, "-o", elsewhere)[0] == 0
    assert [e.reply for e in load_examples(elsewhere)] == ["REPAIRED"] and not examples.exists()


def test_a_turn_corrected_again_after_learning_is_pointed_out(cli, db, policy, examples):
    cli("correct", "player-7", 1, "RUMOUR", "--db", db)
    cli("learn", policy, "--db", db)
    cli("correct", "player-7", 1, "REPAIRED", "--db", db)
    code, out, _ = cli("learn", policy, "--db", db)
    assert code == 0 and "added 1 example" in out
    assert ("turn 1 of player-7 is now corrected to REPAIRED; the file still has RUMOUR from an earlier "
            "correction: remove that one by hand") in out
    assert [e.reply for e in load_examples(examples)] == ["RUMOUR", "REPAIRED"]


def test_learn_with_tests_adds_their_turns_in_the_state_the_engine_reaches(cli, db, policy, examples):
    code, out, err = cli("learn", policy, "--db", db, "--tests")
    assert code == 0, err
    learned = {(e.message, e.reply): e for e in load_examples(examples)}
    assert set(learned) == {("a dagger?", "OFFER"), ("I'll take it", "SOLD")}
    sold = learned[("I'll take it", "SOLD")]
    assert sold.source == "test" and sold.node == "main" and (sold.session, sold.turn) == \
        ("blacksmith.tests.toml: buys a dagger", 2)
    assert sold.state["offer"] == "dagger" and sold.state["offer_price"] == 15  # OFFER's effect, as played
    assert "added 2 examples" in out and "(2 from tests)" in out
    assert "1 test turn expect no particular reply" in out
    assert ("blacksmith.tests.toml: case 'no reply expected first', turn 1 expects no particular reply: "
            "not used: the 1 later turn (their state is not known)") in out
    assert ("blacksmith.tests.toml: case 'too poor for the sword it expects', turn 1: the engine cannot say "
            "OFFER there: not used, nor the 1 later turn (their state is not known)") in out


def test_learn_with_tests_needs_no_store(cli, policy, examples, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("learn", policy, "--tests")
    assert code == 0 and "no session store at dialogue.db: learning from the tests only" in out
    assert len(load_examples(examples)) == 2


# -- what learn refuses -------------------------------------------------------------------------


def test_a_missing_store_is_a_clear_error(cli, policy, tmp_path, monkeypatch):
    code, out, err = cli("learn", policy, "--db", tmp_path / "nope.db")
    assert (code, out) == (1, "") and err.endswith("nope.db: no such file; pass --db FILE or set DIALOGUE_DB\n")
    monkeypatch.chdir(tmp_path)
    assert cli("learn", policy)[0] == 1  # the default store is not there either


def test_a_store_without_the_policy_is_a_clear_error(cli, policy, tmp_path):
    other = tmp_path / "other.db"
    played(other, "f-1", [("hello", "ASK_NUMBER")], policy_path=FLOW)
    code, out, err = cli("learn", policy, "--db", other)
    assert code == 1 and f"no sessions of policy 'blacksmith' in {other} (it has sessions of 'flow')" in err
    code, out, _ = cli("learn", policy, "--db", other, "--tests")
    assert code == 0 and "no corrections to learn" in out


@pytest.mark.parametrize("args, message", [
    (("learn", "policies/nope.py"), "no policy file at policies/nope.py"),
    (("learn", "{policy}", "--tests", "-o", "{tmp}/no/such/folder/x.toml"), "does not exist; create it first"),
])
def test_bad_arguments_are_clear_errors(cli, db, policy, tmp_path, args, message):
    args = [a.format(policy=policy, tmp=tmp_path) for a in args]
    code, _, err = cli(*args, "--db", db)
    assert code == 1 and message in err


def test_tests_needs_a_tests_file(cli, db, policy):
    policy.with_name("blacksmith.tests.toml").unlink()
    code, _, err = cli("learn", policy, "--db", db, "--tests")
    assert code == 1 and "--tests: no tests file at" in err


def test_no_traceback_reaches_the_user(tmp_path, policy):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00garbage" * 1000)
    for args in (["correct", "s", "0", "GREETING"], ["learn", str(policy)]):
        out = subprocess.run([sys.executable, "-m", "dialogue", *args, "--db", str(garbage)],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 1 and "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1
