"""The session store on real SQLite files: turns, resume, privacy, migrations, bad files, crashes."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest

from dialogue.errors import SessionError, StoreError
from dialogue.store import SCHEMA_VERSION, Store

from ..conftest import ROOT
from .helpers import (CATALOG_HASH, POLICY_HASH, downgrade, execute, make_turn, new_session, open_store, query, say,
                      sqlite_only, stored_bytes, tamper)

# -- turns and sessions -------------------------------------------------------------------


def test_a_turn_round_trips_with_every_field(store):
    record = make_turn("s", 0, slots={"price": Decimal("49.90"), "when": datetime.date(2026, 5, 9)},
                       fallback=True, fallback_reason="model output failed validation 2 times", retries=1,
                       raw=["nonsense", "more nonsense"], created_at="2026-05-09T07:35:25+00:00")
    assert store.record_turn(record, {"gold": 3}, node="haggle") == 1
    session = store.load_session("s")
    (turn,) = session.turns
    assert turn.slots == {"price": "49.90", "when": "2026-05-09"}  # JSON-able: Decimal and dates as text
    assert (turn.fallback, turn.fallback_reason, turn.retries) == (True, record.fallback_reason, 1)
    assert (turn.raw, turn.reachable, turn.timings) == (record.raw, record.reachable, record.timings)
    assert (turn.message, turn.text, turn.reply_id, turn.seq) == (record.message, record.text, "OFFER", 1)
    assert (turn.backend, turn.model, turn.node, turn.trace) == ("scripted", "script", "start", record.trace)
    assert turn.created_at == "2026-05-09T07:35:25+00:00"
    assert (session.state, session.node, session.ended) == ({"gold": 3}, "haggle", False)


def test_the_store_sets_created_at_when_empty(store):
    say(store, "s", 0)
    created = store.load_session("s").turns[0].created_at
    assert datetime.datetime.fromisoformat(created).tzinfo is not None


def test_sequence_numbers_are_global_across_sessions(store):
    new_session(store, "t")
    assert [say(store, "s", 0), say(store, "t", 0), say(store, "s", 1)] == [1, 2, 3]
    assert [t.seq for t in store.load_session("s").turns] == [1, 3]


def test_a_session_id_is_created_once(store):
    with pytest.raises(SessionError, match="session 's' exists already"):
        new_session(store, "s")


def test_an_unknown_session_loads_as_none_and_takes_no_turns(store):
    assert store.load_session("nobody") is None
    with pytest.raises(SessionError, match="no session 'nobody'"):
        say(store, "nobody", 0)


def test_a_turn_out_of_order_is_refused_and_nothing_is_written(store):
    say(store, "s", 0)
    with pytest.raises(SessionError, match="next turn is 1, not 0: another process advanced it"):
        say(store, "s", 0)
    assert len(store.load_session("s").turns) == 1 and store.verify().count == 1


def test_an_ended_session_takes_no_more_turns(store):
    store.record_turn(make_turn("s", 0, reply_id="FAREWELL"), {"gold": 10}, ended=True)
    assert store.load_session("s").ended
    with pytest.raises(SessionError, match="has ended"):
        say(store, "s", 1)


def test_versions_must_be_saved_before_use(db):
    with Store(db) as store:
        with pytest.raises(StoreError, match="no policy version .* call save_versions"):
            new_session(store, "s")


def test_saving_versions_is_idempotent_by_hash(store, db):
    store.save_versions("shop", POLICY_HASH, "other text", "shop", CATALOG_HASH, "other text")
    assert query(db, "SELECT count(*) FROM policies")[0][0] == 1
    assert query(db, "SELECT source FROM policies")[0][0] != "other text"


def test_a_session_resumes_after_the_file_is_reopened(db):
    with open_store(db) as store:
        new_session(store, "s", {"gold": 10})
        say(store, "s", 0)
        store.record_turn(make_turn("s", 1), {"gold": 7, "sword": True}, node="after_sale")
    with open_store(db) as store:
        session = store.load_session("s")
        assert (session.state, session.node, len(session.turns)) == ({"gold": 7, "sword": True}, "after_sale", 2)
        assert [t.index for t in session.turns] == [0, 1]
        assert say(store, "s", 2) == 3


def test_a_new_session_starts_from_its_initial_state(store):
    session = store.load_session("s")
    assert (session.state, session.turns, session.node, session.locale, session.mode) == \
        ({"gold": 10}, [], "start", "en", "prompted")
    assert (session.policy_name, session.policy_hash, session.catalog_hash) == ("shop", POLICY_HASH, CATALOG_HASH)


def test_a_turn_on_new_versions_moves_the_session_and_keeps_old_turns(store):
    """The session's versions are those of its last audited turn: a move is recorded by the turn."""
    say(store, "s", 0)
    store.save_versions("shop", "q" * 64, "new policy", "shop", "d" * 64, "new catalog")
    say(store, "s", 1, policy_hash="q" * 64, catalog_hash="d" * 64)
    session = store.load_session("s")
    assert (session.policy_hash, session.catalog_hash) == ("q" * 64, "d" * 64)
    assert [t.policy_hash for t in session.turns] == [POLICY_HASH, "q" * 64]
    with pytest.raises(StoreError, match="no catalog version"):
        say(store, "s", 2, policy_hash="q" * 64, catalog_hash="e" * 64)
    assert store.verify().ok


def test_sessions_lists_id_policy_turns_activity_and_ended(store):
    new_session(store, "t")
    say(store, "s", 0)
    store.record_turn(make_turn("t", 0), {}, ended=True)
    rows = {r["id"]: r for r in store.sessions()}
    assert (rows["s"]["policy"], rows["s"]["turns"], rows["s"]["ended"]) == ("shop", 1, False)
    assert rows["t"]["ended"] and rows["t"]["last_activity"] >= rows["s"]["last_activity"]


def test_export_gives_one_json_dict_per_turn(store):
    say(store, "s", 0)
    say(store, "s", 1)
    rows = list(store.export("s"))
    assert [r["index"] for r in rows] == [0, 1] and [r["seq"] for r in rows] == [1, 2]
    assert rows[1]["after"] == {"state": {"gold": 10, "turns": 2}, "node": "start", "ended": False}
    assert all(len(r["audit_hash"]) == 64 for r in rows)
    json.dumps(rows)
    with pytest.raises(SessionError):
        store.export("nobody")


# -- one transaction per turn ---------------------------------------------------------------


def test_a_turn_that_fails_halfway_leaves_nothing_behind(store, monkeypatch):
    say(store, "s", 0)
    execute = store._execute

    def failing(sql, params=()):
        if sql.startswith("INSERT INTO states"):
            raise OSError("disk pulled out")
        return execute(sql, params)

    monkeypatch.setattr(store, "_execute", failing)
    with pytest.raises(OSError):
        say(store, "s", 1)
    monkeypatch.undo()
    session = store.load_session("s")
    assert len(session.turns) == 1 and session.state == {"gold": 10, "turns": 1}
    assert store.verify().ok and store.verify().count == 1
    assert say(store, "s", 1) == 2  # the same sequence number is taken again


def test_a_state_that_is_not_json_is_refused_before_anything_is_written(store):
    with pytest.raises(StoreError, match="cannot be stored"):
        store.record_turn(make_turn("s", 0), {"ratio": float("nan")})
    assert store.load_session("s").turns == [] and store.verify().count == 0


def test_a_redaction_hook_that_fails_stores_nothing(db):
    def broken(text):
        raise KeyError("pattern")

    with open_store(db, redact=broken) as store:
        new_session(store, "s")
        with pytest.raises(StoreError, match="redaction hook raised KeyError.*not stored"):
            say(store, "s", 0)
        assert store.load_session("s").turns == []


@sqlite_only
def test_a_lock_held_past_the_busy_timeout_is_a_clear_error(db, monkeypatch):
    import sqlite3

    import dialogue.store.sqlite

    monkeypatch.setattr(dialogue.store.sqlite, "BUSY_TIMEOUT_S", 0.2)
    with open_store(db) as store:
        new_session(store, "s")
        other = sqlite3.connect(str(db), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match=f"{db.name} is busy: another process held its write lock"):
                say(store, "s", 0)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert say(store, "s", 0) == 1


@sqlite_only
def test_the_file_is_in_wal_mode_with_a_ten_second_busy_timeout(store, db):
    assert query(db, "PRAGMA journal_mode")[0][0] == "wal"
    assert store._execute("PRAGMA busy_timeout").fetchone()[0] == 10000
    assert store._execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_stored_turns_are_append_only(store, db):
    say(store, "s", 0)
    for sql in ("UPDATE turns SET text = 'x'", "DELETE FROM audit", "DELETE FROM states"):
        with pytest.raises(Exception, match="append-only"):
            execute(db, sql)


# -- privacy --------------------------------------------------------------------------------


def test_without_stored_messages_a_salted_hash_is_kept(db):
    card = "my card is 4111 1111 1111 1111, refund it"
    with open_store(db, store_messages=False) as store:
        new_session(store, "s")
        say(store, "s", 0, message=card)
        salt = query(db, "SELECT value FROM meta WHERE key = 'salt'")[0][0]
        expected = "sha256:" + hashlib.sha256((salt + card).encode()).hexdigest()
        assert store.load_session("s").turns[0].message == expected == store.message_digest(card)
        assert json.loads(query(db, "SELECT body FROM audit")[0][0])["message"] == expected
        assert store.verify().ok
    assert b"4111 1111 1111 1111" not in stored_bytes(db)


def test_each_store_has_its_own_salt(tmp_path):
    with open_store(tmp_path / "a.db", store_messages=False) as a, \
            open_store(tmp_path / "b.db", store_messages=False) as b:
        assert a.message_digest("hello") != b.message_digest("hello")


def test_the_redaction_hook_masks_text_before_storage(db):
    def mask_cards(text):
        return " ".join("[card]" if word.isdigit() and len(word) >= 4 else word for word in text.split())

    with open_store(db, redact=mask_cards) as store:
        new_session(store, "s")
        say(store, "s", 0, message="card 4111 1111 1111 1111 please")
        assert store.load_session("s").turns[0].message == "card [card] [card] [card] [card] please"
        assert store.verify().ok
    assert b"4111 1111 1111 1111" not in stored_bytes(db)


def test_redaction_happens_before_hashing(db):
    with open_store(db, store_messages=False, redact=str.upper) as store:
        new_session(store, "s")
        say(store, "s", 0, message="hello")
        assert store.load_session("s").turns[0].message == store.message_digest("HELLO")


# -- schema versions --------------------------------------------------------------------------


def test_a_new_file_has_the_current_schema_version(store, db):
    assert query(db, "SELECT max(version) FROM schema_version")[0][0] == SCHEMA_VERSION


@sqlite_only
def test_an_older_file_is_upgraded_and_keeps_its_turns(db):
    with open_store(db) as store:
        new_session(store, "s")
        say(store, "s", 0)
    downgrade(db, 1)
    with open_store(db) as store:
        assert query(db, "SELECT max(version) FROM schema_version")[0][0] == SCHEMA_VERSION
        assert query(db, "SELECT count(*) FROM sqlite_master WHERE name = 'idx_sessions_updated_at'")[0][0] == 1
        assert len(store.load_session("s").turns) == 1 and store.verify().ok
        with pytest.raises(Exception, match="append-only"):
            execute(db, "DELETE FROM audit")


@sqlite_only
def test_a_newer_file_is_refused_and_left_as_it_was(db):
    with open_store(db) as store:
        new_session(store, "s")
    tamper(db, "INSERT INTO schema_version (version, applied_at) VALUES (99, 'later')")
    before = db.read_bytes()
    with pytest.raises(StoreError, match=rf"schema version 99, newer than this dialogue reads \({SCHEMA_VERSION}\); "
                                         "upgrade dialogue"):
        Store(db)
    assert db.read_bytes() == before


@sqlite_only
def test_an_sqlite_file_of_another_program_is_refused(db):
    tamper(db, "CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match="not a dialogue session store"):
        Store(db)
    assert query(db, "SELECT name FROM sqlite_master") == [("customers",)]


# -- files that cannot be used ----------------------------------------------------------------


def filled(db, turns=200):
    with open_store(db) as store:
        new_session(store, "s")
        for index in range(turns):
            say(store, "s", index, trace={"padding": "x" * 200})
    return db.read_bytes()


@sqlite_only
@pytest.mark.parametrize("keep", [0.5, 0.9, "all but one page"])
def test_a_truncated_file_is_refused_and_left_as_it_was(db, keep):
    data = filled(db)
    size = len(data) - 4096 if keep == "all but one page" else int(len(data) * keep)
    db.write_bytes(data[:size])
    with pytest.raises(StoreError, match=rf"{db.name} is damaged .*restore it from a backup"):
        Store(db)
    assert db.read_bytes() == data[:size]


@sqlite_only
def test_a_garbage_file_is_refused_and_left_as_it_was(db):
    garbage = bytes(range(256)) * 40
    db.write_bytes(garbage)
    with pytest.raises(StoreError, match=f"{db.name} is not an SQLite database"):
        Store(db)
    assert db.read_bytes() == garbage


@sqlite_only
def test_a_read_only_file_is_refused_for_writing_and_read_when_asked(db, make_readonly):
    data = filled(db, turns=5)
    make_readonly(db)
    with pytest.raises(StoreError, match=f"{db.name} is read-only.*write access"):
        Store(db)
    with Store(db, readonly=None) as store:
        assert store.readonly and store.verify().count == 5
        with pytest.raises(StoreError, match="open read-only"):
            say(store, "s", 5)
    assert db.read_bytes() == data


def test_a_missing_file_is_created_unless_create_is_false(tmp_path):
    with pytest.raises(StoreError, match="no such file"):
        Store(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(StoreError, match="folder .* does not exist"):
        Store(tmp_path / "nowhere" / "x.db")
    with pytest.raises(StoreError, match="is a folder"):
        Store(tmp_path)
    Store(tmp_path / "new.db").close()
    assert (tmp_path / "new.db").exists()


# -- crashes and concurrency ------------------------------------------------------------------


def writer(db, prefix, threads, turns, payload=0):
    return subprocess.Popen([sys.executable, "-m", "tests.store.writer", str(db), prefix, str(threads),
                             str(turns), str(payload)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("after", [5, 17, 40])
def test_a_writer_killed_mid_conversation_leaves_a_consistent_file(db, after):
    proc = writer(db, "killed", 1, 0, payload=100_000)  # big turns: a long commit to land in
    committed = [proc.stdout.readline() for _ in range(after)]
    time.sleep(random.uniform(0, 0.02))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL and all(committed)
    with open_store(db) as store:
        result = store.verify()
        assert result.ok, result
        session = store.load_session("killed-0")
        turns = len(session.turns)
        assert turns >= after and result.count == turns  # every printed turn committed; maybe a few more
        assert [t.index for t in session.turns] == list(range(turns))
        assert session.state == {"gold": 10, "turns": turns}  # the state matches the last whole turn
        counts = query(db, "SELECT (SELECT count(*) FROM audit), (SELECT count(*) FROM states WHERE turn > 0), "
                           "(SELECT turns FROM sessions)")[0]
        assert counts == (turns, turns, turns)  # no half-written turn
        assert say(store, "killed-0", turns) == turns + 1
        assert store.verify().ok


def test_two_processes_and_many_threads_write_one_file(db):
    processes = [writer(db, f"proc{n}", 3, 30) for n in range(2)]
    with open_store(db) as shared:
        def local(session_id):
            new_session(shared, session_id)
            for index in range(30):
                say(shared, session_id, index)

        threads = [threading.Thread(target=local, args=(f"thread-{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for proc in processes:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert len(out.splitlines()) == 90
    with open_store(db) as store:
        result = store.verify()
        assert result.ok and result.count == 10 * 30, result
        assert sorted(s["turns"] for s in store.sessions()) == [30] * 10
    seqs = [row[0] for row in query(db, "SELECT seq FROM audit ORDER BY seq")]
    assert seqs == list(range(1, 301))
