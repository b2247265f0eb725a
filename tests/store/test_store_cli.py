"""`dialogue sessions`, `log`, `export` and `audit verify` on real files, broken ones included."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from dialogue import cli as cli_module
from dialogue.store import SCHEMA_VERSION

from ..conftest import ROOT
from .helpers import (build_parser_with_store, downgrade, make_turn, new_session, open_store, say, shown, sqlite_only,
                      tamper)


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `dialogue ARGS` in this process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(cli_module, "build_parser", build_parser_with_store(cli_module.build_parser))

    def run(*args):
        code = cli_module.main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def filled(db):
    """A store with session 's' (3 turns, one a fallback) and session 't' (1 turn, ended)."""
    with open_store(db) as store:
        new_session(store, "s")
        new_session(store, "t")
        say(store, "s", 0, message="do you sell swords?", timings={"total_s": 0.0123})
        say(store, "s", 1, message="asdfgh", reply_id="FALLBACK", text="Sorry, I did not understand that.",
            fallback=True, fallback_reason="model output failed validation 2 times", retries=1)
        say(store, "s", 2)
        store.record_turn(make_turn("t", 0, reply_id="FAREWELL", text="Farewell."), {}, ended=True)
    return db


def test_sessions_prints_a_table(cli, filled):
    code, out, _ = cli("sessions", "--db", filled)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "POLICY", "TURNS", "LAST", "ACTIVITY", "ENDED"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["s"][1] == "shop" and rows["s"][3] == "3" and rows["s"][-1] == "no"
    assert rows["t"][3] == "1" and rows["t"][-1] == "yes"
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[1])


def test_sessions_on_an_empty_store(cli, db):
    open_store(db).close()
    assert cli("sessions", "--db", db)[:2] == (0, f"no sessions in {shown(db)}\n")


def test_log_shows_a_readable_transcript(cli, filled):
    code, out, _ = cli("log", "s", "--db", filled)
    assert code == 0
    assert out.startswith("session s  policy shop pppppppp  catalog cccccccc  en  prompted  3 turns")
    assert "you: do you sell swords?" in out and "bot: The sword costs 50 gold." in out
    assert re.search(r"#0 .* OFFER  12 ms", out)
    assert re.search(r"#1 .* FALLBACK  \d+ ms  retries 1", out)
    assert "FALLBACK: model output failed validation 2 times" in out


def test_log_of_an_unknown_session_is_a_clear_error(cli, filled):
    code, out, err = cli("log", "nobody", "--db", filled)
    assert (code, out) == (1, "")
    assert err == f"dialogue: no session 'nobody' in {shown(filled)}; see `dialogue sessions`\n"


def test_export_writes_one_json_object_per_turn(cli, filled):
    code, out, _ = cli("export", "s", "--format", "jsonl", "--db", filled)
    turns = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [t["index"] for t in turns] == [0, 1, 2]
    assert turns[1]["fallback"] and turns[1]["raw"] and turns[1]["reachable"]
    assert turns[0]["message"] == "do you sell swords?" and len(turns[0]["audit_hash"]) == 64


def test_audit_verify_counts_an_intact_chain(cli, filled):
    code, out, _ = cli("audit", "verify", "--db", filled)
    assert code == 0 and re.fullmatch(r"audit chain intact: 4 turns verified; head [0-9a-f]{64}\n", out)


def test_audit_verify_names_the_first_bad_sequence_number(cli, filled):
    tamper(filled, "UPDATE turns SET text = 'Refund approved.' WHERE seq = 2")
    code, out, _ = cli("audit", "verify", "--db", filled)
    assert code == 1 and out.startswith("audit chain broken at sequence 2: ")


def test_audit_alone_prints_its_help(cli):
    code, out, _ = cli("audit")
    assert code == 2 and "verify" in out


def test_every_store_command_has_help(cli):
    for command in (["sessions"], ["log"], ["export"], ["audit"], ["audit", "verify"]):
        with pytest.raises(SystemExit) as exit_:
            cli(*command, "--help")
        assert exit_.value.code == 0


@sqlite_only
def test_the_default_store_is_dialogue_db_here_or_dialogue_db_env(cli, filled, tmp_path, monkeypatch):
    monkeypatch.delenv("DIALOGUE_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli("sessions")[2] == "dialogue: dialogue.db: no such file; pass --db FILE or set DIALOGUE_DB\n"
    monkeypatch.setenv("DIALOGUE_DB", str(filled))
    assert cli("sessions")[0] == 0
    filled.rename(tmp_path / "dialogue.db")
    monkeypatch.delenv("DIALOGUE_DB")
    assert cli("audit", "verify")[0] == 0


# -- files that cannot be used: one line, exit 1, nothing lost ------------------------------


def broken(kind, db):
    if kind == "missing":
        return None
    with open_store(db) as store:
        new_session(store, "s")
        for index in range(100):
            say(store, "s", index)
    if kind == "truncated":
        db.write_bytes(db.read_bytes()[:20_000])
    elif kind == "garbage":
        db.write_bytes(b"not a database at all\n" * 500)
    elif kind == "newer schema":
        tamper(db, "INSERT INTO schema_version VALUES (7, 'later')")
    return db.read_bytes()


EXPECTED = {"missing": "no such file", "truncated": "is damaged", "garbage": "is not an SQLite database",
            "newer schema": "newer than this dialogue reads"}


@sqlite_only
@pytest.mark.parametrize("kind", EXPECTED)
@pytest.mark.parametrize("command", [["sessions"], ["log", "s"], ["export", "s"], ["audit", "verify"]])
def test_a_broken_file_gives_one_clear_line(cli, db, kind, command):
    before = broken(kind, db)
    code, out, err = cli(*command, "--db", db)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith(f"dialogue: {db}") and EXPECTED[kind] in err
    assert (db.read_bytes() if db.exists() else None) == before


@sqlite_only
def test_no_traceback_reaches_the_user(db):
    db.write_bytes(b"\x00garbage" * 1000)
    for args in (["audit", "verify"], ["sessions"], ["log", "x"], ["export", "x"]):
        out = subprocess.run([sys.executable, "-m", "tests.store.cli_shim", *args, "--db", str(db)],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 1 and "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1


@sqlite_only
def test_a_read_only_file_is_still_read(cli, filled, make_readonly):
    before = filled.read_bytes()
    make_readonly(filled)
    assert cli("audit", "verify", "--db", filled)[0] == 0
    assert cli("log", "s", "--db", filled)[0] == 0
    assert filled.read_bytes() == before


@sqlite_only
def test_a_read_only_file_that_needs_an_upgrade_is_a_clear_error(cli, filled, make_readonly):
    downgrade(filled, 1)
    before = filled.read_bytes()
    make_readonly(filled)
    code, _, err = cli("sessions", "--db", filled)
    assert code == 1 and err.count("\n") == 1
    assert f"has schema version 1 and must be upgraded to {SCHEMA_VERSION}, but it is read-only" in err
    assert filled.read_bytes() == before


# -- dialogue store migrate and store copy, on either backend ----------------------------------------


def test_every_store_action_has_help(cli):
    for command in (["store"], ["store", "migrate"], ["store", "copy"]):
        with pytest.raises(SystemExit) as exit_:
            cli(*command, "--help")
        assert exit_.value.code == 0
    assert cli("store")[0] == 2  # no action: its help


def test_migrate_creates_a_store_and_then_has_nothing_to_do(cli, db):
    code, out, _ = cli("store", "migrate", "--db", db)
    assert code == 0 and out == f"{shown(db)}: schema version 0 -> {SCHEMA_VERSION} (created)\n"
    code, out, _ = cli("store", "migrate", "--db", db)
    assert code == 0 and out == f"{shown(db)}: schema version {SCHEMA_VERSION}, nothing to upgrade\n"


@sqlite_only
def test_migrate_upgrades_an_older_file(cli, filled):
    downgrade(filled, 1)
    code, out, _ = cli("store", "migrate", "--db", filled)
    assert code == 0 and out.endswith(f"schema version 1 -> {SCHEMA_VERSION}\n")
    assert cli("audit", "verify", "--db", filled)[0] == 0


@sqlite_only
def test_grant_is_for_postgresql(cli, db):
    code, _, err = cli("store", "migrate", "--db", db, "--grant", "app")
    assert code == 1 and "granting a role is for a PostgreSQL store" in err


def test_copy_to_a_new_file_keeps_the_chain_and_its_head(cli, filled, tmp_path):
    head = cli("audit", "head", "--db", filled)[1].strip()
    code, out, _ = cli("store", "copy", "--from", filled, "--to", tmp_path / "copy.db")
    assert code == 0 and out.splitlines()[0].startswith("copied 2 sessions, 4 turns and 0 corrections from ")
    assert cli("audit", "head", "--db", tmp_path / "copy.db")[1].strip() == head
    code, _, err = cli("store", "copy", "--from", filled, "--to", tmp_path / "copy.db")
    assert code == 1 and "holds 2 sessions and 4 audit rows already" in err
