"""Corrections of stored turns on real SQLite files: what they keep, append-only, upgrades, bad input."""

from __future__ import annotations

import sqlite3

import pytest
from sqlite_utils import Database

from dialogue.errors import CatalogError, SessionError, StoreError
from dialogue.store import SCHEMA_VERSION, Store
from dialogue.store.sqlite import MIGRATIONS

from ..conftest import ROOT
from .engines import FLOW, played
from .helpers import downgrade, execute, make_turn, query, schema, sqlite_only, stored_bytes

DAGGER_THEN_HELMET = [("a dagger?", "OFFER(item=dagger, price=15)"), ("do u fix helmets", "GREETING")]


@pytest.fixture
def two_turns(db):
    """Session player-7 on the blacksmith: an offer (which changes the state), then a wrong GREETING."""
    return played(db, "player-7", DAGGER_THEN_HELMET, state={"gold": 20})


def test_a_correction_keeps_the_message_node_and_state_before_the_turn(db, two_turns):
    with Store(db) as store:
        record = store.correct("player-7", 1, "REPAIRED", by="j.doe", note="asked for a repair")
        (listed,) = store.corrections()
        seq = store.load_session("player-7").turns[1].seq
    assert listed == record
    assert (record.session_id, record.turn, record.seq, record.chosen, record.reply_id) == \
        ("player-7", 1, seq, "GREETING", "REPAIRED")
    assert (record.message, record.node, record.by, record.note) == \
        ("do u fix helmets", "main", "j.doe", "asked for a repair")
    assert record.state == two_turns[0].state.model_dump(mode="json")  # the state after turn 0
    assert record.state["offer"] == "dagger" and record.policy_name == "blacksmith" and record.at
    assert record.supersedes is None


def test_a_correction_of_the_first_turn_has_the_initial_state(db, two_turns):
    with Store(db) as store:
        record = store.correct("player-7", 0, "TOO_POOR", by="j.doe")
    assert record.state["gold"] == 20 and record.state["offer"] is None and record.chosen == "OFFER"


def test_a_later_correction_supersedes_and_both_stay_in_the_file(db, two_turns):
    with Store(db) as store:
        store.correct("player-7", 1, "RUMOUR", by="a")
        second = store.correct("player-7", 1, "REPAIRED", by="b")
        standing = store.corrections()
        assert store.verify().ok  # corrections leave the audit chain as it was
    assert [(r.reply_id, r.by, r.supersedes) for r in standing] == [("REPAIRED", "b", "RUMOUR")]
    assert second == standing[0]
    assert query(db, "SELECT reply_id FROM corrections ORDER BY id") == [("RUMOUR",), ("REPAIRED",)]


def test_corrections_are_append_only(db, two_turns):
    with Store(db) as store:
        store.correct("player-7", 1, "REPAIRED", by="j.doe")
    for sql in ("UPDATE corrections SET reply_id = 'GREETING'", "DELETE FROM corrections"):
        with pytest.raises(Exception, match="corrections rows are append-only"):
            execute(db, sql)
    assert query(db, "SELECT reply_id FROM corrections") == [("REPAIRED",)]


def test_a_hashed_message_is_listed_without_its_text(db):
    played(db, "s", [("my card number is 4111", "GREETING")], store_messages=False)
    with Store(db) as store:
        record = store.correct("s", 0, "RUMOUR", by="j.doe")
    assert record.message is None and record.chosen == "GREETING"
    assert b"4111" not in stored_bytes(db)


def test_corrections_are_listed_by_policy(db):
    played(db, "b-1", [("hello", "GREETING")])
    played(db, "f-1", [("hello", "ASK_NUMBER")], policy_path=FLOW)
    with Store(db) as store:
        store.correct("f-1", 0, "REFUND", by="x")
        store.correct("b-1", 0, "RUMOUR", by="x")
        assert [r.session_id for r in store.corrections("blacksmith")] == ["b-1"]
        assert [r.session_id for r in store.corrections()] == ["b-1", "f-1"]
        assert store.corrections("nobody") == []


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("session, turn, reply_id, error, message", [
    ("nobody", 0, "REPAIRED", SessionError,
     r"no session 'nobody' in .*(support.db|store_[0-9]+); see `dialogue sessions`"),
    ("player-7", 2, "REPAIRED", SessionError, r"session 'player-7' has no turn 2: it has turns 0 to 1"),
    ("player-7", -1, "REPAIRED", SessionError, r"has no turn -1"),
    ("player-7", 1, "REPAIRD", CatalogError, r"(?s)REPAIRD is not a reply of catalog 'blacksmith' .*"
                                             r"did you mean 'REPAIRED'\?"),
    ("player-7", 1, "repaired", CatalogError, r"did you mean 'REPAIRED'\?"),
    ("player-7", 1, "repaird", CatalogError, r"did you mean 'REPAIRED'\?"),
    ("player-7", 1, "XYZZY", CatalogError, r"its ids: GREETING, OFFER, .*, FALLBACK"),
])
def test_bad_corrections_are_refused_and_nothing_is_written(db, two_turns, session, turn, reply_id, error,
                                                            message):
    with Store(db) as store:
        with pytest.raises(error, match=message):
            store.correct(session, turn, reply_id, by="j.doe")
    assert query(db, "SELECT count(*) FROM corrections") == [(0,)]


def test_a_correction_names_its_reviewer(db, two_turns):
    with Store(db) as store, pytest.raises(ValueError, match="names its reviewer"):
        store.correct("player-7", 1, "REPAIRED", by=" ")


def test_a_retired_line_is_refused(db):
    text = (ROOT / "tests" / "fixtures" / "policies" / "shop.toml").read_text() + \
        '\n[[response]]\nid = "OLD_OFFER"\ntext = "Gone."\nstatus = "retired"\n'
    with Store(db) as store:
        store.save_versions("shop", "p" * 64, "policy source", "shop", "r" * 64, text)
        store.create_session("s", policy_name="shop", policy_hash="p" * 64, catalog_hash="r" * 64,
                             state={}, locale="en", mode="prompted", node="main")
        store.record_turn(make_turn("s", 0, policy_hash="p" * 64, catalog_hash="r" * 64), {})
        with pytest.raises(CatalogError, match="OLD_OFFER is retired in catalog 'shop'"):
            store.correct("s", 0, "OLD_OFFER", by="j.doe")
        assert store.correct("s", 0, "GREETING", by="j.doe").chosen == "OFFER"


def test_a_read_only_store_refuses_a_correction(db, two_turns):
    with Store(db, readonly=True) as store, pytest.raises(StoreError, match="read-only; correcting .* needs write"):
        store.correct("player-7", 1, "REPAIRED", by="j.doe")


# -- a version 2 file ---------------------------------------------------------------------------


def version_2_schema(path) -> set:
    """The schema the version 1 and 2 migrations make on an empty file."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    db = Database(conn)
    for _, migrate in MIGRATIONS[:2]:
        migrate(db)
    conn.close()
    return schema(path)


@sqlite_only
def test_a_version_2_file_gains_corrections_and_keeps_everything(db, tmp_path, two_turns):
    downgrade(db, 2)
    assert schema(db) == version_2_schema(tmp_path / "v2.db")  # what dialogue with schema 2 wrote
    assert query(db, "SELECT max(version) FROM schema_version") == [(2,)]
    before = query(db, "SELECT seq, session_id, turn, message, reply_id FROM turns ORDER BY seq")
    with Store(db) as store:
        assert query(db, "SELECT max(version) FROM schema_version") == [(SCHEMA_VERSION,)] == [(5,)]
        assert store.verify().ok and len(store.load_session("player-7").turns) == 2
        store.correct("player-7", 1, "REPAIRED", by="j.doe")
    assert query(db, "SELECT seq, session_id, turn, message, reply_id FROM turns ORDER BY seq") == before
    with Store(db) as store:  # opened again: nothing to upgrade, the correction is there
        assert [r.reply_id for r in store.corrections()] == ["REPAIRED"]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn = sqlite3.connect(str(db), isolation_level=None)
        try:
            conn.execute("DELETE FROM corrections")
        finally:
            conn.close()


@sqlite_only
def test_a_read_only_version_2_file_is_read_as_it_is(db, two_turns, make_readonly):
    downgrade(db, 2)
    before = db.read_bytes()
    make_readonly(db)
    with Store(db, readonly=None) as store:  # as the CLI opens it
        assert store.readonly and store.schema_version == 2
        assert len(store.load_session("player-7").turns) == 2 and store.verify().ok
        assert store.corrections() == []
        with pytest.raises(StoreError, match="read-only; correcting .* needs write access"):
            store.correct("player-7", 1, "REPAIRED", by="j.doe")
    assert db.read_bytes() == before
