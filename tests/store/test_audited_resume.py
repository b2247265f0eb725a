"""Resume reads the audited rows: an edited `sessions` row or state snapshot cannot move a session."""

from __future__ import annotations

import dataclasses
import json

import pytest

from dialogue import Engine, ScriptedBackend, load_policy
from dialogue.errors import SessionError, StoreError
from dialogue.store import Store

from ..conftest import EXAMPLES
from .engines import MESSAGE, _filled
from .helpers import query, tamper

REFUNDS = EXAMPLES["refunds"]
# What the customer says and the reply the scripted model picks when it is reachable.
WANTS = {"bye": "GOODBYE", "I want a refund": "ASK_ZIP", "order KT-482913": "ORDER_FOUND",
         "it arrived broken": "REFUND_ISSUED"}


def wanted(prompt, constraint) -> str:
    """The admitted alternative for the reply this message wants, else the last one admitted."""
    message = json.loads(MESSAGE.findall(prompt.user)[-1])
    for alternative in constraint.alternatives:
        text = _filled(alternative, message)
        if text is not None and text.startswith(WANTS.get(message, "-")):
            return text
    return _filled(constraint.alternatives[-1], message) or ""


@pytest.fixture
def refunds(db):
    """An engine on the refunds policy over `db` (opened anew on each call), closed at the end."""
    opened = []

    def make():
        engine = Engine(load_policy(REFUNDS), backend=ScriptedBackend(wanted), store=db, understanding="model")
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.close()


def asked_for_the_zip(refunds) -> None:
    turn = refunds().session("c").say("I want a refund")
    assert (turn.reply.id, turn.node) == ("ASK_ZIP", "verify")


def test_an_edited_session_node_does_not_skip_the_zip_check(refunds, db):
    asked_for_the_zip(refunds)
    tamper(db, "UPDATE sessions SET node = 'order' WHERE id = 'c'")
    session = refunds().session("c")
    assert session.node == "verify"
    replies = [session.say(m).reply.id for m in ("order KT-482913", "it arrived broken")]
    assert "ORDER_FOUND" not in replies and "REFUND_ISSUED" not in replies
    assert session.state.verified is False and session.state.refund_issued is False


def test_verify_reports_the_edited_session_node(refunds, db):
    asked_for_the_zip(refunds)
    tamper(db, "UPDATE sessions SET node = 'order' WHERE id = 'c'")
    with Store(db) as store:
        result = store.verify()
    assert (result.ok, result.first_bad) == (False, 1)
    assert "session 'c' has node 'order' in the sessions table, but its audited turns say 'verify'" in result.reason


def test_an_edited_state_snapshot_does_not_move_the_session(refunds, db):
    asked_for_the_zip(refunds)
    tamper(db, "UPDATE states SET node = 'outcome', state = replace(state, '\"verified\": false', "
               "'\"verified\": true') WHERE session_id = 'c' AND turn = 1")
    session = refunds().session("c")
    assert (session.node, session.state.verified) == ("verify", False)


def test_an_ended_session_stays_ended_when_its_row_is_edited(refunds, db):
    assert refunds().session("c").say("bye").reply.id == "GOODBYE"
    tamper(db, "UPDATE sessions SET ended = 0 WHERE id = 'c'")
    session = refunds().session("c")
    assert session.ended
    with pytest.raises(SessionError, match="has ended"):
        session.say("I want a refund")
    with Store(db) as store, pytest.raises(SessionError, match="has ended"):
        store.record_turn(dataclasses.replace(store.load_session("c").turns[0], index=1), {})


def test_a_live_session_is_not_ended_by_its_row(refunds, db):
    asked_for_the_zip(refunds)
    tamper(db, "UPDATE sessions SET ended = 1 WHERE id = 'c'")
    session = refunds().session("c")
    assert not session.ended and session.say("I want a refund").reply.id == "ASK_ZIP"


def test_an_edited_audit_row_is_refused_on_resume(refunds, db):
    asked_for_the_zip(refunds)
    tamper(db, "UPDATE audit SET body = replace(body, '\"node\":\"verify\"', '\"node\":\"order\"') WHERE seq = 1")
    assert query(db, "SELECT count(*) FROM audit WHERE body LIKE '%\"node\":\"order\"%'") == [(1,)]
    with pytest.raises(StoreError, match="audit row 1 of session 'c' does not match its hash"):
        refunds().session("c")
