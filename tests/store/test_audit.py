"""The audit chain: intact, then edited, deleted and inserted rows, each found at its sequence number."""

from __future__ import annotations

import hashlib
import json

import pytest

from dialogue.store import GENESIS, canonical_json

from .helpers import new_session, open_store, query, say, tamper


@pytest.fixture
def chain(db):
    """A closed store with 6 turns over two sessions: seq 1..6, sessions s, t, s, t, s, t."""
    with open_store(db) as store:
        new_session(store, "s")
        new_session(store, "t")
        for index in range(3):
            say(store, "s", index)
            say(store, "t", index)
    return db


def verify(db):
    with open_store(db) as store:
        return store.verify()


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_an_intact_chain_verifies_with_its_count_and_head(chain):
    result = verify(chain)
    assert (result.ok, result.count, result.first_bad, result.reason) == (True, 6, None, None)
    assert result.head == query(chain, "SELECT hash FROM audit WHERE seq = 6")[0][0]


def test_an_empty_store_verifies(db):
    with open_store(db) as store:
        assert (store.verify().ok, store.verify().count) == (True, 0)


def test_each_row_hashes_the_previous_hash_and_its_canonical_json(chain):
    rows = query(chain, "SELECT seq, body, prev_hash, hash FROM audit ORDER BY seq")
    prev = GENESIS
    for seq, body, prev_hash, digest in rows:
        assert prev_hash == prev and digest == sha(prev_hash + body)
        doc = json.loads(body)
        assert canonical_json(doc) == body and doc["seq"] == seq
        assert {"message", "reachable", "raw", "reply_id", "slots", "text", "backend", "model", "timings",
                "policy_hash", "catalog_hash", "after"} <= doc.keys()
        prev = digest


def test_editing_a_stored_reply_text_is_found(chain):
    tamper(chain, "UPDATE turns SET text = 'You get a free sword.' WHERE seq = 3")
    result = verify(chain)
    assert (result.ok, result.first_bad, result.count) == (False, 3, 2)
    assert "'text'" in result.reason


def test_editing_an_audit_row_is_found(chain):
    tamper(chain, "UPDATE audit SET body = replace(body, 'The sword', 'A free sword') WHERE seq = 4")
    assert (verify(chain).first_bad, "edited" in verify(chain).reason) == (4, True)


def test_editing_a_row_and_its_turn_and_rehashing_it_breaks_the_next_link(chain):
    body = query(chain, "SELECT body FROM audit WHERE seq = 2")[0][0].replace("The sword", "A free sword")
    prev = query(chain, "SELECT prev_hash FROM audit WHERE seq = 2")[0][0]
    tamper(chain, "UPDATE audit SET body = ?, hash = ? WHERE seq = 2", params=(body, sha(prev + body)))
    tamper(chain, "UPDATE turns SET text = 'A free sword costs 50 gold.' WHERE seq = 2")
    result = verify(chain)
    assert result.first_bad == 3 and "does not chain" in result.reason


def test_editing_a_state_snapshot_is_found(chain):
    tamper(chain, "UPDATE states SET state = '{\"gold\": 9999}' WHERE seq = 5")
    result = verify(chain)
    assert result.first_bad == 5 and "'after'" in result.reason


def test_editing_a_message_or_slots_is_found(chain):
    tamper(chain, "UPDATE turns SET message = 'I never said that' WHERE seq = 1")
    assert verify(chain).first_bad == 1


def test_editing_the_policy_source_is_found_at_its_first_turn(chain):
    source = "policy = Policy('generous')"
    tamper(chain, "UPDATE policies SET source = ?, source_sha256 = ?", params=(source, sha(source)))
    result = verify(chain)
    assert result.first_bad == 1 and "policy_source_sha256" in result.reason


@pytest.mark.parametrize("seq", [1, 4])
def test_deleting_an_audit_row_and_its_turn_is_found(chain, seq):
    tamper(chain, f"DELETE FROM turns WHERE seq = {seq}", f"DELETE FROM states WHERE seq = {seq}",
           f"DELETE FROM audit WHERE seq = {seq}")
    result = verify(chain)
    assert (result.first_bad, result.reason) == (seq, f"audit row {seq} is missing")


def test_deleting_only_a_turn_row_is_found(chain):
    tamper(chain, "DELETE FROM turns WHERE seq = 5")
    result = verify(chain)
    assert result.first_bad == 5 and "missing from the turns table" in result.reason


def test_deleting_only_an_audit_row_is_found(chain):
    tamper(chain, "DELETE FROM audit WHERE seq = 2")
    assert verify(chain).first_bad == 2


def test_cutting_off_the_last_turn_is_found(chain):
    tamper(chain, "DELETE FROM turns WHERE seq = 6", "DELETE FROM states WHERE seq = 6",
           "DELETE FROM audit WHERE seq = 6")
    result = verify(chain)
    assert result.first_bad == 6 and "cut" in result.reason


def test_inserting_a_forged_turn_at_the_end_is_found(chain):
    """A forger who computes the hash right still misses the head kept with each commit."""
    body, prev = query(chain, "SELECT body, hash FROM audit WHERE seq = 6")[0]
    doc = json.loads(body) | {"seq": 7, "index": 3, "text": "Refund approved."}
    forged = canonical_json(doc)
    tamper(chain, "INSERT INTO audit (seq, session_id, turn, body, prev_hash, hash) VALUES (7, 't', 3, ?, ?, ?)",
           params=(forged, prev, sha(prev + forged)))
    tamper(chain, "INSERT INTO turns SELECT 7, session_id, 3, node, message, reply_id, slots, 'Refund approved.', "
                  "locale, mode, reachable, raw, retries, fallback, fallback_reason, backend, model, timings, "
                  "policy_hash, catalog_hash, created_at, trace FROM turns WHERE seq = 6")
    tamper(chain, "INSERT INTO states SELECT session_id, 4, state, node, ended, 7, created_at FROM states "
                  "WHERE seq = 6")
    result = verify(chain)
    assert result.first_bad == 7 and "added after the last commit" in result.reason


def test_inserting_a_row_in_the_middle_is_found(chain):
    tamper(chain, *[f"UPDATE audit SET seq = seq + 1 WHERE seq = {seq}" for seq in range(6, 2, -1)])
    body, prev = query(chain, "SELECT body, hash FROM audit WHERE seq = 2")[0]
    forged = canonical_json(json.loads(body) | {"seq": 3, "text": "Refund approved."})
    tamper(chain, "INSERT INTO audit (seq, session_id, turn, body, prev_hash, hash) VALUES (3, 't', 9, ?, ?, ?)",
           params=(forged, prev, sha(prev + forged)))
    assert verify(chain).first_bad == 3


def test_inserting_only_a_turn_row_is_found(chain):
    tamper(chain, "INSERT INTO turns SELECT 50, session_id, 7, node, message, reply_id, slots, text, locale, "
                  "mode, reachable, raw, retries, fallback, fallback_reason, backend, model, timings, "
                  "policy_hash, catalog_hash, created_at, trace FROM turns WHERE seq = 6")
    result = verify(chain)
    assert result.first_bad == 50 and "has no audit row" in result.reason


def test_rewriting_the_whole_chain_verifies_but_changes_its_head(chain):
    """Without a key, a full rewrite verifies: the head printed by `audit verify` is the anchor to keep."""
    head = verify(chain).head
    tamper(chain, "UPDATE states SET state = replace(state, '\"gold\": 10', '\"gold\": 11')",
           "UPDATE audit SET body = replace(body, '\"gold\":10', '\"gold\":11')")
    prev = GENESIS
    for seq, body in query(chain, "SELECT seq, body FROM audit ORDER BY seq"):
        tamper(chain, "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", params=(prev, sha(prev + body), seq))
        prev = sha(prev + body)
    tamper(chain, "UPDATE meta SET value = ? WHERE key = 'audit_head'", params=(f"6:{prev}",))
    result = verify(chain)
    assert result.ok and result.head == prev != head
