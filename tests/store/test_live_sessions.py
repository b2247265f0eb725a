"""One engine keeps a bounded number of sessions in memory: idle ones are released, a stored
one is resumed from the store on its next use, and `drop_session` releases one at once."""

from __future__ import annotations

import gc
import weakref

import pytest

from . import engines
from .engines import SCRIPT, transcript


@pytest.fixture
def make(request):
    opened = []

    def build(**options):
        engine = engines.engine(**options)
        opened.append(engine)
        return engine

    yield build
    for engine in opened:
        engine.close()


def test_live_sessions_stay_under_the_bound_and_released_ones_are_freed(make):
    engine = make(max_sessions=20)
    first = engine.session("p0")
    first.say(SCRIPT[0])
    gone = weakref.ref(first)
    del first
    for n in range(1, 300):
        engine.session(f"p{n}").say(SCRIPT[0])
        assert engine.live_sessions <= 20
    gc.collect()
    assert gone() is None  # nothing else holds a released session


def test_a_released_stored_session_resumes_with_its_history(make, db):
    engine = make(store=db, max_sessions=5)
    session = engine.session("kept")
    for message in SCRIPT[:3]:
        session.say(message)
    said = transcript(session)
    for n in range(10):
        engine.session(f"other-{n}").say(SCRIPT[0])
    assert "kept" not in engine._sessions
    resumed = engine.session("kept")
    assert resumed is not session and transcript(resumed) == said
    resumed.say(SCRIPT[3])
    assert [t.index for t in resumed.turns] == [0, 1, 2, 3]


def test_the_default_bound_is_a_thousand(make):
    engine = make()
    assert engine.max_sessions == 1000
    for n in range(1100):
        engine.session(f"p{n}")
    assert engine.live_sessions == 1000 and "p0" not in engine._sessions and "p1099" in engine._sessions


def test_a_recently_used_session_is_kept(make):
    engine = make(max_sessions=3)
    for n in range(3):
        engine.session(f"p{n}")
    engine.session("p0")  # used again: now the most recent
    engine.session("p3")
    assert sorted(engine._sessions) == ["p0", "p2", "p3"]


def test_a_session_in_the_middle_of_a_turn_is_not_released(make):
    engine = make(max_sessions=2)
    busy = engine.session("busy")
    with busy._lock:  # as while say() runs in another thread
        for n in range(5):
            engine.session(f"p{n}")
        assert engine._sessions.get("busy") is busy
    engine.session("p5")
    assert "busy" not in engine._sessions


def test_drop_session_releases_one_and_a_stored_one_comes_back(make, db):
    engine = make(store=db)
    engine.session("s").say(SCRIPT[0])
    assert engine.drop_session("s") is True and engine.live_sessions == 0
    assert engine.drop_session("s") is False
    assert len(engine.session("s").turns) == 1


def test_without_a_bound_nothing_is_released(make):
    engine = make(max_sessions=None)
    for n in range(1500):
        engine.session(f"p{n}")
    assert engine.live_sessions == 1500


@pytest.mark.parametrize("bad", [0, -1])
def test_the_bound_is_at_least_one(make, bad):
    with pytest.raises(ValueError, match="max_sessions"):
        make(max_sessions=bad)
