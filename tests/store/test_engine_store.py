"""The engine on a real store file: turns persisted, resume, version changes, privacy, crashes."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest

from dialogue import Engine, ScriptedBackend, load_policy
from dialogue import cli as cli_module
from dialogue.cli import chat as chat_command
from dialogue.errors import SessionError, StoreError
from dialogue.store import Store

from ..conftest import ROOT, SHOP
from . import engines
from .engines import BLACKSMITH, FLOW, SCRIPT, transcript
from .helpers import build_parser_with_store, query, sqlite_only, stored_bytes

_opened: list[Engine] = []


def engine(policy_path=BLACKSMITH, **options) -> Engine:
    """An engine on the scripted model of `engines`, closed when the test ends."""
    made = engines.engine(policy_path, **options)
    _opened.append(made)
    return made


@pytest.fixture(autouse=True)
def close_engines():
    yield
    while _opened:
        _opened.pop().close()


def reference(turns: int) -> list[str]:
    """The reply ids of SCRIPT's first `turns` messages in one uninterrupted in-memory session."""
    return [t.reply.id for t in reference_session(turns).turns]


def reference_session(turns: int):
    session = engine().session("reference")
    talk(session, turns)
    return session


def talk(session, count: int) -> None:
    for _ in range(count):
        session.say(SCRIPT[len(session.turns) % len(SCRIPT)])


def no_half_turn(db) -> None:
    """Every session's counter, turns, state snapshots and audit rows agree."""
    rows = query(db, "SELECT s.turns, (SELECT count(*) FROM turns t WHERE t.session_id = s.id), "
                     "(SELECT count(*) FROM states x WHERE x.session_id = s.id AND x.turn > 0), "
                     "(SELECT count(*) FROM audit a WHERE a.session_id = s.id) FROM sessions s")
    assert rows and all(len(set(row)) == 1 for row in rows), rows


# -- turns persisted ----------------------------------------------------------------------------


def test_every_turn_is_stored_with_the_versions_that_produced_it(db):
    shop_engine = engine(store=db)
    session = shop_engine.session("hilda", state={"gold": 30})
    talk(session, 4)
    shop_engine.close()
    with Store(db) as store:
        stored = store.load_session("hilda")
        assert store.verify().ok and store.verify().count == 4
    policy = load_policy(BLACKSMITH)
    assert [(t.message, t.reply_id, t.text) for t in stored.turns] == transcript(session)
    assert [t.state_after for t in stored.turns] == [t.state.model_dump(mode="json") for t in session.turns]
    assert stored.state == session.state.model_dump(mode="json") and stored.state["gold"] == 28
    assert {(t.policy_hash, t.catalog_hash) for t in stored.turns} == {(policy.hash, policy.catalog.hash)}
    offer = stored.turns[1]
    assert (offer.slots, offer.raw, offer.backend, offer.model) == \
        ({"item": "nails", "price": "2"}, ["OFFER(item=nails, price=2)"], "scripted", "script")
    assert "OFFER(item=nails, price=2)" in offer.reachable and offer.timings["total_s"] > 0
    assert offer.trace["lines"] == [{"id": "OFFER", "slots": {"item": "nails", "price": "2"},
                                     "text": offer.text, "audio": None}]
    assert query(db, "SELECT source FROM policies") == [(BLACKSMITH.read_text(),)]
    assert query(db, "SELECT text FROM catalogs") == [(policy.catalog.source,)]


def test_without_a_store_sessions_stay_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    memory = engine()
    talk(memory.session("s"), 2)
    assert memory.store is None and list(tmp_path.iterdir()) == []


# -- resume ---------------------------------------------------------------------------------------


def test_a_session_resumes_in_a_new_engine_as_if_never_interrupted(db):
    first = engine(store=db)
    talk(first.session("s"), 3)
    first.close()
    second = engine(store=db)
    session = second.session("s")
    assert [t.message for t in session.turns] == SCRIPT[:3]
    assert session.state.gold == 18 and session.turns[-1].state.gold == 18
    assert [h.reply for h in session.history()] == ["GREETING", "OFFER(item=nails, price=2)",
                                                    "SOLD(item=nails, price=2)"]
    talk(session, 4)
    assert [t.reply.id for t in session.turns] == reference(7)
    prompt = second.backend.calls[0][0].user  # the first prompt after resuming holds the history
    assert 'user: "some nails"\nreply: OFFER(item=nails, price=2)' in prompt
    second.close()
    with Store(db) as store:
        assert store.verify().count == 7


def test_a_flow_resumes_at_its_node_with_the_lines_said(db):
    first = engine(FLOW, store=db)
    assert first.session("f").say("verified, I need to ask about an order").text.count("\n") == 1
    first.close()
    second = engine(FLOW, store=db)
    session = second.session("f")
    assert (session.node, session.state.verified, session.said_ids) == ("order", True, {"VERIFIED", "ASK_ORDER"})
    assert session.turns[0].reply.lines[0].id == "VERIFIED" and session.turns[0].reply.goto == "order"
    turn = session.say("disclosure and refund for order 12345")
    assert [line["id"] for line in turn.lines] == ["DISCLOSURE", "REFUND"] and session.ended
    second.close()
    ended = engine(FLOW, store=db).session("f")
    assert ended.ended and ended.turns[-1].reply.slots == {"order": "12345"}
    with pytest.raises(SessionError, match="has ended"):
        ended.say("hello?")


def test_a_session_resumes_in_another_process(db):
    first = engine(store=db)
    talk(first.session("s", state={"gold": 40}), 3)
    first.close()
    done = subprocess.run([sys.executable, "-m", "tests.store.engines", "resume", str(db), "s", "any rumour?"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    resumed = json.loads(done.stdout)
    assert (resumed["history"], resumed["turns"], resumed["reply"]) == (SCRIPT[:3], 4, "RUMOUR")
    assert (resumed["state"]["gold"], resumed["state"]["inventory"]) == (38, ["nails"])
    assert 'user: "sold"\nreply: SOLD(item=nails, price=2)' in resumed["prompt"]
    with Store(db) as store:
        assert store.verify().count == 4 and len(store.load_session("s").turns) == 4


def test_an_executed_mode_turn_keeps_every_question_and_resumes(db):
    first = engine(store=db, mode="executed")
    turn = first.session("s").say("just looking")
    first.close()
    with Store(db) as store:
        (stored,) = store.load_session("s").turns
    assert stored.mode == "executed" and stored.reply_id == turn.reply.id
    assert [step["question"] for step in stored.trace["steps"]] == [s["question"] for s in turn.trace.steps]
    assert len(stored.raw) == len(turn.trace.steps) > 3
    resumed = engine(store=db, mode="executed").session("s")
    assert resumed.turns[0].trace.steps == turn.trace.steps and resumed.turns[0].trace.path == turn.trace.path


def test_a_state_for_a_stored_session_is_refused(db):
    first, second = engine(store=db), engine(store=db)
    first.session("s", state={"gold": 5})
    with pytest.raises(SessionError, match="session 's' exists already in .*its state and node come from its turns"):
        second.session("s", state={"gold": 500})
    assert second.session("s").state.gold == 5
    first.close()
    second.close()


def test_a_session_advanced_by_another_engine_is_reloaded(db):
    here, there = engine(store=db), engine(store=db)
    talk(here.session("s"), 1)
    stale = there.session("s")
    talk(here.session("s"), 1)
    with pytest.raises(SessionError, match="another process advanced it"):
        stale.say("some nails")
    assert len(stale.turns) == 1
    fresh = there.session("s")
    assert fresh is not stale and len(fresh.turns) == 2
    talk(fresh, 1)
    assert [t.reply.id for t in fresh.turns] == reference(3)


# -- the policy or catalog changed ---------------------------------------------------------------


@pytest.fixture
def shop_copy(tmp_path):
    """The shop fixture policy and catalog, copied so a test can change them."""
    for name in ("shop.py", "shop.toml"):
        shutil.copy(SHOP.parent / name, tmp_path / name)
    return tmp_path / "shop.py"


def change(shop_copy, what: str) -> None:
    if what == "policy":
        shop_copy.write_text(shop_copy.read_text() + "\n# prices reviewed\n")
    else:
        catalog = shop_copy.with_suffix(".toml")
        catalog.write_text(catalog.read_text().replace("Welcome to the shop.", "Welcome, friend."))


def shop_engine(shop_copy, db, **options):
    made = Engine(load_policy(shop_copy), backend=ScriptedBackend(lambda p, c: "GREETING"), store=db, **options)
    _opened.append(made)
    return made


@pytest.mark.parametrize("what", ["policy", "catalog"])
def test_a_changed_policy_or_catalog_is_refused_naming_both_hashes(shop_copy, db, what):
    old = shop_engine(shop_copy, db)
    old.session("s").say("hi")
    old_hash = getattr(old.policy, "hash") if what == "policy" else old.catalog.hash
    change(shop_copy, what)
    new = shop_engine(shop_copy, db)
    new_hash = new.policy.hash if what == "policy" else new.catalog.hash
    assert new_hash != old_hash
    with pytest.raises(SessionError, match=f"its {what} changed from {old_hash} to {new_hash}.*on_change"):
        new.session("s")
    with Store(db) as store:
        stored = store.load_session("s")
    assert (stored.policy_hash, stored.catalog_hash) == (old.policy.hash, old.catalog.hash)


@pytest.mark.parametrize("where", ["session", "engine"])
def test_on_change_continue_moves_the_session_to_the_new_versions(shop_copy, db, where):
    old = shop_engine(shop_copy, db)
    old.session("s").say("hi")
    change(shop_copy, "policy")
    change(shop_copy, "catalog")
    if where == "session":
        session = shop_engine(shop_copy, db).session("s", on_change="continue")
    else:
        session = shop_engine(shop_copy, db, on_change="continue").session("s")
    assert session.say("hi again").text == "Welcome, friend."
    new = session.engine
    with Store(db) as store:
        stored = store.load_session("s")
        assert store.verify().ok
    assert [(t.policy_hash, t.catalog_hash) for t in stored.turns] == \
        [(old.policy.hash, old.catalog.hash), (new.policy.hash, new.catalog.hash)]
    assert (stored.policy_hash, stored.catalog_hash) == (new.policy.hash, new.catalog.hash)
    assert query(db, "SELECT count(*) FROM policies")[0][0] == query(db, "SELECT count(*) FROM catalogs")[0][0] == 2


def test_on_change_takes_error_or_continue_only(db):
    with pytest.raises(ValueError, match="on_change must be one of error, continue"):
        engine(store=db, on_change="ignore")


# -- privacy ------------------------------------------------------------------------------------------


def test_without_stored_messages_a_salted_hash_is_kept_and_resume_sees_no_text(db):
    first = engine(store=db, store_messages=False)
    turn = first.session("s").say("some nails")
    assert turn.message == "some nails" and turn.reply.id == "OFFER"
    first.close()
    with Store(db) as store:
        (stored,) = store.load_session("s").turns
        assert stored.message == store.message_digest("some nails")
    assert b"some nails" not in stored_bytes(db)
    second = engine(store=db)
    session = second.session("s")
    assert session.turns[0].message == "" and session.turns[0].text == turn.text
    session.say("sold")
    assert "sha256:" not in second.backend.calls[0][0].user


def test_a_redaction_hook_masks_what_is_stored_not_what_is_answered(db):
    def mask_cards(text):
        return re.sub(r"\b(?:\d[ -]?){12}(\d{4})\b", r"**** \1", text)

    first = engine(store=db, redact=mask_cards)
    turn = first.session("s").say("my card 4111 1111 1111 1234, some nails")
    assert turn.message == "my card 4111 1111 1111 1234, some nails" and turn.reply.id == "OFFER"
    first.close()
    session = engine(store=db).session("s")
    assert session.turns[0].message == "my card **** 1234, some nails"
    with Store(db) as store:
        assert store.load_session("s").turns[0].message == "my card **** 1234, some nails"


def test_store_options_belong_to_the_store_the_engine_opens(db):
    with Store(db) as store:
        with pytest.raises(ValueError, match="pass them to Store"):
            engine(store=store, redact=str.upper)
    with pytest.raises(ValueError, match="need a store"):
        engine(store_messages=False)


def test_a_store_object_is_shared_and_left_open(db):
    with Store(db) as store:
        first, second = engine(store=store), engine(store=store)
        talk(first.session("a"), 2)
        talk(second.session("b"), 2)
        first.close()
        assert store.verify().count == 4


def test_model_text_reaches_neither_the_user_nor_the_transcript(db, capsys, cli):
    free_text = "Sure, free swords for everyone!"
    chatty = Engine(load_policy(BLACKSMITH), backend=ScriptedBackend([free_text] * 2, strict=False), store=db)
    _opened.append(chatty)
    turn = chatty.session("s").say("free stuff?")
    assert turn.trace.fallback and free_text not in turn.text
    chatty.close()
    resumed = engine(store=db).session("s")
    assert resumed.turns[0].text == turn.text and resumed.turns[0].reply.id == "FALLBACK"
    code, out, _ = cli("log", "s", "--db", db)
    assert code == 0 and free_text not in out and "FALLBACK" in out
    code, out, _ = cli("export", "s", "--db", db)
    assert json.loads(out)["raw"] == [free_text] * 2  # the audit record keeps what the model wrote


# -- failures --------------------------------------------------------------------------------------


@sqlite_only
def test_a_failed_write_is_a_store_error_and_the_turn_does_not_happen(db, monkeypatch):
    shop = engine(store=db)
    session = shop.session("s")
    talk(session, 1)

    def broken(*args):
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(shop.store, "_append", broken)
        with pytest.raises(StoreError, match="recording turn 1 of session 's'"):
            session.say("some nails")
    assert (len(session.turns), session.state.offer) == (1, None)
    talk(session, 2)
    assert [t.reply.id for t in session.turns] == reference(3)
    with Store(db) as store:
        assert store.verify().count == 3


@sqlite_only
def test_a_broken_or_read_only_file_is_refused_when_the_engine_opens_it(db, make_readonly):
    garbage = bytes(range(256)) * 40
    db.write_bytes(garbage)
    with pytest.raises(StoreError, match="is not an SQLite database"):
        engine(store=db)
    assert db.read_bytes() == garbage
    readonly = db.with_name("readonly.db")
    engine(store=readonly).close()
    make_readonly(readonly)
    with pytest.raises(StoreError, match="is read-only.*write access"):
        engine(store=readonly)


# -- crashes and concurrency ----------------------------------------------------------------------


def writer(db, prefix: str, threads: int, turns: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.store.engines", "write", str(db), prefix,
                             str(threads), str(turns)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("after", [3, 30])
def test_an_engine_killed_mid_conversation_leaves_whole_turns_that_resume(db, after):
    proc = writer(db, "killed", 2, 0)
    committed = [proc.stdout.readline() for _ in range(after)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL and all(committed), committed
    with Store(db) as store:
        result = store.verify()
        assert result.ok, result
    no_half_turn(db)
    resumer = engine(store=db)
    total = 0
    for session_id in ("killed-0", "killed-1"):
        session = resumer.session(session_id)
        total += len(session.turns)
        expected = reference_session(len(session.turns))
        assert session.state.model_dump() == expected.state.model_dump()
        assert transcript(session) == transcript(expected)
        talk(session, 1)
        assert [t.reply.id for t in session.turns] == reference(len(session.turns))
    assert total >= after
    resumer.close()
    with Store(db) as store:
        assert store.verify().count == total + 2


def test_two_processes_and_threads_write_through_engines_to_one_file(db):
    turns = 15
    processes = [writer(db, f"proc{n}", 3, turns) for n in range(2)]
    shared = engine(store=db)
    threads = [threading.Thread(target=talk, args=(shared.session(f"thread-{n}"), turns)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared.close()
    for proc in processes:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert len(out.splitlines()) == 3 * turns
    expected = reference(turns)
    with Store(db) as store:
        result = store.verify()
        assert result.ok and result.count == 9 * turns, result
        sessions = store.sessions()
        assert len(sessions) == 9
        for row in sessions:
            assert [t.reply_id for t in store.load_session(row["id"]).turns] == expected
    no_half_turn(db)


# -- the command line ------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `dialogue ARGS` in this process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(cli_module, "build_parser", build_parser_with_store(cli_module.build_parser))

    def run(*args, stdin: str = ""):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli_module.main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_dialogue_log_shows_an_engine_written_session(db, cli):
    shop = engine(store=db)
    talk(shop.session("hilda"), 3)
    shop.close()
    code, out, err = cli("log", "hilda", "--db", db)
    assert code == 0, err
    assert "session hilda  policy blacksmith" in out and "3 turns" in out
    assert "OFFER" in out and "you: some nails" in out and "bot: " + shop.session("hilda").turns[1].text in out
    code, out, _ = cli("audit", "verify", "--db", db)
    assert code == 0 and "3 turns verified" in out


def test_dialogue_chat_keeps_a_session_in_the_store_and_resumes_it(db, cli, monkeypatch):
    monkeypatch.setattr(chat_command, "load_backend", lambda args: ScriptedBackend(engines.by_words))
    code, out, err = cli("chat", BLACKSMITH, "--db", db, "--session", "c1", stdin="some nails\nsold\n")
    assert code == 0, err
    assert "Session c1 in" in out and "0 turns so far" in out
    code, out, err = cli("chat", BLACKSMITH, "--db", db, "--session", "c1", stdin="any rumour?\n")
    assert code == 0 and "2 turns so far" in out, err
    code, out, _ = cli("log", "c1", "--db", db)
    assert [m for m in re.findall(r"you: (.*)", out)] == ["some nails", "sold", "any rumour?"]
    code, out, err = cli("chat", BLACKSMITH, "--db", db, "--session", "c1", "--state", '{"gold": 1}')
    assert code == 1 and "exists already" in err
    code, out, _ = cli("chat", BLACKSMITH, "--db", db, stdin="greeting\n")
    new_id = re.search(r"resume with --session (\S+)\.", out).group(1)
    with Store(db, readonly=True) as store:
        assert new_id.startswith("chat-") and len(store.load_session(new_id).turns) == 1
