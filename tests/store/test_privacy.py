"""The privacy switches cover every stored copy of user text: the message, the raw model output,
the trace (executed mode too), the history a resumed session reads, `dialogue log` and `export`;
and a message hash under a key cannot be tested against guesses from the file alone."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import pytest

from dialogue import Engine, ScriptedBackend, load_policy
from dialogue import cli as cli_module
from dialogue.store import Store

from .engines import BLACKSMITH, MESSAGE
from .helpers import build_parser_with_store, new_session, open_store, query, say, stored_bytes

SECRET = "my secret word is Xylophone-42, some nails"
CARD = "4111 1111 1111 1234"
KEY = b"a key kept outside the file, 32b"


def echo(prompt, constraint) -> str:
    """A model that repeats the user's words (never a valid choice: every turn falls back)."""
    found = MESSAGE.findall(prompt.user)
    return "you said: " + (json.loads(found[-1]) if found else prompt.user)


def mask_cards(text: str) -> str:
    return re.sub(r"\b(?:\d[ -]?){12}(\d{4})\b", r"**** \1", text)


@pytest.fixture
def cli(monkeypatch, capsys):
    monkeypatch.setattr(cli_module, "build_parser", build_parser_with_store(cli_module.build_parser))

    def run(*args):
        code = cli_module.main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out + out.err

    return run


def chat(db, message, *, mode="prompted", **options):
    """One echoed turn of session 's' stored at `db`, then the session resumed and one more turn."""
    engine = Engine(load_policy(BLACKSMITH), backend=ScriptedBackend(echo, strict=False), store=db, mode=mode,
                    understanding="model", **options)
    try:
        turn = engine.session("s").say(message)
        assert turn.trace.raw and any(message in raw for raw in turn.trace.raw)  # the model did echo it
    finally:
        engine.close()
    resumed = Engine(load_policy(BLACKSMITH), backend=ScriptedBackend(echo, strict=False), store=db, mode=mode,
                     understanding="model")
    try:
        session = resumed.session("s")
        history = [line.message for line in session.history()]
        session.say("hello")
        prompts = [call[0].user for call in resumed.backend.calls]
    finally:
        resumed.close()
    return history, prompts


@pytest.mark.parametrize("mode", ["prompted", "executed"])
def test_without_stored_messages_no_copy_of_the_message_is_kept(db, cli, mode):
    history, prompts = chat(db, SECRET, mode=mode, store_messages=False)
    assert b"Xylophone" not in stored_bytes(db)
    assert history == [""] and not any("Xylophone" in p for p in prompts)
    for command in (["log", "s"], ["export", "s"]):
        code, out = cli(*command, "--db", db)
        assert code == 0 and "Xylophone" not in out and "xylophone" not in out.lower()
    raw = json.loads(cli("export", "s", "--db", db)[1].splitlines()[0])["raw"]
    assert raw and all(r.startswith("you said: sha256:") for r in raw)  # where the echo was, its digest


@pytest.mark.parametrize("mode", ["prompted", "executed"])
def test_redaction_applies_to_the_raw_output_and_the_trace(db, cli, mode):
    message = f"my card {CARD}, some nails"
    history, prompts = chat(db, message, mode=mode, redact=mask_cards)
    digits = CARD[:9]  # "4111 1111": not a piece of a hex digest, as "4111" can be
    assert digits.encode() not in stored_bytes(db) and b"**** 1234" in stored_bytes(db)
    assert history == ["my card **** 1234, some nails"] and not any(digits in p for p in prompts)
    for command in (["log", "s"], ["export", "s"]):
        code, out = cli(*command, "--db", db)
        assert code == 0 and digits not in out
    assert query(db, "SELECT count(*) FROM audit WHERE body LIKE ?", (f"%{digits}%",)) == [(0,)]


def test_a_message_repeated_in_another_case_is_hashed_too(db):
    with open_store(db, store_messages=False) as store:
        new_session(store, "s")
        say(store, "s", 0, message="Refund Please", raw=["REFUND PLEASE"],
            trace={"steps": [{"raw": ["refund please"]}]})
    assert query(db, "SELECT count(*) FROM turns WHERE lower(raw || trace) LIKE '%refund please%'") == [(0,)]


def test_earlier_messages_repeated_by_the_model_are_hashed_too(db, cli):
    """A model that repeats the end of its prompt (the trace keeps 2,000 characters of an
    output): the history there holds the earlier message."""
    engine = Engine(load_policy(BLACKSMITH), backend=ScriptedBackend(lambda prompt, constraint: prompt.user[-1500:],
                                                                     strict=False),
                    store=db, understanding="model", store_messages=False)
    try:
        session = engine.session("s")
        session.say("Xylophone-42 first")
        session.say("Quartz-77 second")
        assert any("Xylophone-42 first" in raw for raw in session.turns[1].trace.raw)
    finally:
        engine.close()
    assert b"Xylophone-42" not in stored_bytes(db) and b"Quartz-77" not in stored_bytes(db)
    code, out = cli("export", "s", "--db", db)
    assert code == 0 and "Xylophone" not in out and "Quartz" not in out


def test_a_short_message_is_not_masked_inside_other_words(db):
    with open_store(db, store_messages=False) as store:
        new_session(store, "s")
        say(store, "s", 0, message="a", raw=["OFFER(item=axe, price=a)"])
        (turn,) = store.load_session("s").turns
    assert turn.raw == [f"OFFER(item=axe, price={turn.message})"]


def zips() -> list[str]:
    return [f"{n:05d}" for n in range(100_000)]


def test_without_a_key_a_zip_is_found_from_the_file_alone(db):
    """What the README says plainly: the salt is in the file, so a short message can be guessed."""
    with open_store(db, store_messages=False) as store:
        new_session(store, "s")
        say(store, "s", 0, message="94107")
    salt = query(db, "SELECT value FROM meta WHERE key = 'salt'")[0][0]
    stored = query(db, "SELECT message FROM turns")[0][0]
    found = [z for z in zips() if "sha256:" + hashlib.sha256((salt + z).encode()).hexdigest() == stored]
    assert found == ["94107"]


def test_with_a_key_a_zip_is_not_found_from_the_file_alone(db):
    with open_store(db, store_messages=False, audit_key=KEY) as store:
        new_session(store, "s")
        say(store, "s", 0, message="94107")
        assert store.load_session("s").turns[0].message == store.message_digest("94107")
    stored = query(db, "SELECT message FROM turns")[0][0]
    assert stored.startswith("hmac-sha256:") and b"94107" not in stored_bytes(db)
    values = [v for (v,) in query(db, "SELECT value FROM meta")]  # everything the file could key a hash with
    digest = stored.split(":", 1)[1]
    for secret in values:
        for z in zips()[94000:95000]:
            assert hashlib.sha256((secret + z).encode()).hexdigest() != digest
            assert hmac.new(secret.encode(), z.encode(), "sha256").hexdigest() != digest
    with Store(db, audit_key=KEY) as store:  # whoever holds the key can still check a claim
        assert store.message_digest("94107") == stored


def test_the_key_comes_from_the_environment_or_a_key_file(db, tmp_path, monkeypatch):
    key_file = tmp_path / "audit.key"
    key_file.write_bytes(KEY + b"\n")
    monkeypatch.setenv("DIALOGUE_AUDIT_KEY_FILE", str(key_file))
    with open_store(db, store_messages=False) as store:
        by_file = store.message_digest("94107")
    monkeypatch.delenv("DIALOGUE_AUDIT_KEY_FILE")
    monkeypatch.setenv("DIALOGUE_AUDIT_KEY", KEY.decode())
    with Store(db) as store:
        assert store.message_digest("94107") == by_file and store.verify().keyed
    monkeypatch.delenv("DIALOGUE_AUDIT_KEY")
    with Store(db, audit_key=key_file) as store:
        assert store.message_digest("94107") == by_file
    assert KEY not in stored_bytes(db)
