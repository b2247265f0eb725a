"""Every kind of tampering with a store file, against `verify` without a key, with an audit key,
and with a head kept elsewhere.

Each kind is what someone who can write the file would do with a sqlite shell. Without a key
or a head, every kind is caught that does not need the chain recomputed (or the head in the
file rewritten to match a shorter chain); with a key, every kind but losing the WAL; with a
head taken before, every kind.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3

import pytest

from dialogue.store import GENESIS, SCHEMA_VERSION, Store, canonical_json

from .helpers import is_url, make_turn, new_session, open_store, query, say, sqlite_only, tamper

KEY = b"k" * 32
NOTHING, KEY_OR_HEAD, HEAD = "nothing", "a key or a head", "a head"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build(db, key=None) -> None:
    """Sessions s and t (3 turns each, interleaved: seq 1..6), then u (2 turns: seq 7, 8), and z
    started but without turns. u's last turn ends it."""
    with open_store(db, audit_key=key) as store:
        new_session(store, "s")
        new_session(store, "t")
        for index in range(3):
            say(store, "s", index)
            say(store, "t", index)
        new_session(store, "u")
        say(store, "u", 0)
        store.record_turn(_turn("u", 1), {"gold": 10}, ended=True, node="done")
        new_session(store, "z")


def _turn(session_id, index):
    return make_turn(session_id, index, reply_id="FAREWELL", text="Farewell.")


def fix_sessions(db) -> None:
    """Make every sessions row agree with its last audit row, as a careful forger would."""
    for session_id, body in query(db, "SELECT session_id, body FROM audit a WHERE seq = "
                                      "(SELECT max(seq) FROM audit b WHERE b.session_id = a.session_id)"):
        doc = json.loads(body)
        tamper(db, "UPDATE sessions SET turns = ?, node = ?, ended = ? WHERE id = ?",
               params=(doc["index"] + 1, doc["after"]["node"], int(doc["after"]["ended"]), session_id))


def rehash_from(db, first: int) -> None:
    """Recompute the plain SHA-256 chain from row `first` on and the head in the file: what anyone
    can do without the key."""
    prev = query(db, "SELECT hash FROM audit WHERE seq = ?", (first - 1,))
    prev = prev[0][0] if prev else GENESIS
    last = first - 1
    for seq, body in query(db, "SELECT seq, body FROM audit WHERE seq >= ? ORDER BY seq", (first,)):
        digest = sha(prev + body)
        tamper(db, "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", params=(prev, digest, seq))
        prev, last = digest, seq
    tamper(db, "UPDATE meta SET value = ? WHERE key = 'audit_head'", params=(f"{last}:{prev}",))


def drop_rows(db, where: str) -> None:
    tamper(db, f"DELETE FROM turns WHERE {where}", f"DELETE FROM states WHERE {where}",
           f"DELETE FROM audit WHERE {where}")


# -- the kinds: each edits the file at `db`; WAL loss also returns the head taken before it ----

def edit_text(db):
    tamper(db, "UPDATE turns SET text = 'You get a free sword.' WHERE seq = 3")


def edit_message(db):
    tamper(db, "UPDATE turns SET message = 'I never said that' WHERE seq = 1")


def edit_slots(db):
    tamper(db, """UPDATE turns SET slots = '{"item": "sword", "price": "0"}' WHERE seq = 2""")


def edit_raw_output(db):
    tamper(db, """UPDATE turns SET raw = '["OFFER(item=sword, price=0)"]' WHERE seq = 4""")


def edit_audit_body(db):
    tamper(db, "UPDATE audit SET body = replace(body, 'The sword', 'A free sword') WHERE seq = 4")


def edit_state_after(db):
    tamper(db, """UPDATE states SET state = '{"gold": 9999}' WHERE seq = 5""")


def edit_first_state(db):
    tamper(db, """UPDATE states SET state = '{"gold": 9999}' WHERE session_id = 's' AND turn = 0""")


def edit_session_node(db):
    tamper(db, "UPDATE sessions SET node = 'after_sale' WHERE id = 's'")


def edit_session_ended(db):
    tamper(db, "UPDATE sessions SET ended = 0 WHERE id = 'u'")


def edit_session_policy_hash(db):
    tamper(db, "INSERT INTO policies SELECT 'q' || substr(hash, 2), name, source, source_sha256, first_seen "
               "FROM policies", "UPDATE sessions SET policy_hash = 'q' || substr(policy_hash, 2) WHERE id = 't'")


def edit_session_locale(db):
    tamper(db, "UPDATE sessions SET locale = 'de' WHERE id = 't'")


def edit_policy_source(db):
    tamper(db, "UPDATE policies SET source = 'policy = Policy(\"generous\")'")


def edit_policy_source_and_digest(db):
    source = "policy = Policy('generous')"
    tamper(db, "UPDATE policies SET source = ?, source_sha256 = ?", params=(source, sha(source)))


def edit_catalog_text(db):
    tamper(db, "UPDATE catalogs SET text = replace(text, 'shop', 'free')")


def edit_salt(db):
    tamper(db, "UPDATE meta SET value = '00000000000000000000000000000000' WHERE key = 'salt'")


def move_row_to_another_session(db):
    """u's farewell made turn 3 of s, its row, turn and state moved along."""
    tamper(db, "UPDATE audit SET session_id = 's', turn = 3 WHERE seq = 8",
           "UPDATE turns SET session_id = 's', turn = 3 WHERE seq = 8",
           "UPDATE states SET session_id = 's', turn = 4 WHERE seq = 8")


def delete_a_row_in_the_middle(db):
    drop_rows(db, "seq = 4")


def delete_only_a_turn_row(db):
    tamper(db, "DELETE FROM turns WHERE seq = 5")


def delete_only_an_audit_row(db):
    tamper(db, "DELETE FROM audit WHERE seq = 2")


def delete_a_whole_session(db):
    drop_rows(db, "session_id = 't'")
    tamper(db, "DELETE FROM sessions WHERE id = 't'")


def cut_the_last_turn(db):
    drop_rows(db, "seq = 8")


def insert_a_forged_turn_at_the_end(db):
    """A forger who computes the hash right still misses the head kept with each commit."""
    body = query(db, "SELECT body FROM audit WHERE seq = 6")[0][0]
    prev = query(db, "SELECT hash FROM audit WHERE seq = 8")[0][0]
    forged = canonical_json(json.loads(body) | {"seq": 9, "index": 3, "text": "Refund approved."})
    tamper(db, "INSERT INTO audit (seq, session_id, turn, body, prev_hash, hash) VALUES (9, 't', 3, ?, ?, ?)",
           params=(forged, prev, sha(prev + forged)))
    tamper(db, "INSERT INTO turns SELECT 9, session_id, 3, node, message, reply_id, slots, 'Refund approved.', "
               "locale, mode, reachable, raw, retries, fallback, fallback_reason, backend, model, timings, "
               "policy_hash, catalog_hash, created_at, trace FROM turns WHERE seq = 6")
    tamper(db, "INSERT INTO states SELECT session_id, 4, state, node, ended, 9, created_at FROM states WHERE seq = 6")


def insert_only_a_turn_row(db):
    tamper(db, "INSERT INTO turns SELECT 50, session_id, 7, node, message, reply_id, slots, text, locale, "
               "mode, reachable, raw, retries, fallback, fallback_reason, backend, model, timings, "
               "policy_hash, catalog_hash, created_at, trace FROM turns WHERE seq = 6")


def delete_the_last_session_and_fix_the_head(db):
    """u wrote the last two rows: gone with it, and the head in the file moved back to row 6."""
    drop_rows(db, "session_id = 'u'")
    tamper(db, "DELETE FROM sessions WHERE id = 'u'")
    tamper(db, "UPDATE meta SET value = ? WHERE key = 'audit_head'",
           params=("6:" + query(db, "SELECT hash FROM audit WHERE seq = 6")[0][0],))


def drop_the_last_rows_with_the_head(db):
    """u's last turn (the one that ended it) goes; the head and u's row are made to agree."""
    drop_rows(db, "seq >= 8")
    fix_sessions(db)
    tamper(db, "UPDATE meta SET value = ? WHERE key = 'audit_head'",
           params=("7:" + query(db, "SELECT hash FROM audit WHERE seq = 7")[0][0],))


def delete_every_row(db):
    tamper(db, "DELETE FROM turns", "DELETE FROM states", "DELETE FROM audit", "DELETE FROM sessions",
           "DELETE FROM meta WHERE key LIKE 'audit%'")


def edit_and_recompute_the_chain(db):
    tamper(db, "UPDATE turns SET text = 'A free sword.' WHERE seq = 2",
           "UPDATE audit SET body = replace(body, 'The sword costs 50 gold.', 'A free sword.') WHERE seq = 2")
    rehash_from(db, 2)


def lose_the_wal(db, key):
    """Two more turns committed, then the WAL is deleted (the main file alone is what is left).
    Returns the head taken after the commits, as an operator would have kept it."""
    keep_open = sqlite3.connect(str(db))  # a second connection: closing the store does not checkpoint
    keep_open.execute("SELECT 1 FROM meta").fetchall()
    try:
        with Store(db, audit_key=key) as store:
            store._execute("PRAGMA wal_autocheckpoint = 0")
            new_session(store, "w")
            say(store, "w", 0)
            say(store, "w", 1)
            head = store.verify().signed_head
            main_file = db.read_bytes()
    finally:
        keep_open.close()
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    db.write_bytes(main_file)
    return head


KINDS = {
    "edit a turn's text": (edit_text, NOTHING),
    "edit a turn's message": (edit_message, NOTHING),
    "edit a turn's slots": (edit_slots, NOTHING),
    "edit a turn's raw model output": (edit_raw_output, NOTHING),
    "edit an audit row's body": (edit_audit_body, NOTHING),
    "edit a state after a turn": (edit_state_after, NOTHING),
    "edit the first turn's state": (edit_first_state, NOTHING),
    "edit sessions.node": (edit_session_node, NOTHING),
    "edit sessions.ended": (edit_session_ended, NOTHING),
    "edit sessions.policy_hash": (edit_session_policy_hash, NOTHING),
    "edit sessions.locale": (edit_session_locale, NOTHING),
    "edit the policy source": (edit_policy_source, NOTHING),
    "edit the policy source and its digest": (edit_policy_source_and_digest, NOTHING),
    "edit the catalog text": (edit_catalog_text, NOTHING),
    "edit meta.salt": (edit_salt, NOTHING),
    "move a row to another session": (move_row_to_another_session, NOTHING),
    "delete a row in the middle": (delete_a_row_in_the_middle, NOTHING),
    "delete only a turn row": (delete_only_a_turn_row, NOTHING),
    "delete only an audit row": (delete_only_an_audit_row, NOTHING),
    "delete a whole session": (delete_a_whole_session, NOTHING),
    "cut off the last turn": (cut_the_last_turn, NOTHING),
    "insert a forged turn at the end": (insert_a_forged_turn_at_the_end, NOTHING),
    "insert only a turn row": (insert_only_a_turn_row, NOTHING),
    "delete the last session and fix the head": (delete_the_last_session_and_fix_the_head, KEY_OR_HEAD),
    "drop the last rows with meta.audit_head": (drop_the_last_rows_with_the_head, KEY_OR_HEAD),
    "delete every row": (delete_every_row, KEY_OR_HEAD),
    "edit a turn and recompute the chain": (edit_and_recompute_the_chain, KEY_OR_HEAD),
    "lose the WAL with committed turns": (lose_the_wal, HEAD),
}


def apply(kind, db, key=None) -> str | None:
    edit, _ = KINDS[kind]
    if edit is lose_the_wal and is_url(db):
        pytest.skip("a WAL file is SQLite's: a PostgreSQL database has none to lose")
    return edit(db, key) if edit is lose_the_wal else edit(db)


def verify(db, key=None, head=None):
    with Store(db, audit_key=key, create=False, readonly=None) as store:
        return store.verify(head=head)


def head_of(db, key=None) -> str:
    result = verify(db, key)
    assert result.ok
    return result.signed_head


def test_there_are_at_least_25_kinds():
    assert len(KINDS) >= 25


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "keyed"])
def test_the_untouched_file_verifies(db, key):
    build(db, key)
    result = verify(db, key, head=head_of(db, key))
    assert (result.ok, result.count, result.keyed) == (True, 8, key is not None)


@pytest.mark.parametrize("kind", [k for k, (_, needs) in KINDS.items() if needs == NOTHING])
def test_caught_without_a_key_or_a_head(db, kind):
    build(db)
    apply(kind, db)
    result = verify(db)
    assert not result.ok and result.reason, kind


@pytest.mark.parametrize("kind", [k for k, (_, needs) in KINDS.items() if needs != NOTHING])
def test_not_caught_without_a_key_or_a_head(db, kind):
    """What the file alone cannot show: a shorter or recomputed chain is a valid chain."""
    build(db)
    apply(kind, db)
    assert verify(db).ok


@pytest.mark.parametrize("kind", [k for k, (_, needs) in KINDS.items() if needs != HEAD])
def test_caught_with_a_key(db, kind):
    build(db, KEY)
    apply(kind, db, KEY)
    result = verify(db, KEY)
    assert not result.ok and result.reason, kind


@pytest.mark.parametrize("kind", list(KINDS))
def test_caught_with_a_head_kept_elsewhere(db, kind):
    build(db)
    taken = head_of(db)
    returned = apply(kind, db)
    result = verify(db, head=returned or taken)
    assert not result.ok and result.reason, kind


@pytest.mark.parametrize("kind", list(KINDS))
def test_caught_with_a_key_and_a_head(db, kind):
    build(db, KEY)
    taken = head_of(db, KEY)
    returned = apply(kind, db, KEY)
    result = verify(db, KEY, head=returned or taken)
    assert not result.ok and result.reason, kind


@sqlite_only
def test_the_wal_loss_is_caught_by_the_head_and_names_the_missing_rows(db):
    build(db)
    head = lose_the_wal(db, None)
    assert verify(db).ok and verify(db).count == 8  # the file alone: a valid, shorter chain
    result = verify(db, head=head)
    assert (result.ok, result.first_bad) == (False, 9) and "cut" in result.reason


def test_a_head_is_still_valid_after_more_turns(db):
    build(db)
    head = head_of(db)
    with open_store(db) as store:
        say(store, "s", 3)
    result = verify(db, head=head)
    assert result.ok and result.count == 9


def test_a_head_of_a_recomputed_chain_names_the_rewritten_row(db):
    build(db)
    head = head_of(db)
    edit_and_recompute_the_chain(db)
    result = verify(db, head=head)
    assert (result.ok, result.first_bad) == (False, 8) and "rewritten" in result.reason


def test_a_keyed_chain_cannot_be_recomputed_without_the_key(db):
    build(db, KEY)
    edit_and_recompute_the_chain(db)
    result = verify(db, KEY)
    assert (result.ok, result.first_bad) == (False, 2) and "edited" in result.reason


def test_a_forged_head_in_the_file_is_caught_with_the_key(db):
    build(db, KEY)
    drop_the_last_rows_with_the_head(db)
    result = verify(db, KEY)
    assert not result.ok and "signed" in result.reason


def as_version_3(db) -> None:
    """The file as dialogue with schema 3 wrote it: audit bodies without the session's start and
    the salt's digest, a plain chain, no version 4."""
    for seq, body in query(db, "SELECT seq, body FROM audit ORDER BY seq"):
        doc = {k: v for k, v in json.loads(body).items() if k not in ("start", "salt_sha256")}
        tamper(db, "UPDATE audit SET body = ? WHERE seq = ?", params=(canonical_json(doc), seq))
    rehash_from(db, 1)
    tamper(db, "DELETE FROM schema_version WHERE version > 3")


def test_a_version_3_file_opens_verifies_resumes_and_goes_on(db):
    build(db)
    as_version_3(db)
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION and store.verify().ok
        session = store.load_session("s")
        assert (len(session.turns), session.node, session.ended) == (3, "start", False)
        say(store, "s", 3)
        result = store.verify()
    assert (result.ok, result.count) == (True, 9)
    edit_session_node(db)
    assert not verify(db).ok  # an edited session row is caught in an older file too


@pytest.mark.parametrize("what", ["policy source", "catalog text"])
def test_random_overwrites_of_a_stored_text_are_caught(tmp_path, what):
    """40 overwrites of 64 bytes inside the text in the file itself: none leaves it unnoticed."""
    text = ("# " + "the refund window is 30 days; larger refunds need approval. " * 8 + "\n")
    rng = random.Random(7)
    for trial in range(40):
        db = tmp_path / f"{trial}.db"
        with Store(db) as store:
            store.save_versions("shop", "p" * 64, text if what == "policy source" else "policy = 1\n",
                                "shop", "c" * 64, text if what == "catalog text" else "[catalog]\n")
            new_session(store, "s")
            say(store, "s", 0)
        data = bytearray(db.read_bytes())
        start = data.find(text.encode())
        assert start >= 0
        at = start + rng.randrange(len(text) - 64)
        data[at:at + 64] = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz ;=0123456789") for _ in range(64))
        db.write_bytes(bytes(data))
        with Store(db, readonly=True) as store:
            assert not store.verify().ok, trial
