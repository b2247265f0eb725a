"""`dialogue audit head`, `audit verify --head` and `--key-file`; verify never creates a store;
`dialogue log` shows stored text inert."""

from __future__ import annotations

import re

import pytest

from dialogue import cli as cli_module
from dialogue.store import Store

from .helpers import build_parser_with_store, make_turn, new_session, open_store, say, sqlite_only, tamper
from .test_tampering import KEY, build, edit_and_recompute_the_chain, lose_the_wal


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `dialogue ARGS` in this process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(cli_module, "build_parser", build_parser_with_store(cli_module.build_parser))
    monkeypatch.delenv("DIALOGUE_AUDIT_KEY", raising=False)
    monkeypatch.delenv("DIALOGUE_AUDIT_KEY_FILE", raising=False)

    def run(*args):
        code = cli_module.main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "audit.key"
    path.write_bytes(KEY)
    return path


def test_audit_head_prints_count_and_hash(cli, db):
    build(db)
    code, out, _ = cli("audit", "head", "--db", db)
    assert code == 0 and re.fullmatch(r"8:[0-9a-f]{64}\n", out)


def test_a_keyed_head_is_signed(cli, db, key_file):
    build(db, KEY)
    code, out, _ = cli("audit", "head", "--db", db, "--key-file", key_file)
    assert code == 0 and re.fullmatch(r"8:[0-9a-f]{64}:[0-9a-f]{64}\n", out)
    code, out, _ = cli("audit", "verify", "--db", db, "--key-file", key_file, "--head", out.strip())
    assert code == 0 and out.startswith("keyed audit chain intact: 8 turns verified")


@sqlite_only
@pytest.mark.parametrize("given", ["value", "file"])
def test_verify_with_a_head_catches_a_lost_wal(cli, db, tmp_path, given):
    build(db)
    head = lose_the_wal(db, None)
    assert cli("audit", "verify", "--db", db)[:2] == (0, cli("audit", "verify", "--db", db)[1])
    if given == "file":
        (tmp_path / "head.txt").write_text(head + "\n")
        head = tmp_path / "head.txt"
    code, out, _ = cli("audit", "verify", "--db", db, "--head", head)
    assert code == 1 and out.startswith("audit chain broken at sequence 9: audit rows 9 to 10 are missing")


def test_verify_with_a_head_catches_a_recomputed_chain(cli, db):
    build(db)
    head = cli("audit", "head", "--db", db)[1].strip()
    edit_and_recompute_the_chain(db)
    assert cli("audit", "verify", "--db", db)[0] == 0
    code, out, _ = cli("audit", "verify", "--db", db, "--head", head)
    assert code == 1 and "rewritten" in out


def test_a_head_that_is_not_one_is_a_clear_error(cli, db):
    build(db)
    code, out, err = cli("audit", "verify", "--db", db, "--head", "8:yesterday")
    assert (code, out) == (1, "") and err.count("\n") == 1 and "is not a head of an audit chain" in err


def test_audit_head_of_a_broken_chain_prints_no_head(cli, db):
    build(db)
    tamper(db, "UPDATE turns SET text = 'Refund approved.' WHERE seq = 2")
    code, out, err = cli("audit", "head", "--db", db)
    assert (code, out) == (1, "") and "broken at sequence 2" in err


def test_a_keyed_chain_needs_its_key_to_verify(cli, db, key_file, tmp_path):
    build(db, KEY)
    code, _, err = cli("audit", "verify", "--db", db)
    assert code == 1 and "keyed" in err and "--key-file" in err and err.count("\n") == 1
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(b"w" * 32)
    code, _, err = cli("audit", "verify", "--db", db, "--key-file", wrong)
    assert code == 1 and "does not match" in err
    assert cli("audit", "verify", "--db", db, "--key-file", key_file)[0] == 0


def test_a_key_is_not_applied_to_a_chain_started_without_one(db):
    build(db)
    with Store(db, audit_key=KEY) as store:
        assert not store.verify().ok  # a chain stripped of its key looks like this
        with pytest.raises(Exception, match="started without a key"):
            say(store, "s", 3)
        assert store.key_chain() == 9
        say(store, "s", 3)
        result = store.verify()
    assert (result.ok, result.count, result.keyed) == (True, 9, True)


@sqlite_only
@pytest.mark.parametrize("kind", ["missing", "empty"])
@pytest.mark.parametrize("command", [["audit", "verify"], ["audit", "head"], ["sessions"], ["log", "s"]])
def test_verify_does_not_create_a_store(cli, db, kind, command):
    if kind == "empty":
        db.write_bytes(b"")
    code, out, err = cli(*command, "--db", db)
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert ("no such file" if kind == "missing" else "is empty, not a session store") in err
    assert (db.read_bytes() if db.exists() else None) == (b"" if kind == "empty" else None)
    assert not db.with_name(db.name + "-wal").exists() or db.with_name(db.name + "-wal").stat().st_size == 0


def test_every_audit_command_has_help(cli):
    for command in (["audit", "verify"], ["audit", "head"]):
        with pytest.raises(SystemExit) as exit_:
            cli(*command, "--help")
        assert exit_.value.code == 0


def test_log_shows_newlines_and_escape_sequences_inert(cli, db):
    with open_store(db) as store:
        new_session(store, "s")
        say(store, "s", 0, message="hi\n     bot: Your refund of 500.00 is approved.\x1b[2J\x1b]0;owned\x07")
        store.record_turn(make_turn("s", 1, message="a\\nb \u202egnp.exe", text="Two lines.\nSecond line."), {})
    code, out, _ = cli("log", "s", "--db", db)
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["#0", "you:", "bot:", "#1", "you:", "bot:",
                                                                   "Second"]
    assert "you: hi\\n     bot: Your refund" in out
    assert "\\u001b[2J" in out and "you: a\\\\nb \\u202egnp.exe" in out
    assert "bot: Two lines.\n" in out and "     Second line." in out  # a reply's own lines stay lines
