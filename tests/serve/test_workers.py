"""`dialogue serve --workers N`: worker processes share sessions through one SQLite store."""

from __future__ import annotations

import re

import httpx
import pytest

from dialogue.store import Store

from .conftest import Server

pytestmark = pytest.mark.server

BLACKSMITH = "dialogue/examples/policies/blacksmith.py"


def _turn(url: str, session: str, message: str) -> dict:
    # A new connection per request: the kernel hands each to whichever worker accepts first.
    response = httpx.post(f"{url}/v1/sessions/{session}/turns", json={"message": message}, timeout=30,
                          headers={"Connection": "close"})
    assert response.status_code == 200, response.text
    return response.json()


def test_two_workers_hold_one_conversation_each_through_the_store(tmp_path):
    db = tmp_path / "shared.db"
    server = Server(tmp_path, "--db", str(db), "--no-auth", "--workers", "2", policies=(BLACKSMITH,)).start()
    try:
        sessions = []
        for n in range(6):
            created = httpx.post(f"{server.url}/v1/policies/blacksmith/sessions", json={"id": f"player-{n}"},
                                 timeout=30, headers={"Connection": "close"})
            assert created.status_code in (200, 201), created.text
            sessions.append(created.json()["id"])
        for session in sessions:
            # Each turn needs the state the previous one left, whichever worker took it.
            offer = _turn(server.url, session, "how much for a dagger?")
            assert offer["reply_id"] == "OFFER" and offer["state"]["offer"] == "dagger"
            sold = _turn(server.url, session, "deal")
            assert sold["reply_id"] == "SOLD" and sold["index"] == 1 and sold["state"]["gold"] == 5
            again = _turn(server.url, session, "how much for a dagger?")
            assert again["reply_id"] == "TOO_POOR" and again["index"] == 2
        for session in sessions:
            stored = httpx.get(f"{server.url}/v1/sessions/{session}", timeout=30).json()
            assert stored["turns"] == 3 and stored["state"]["inventory"] == ["dagger"]
        closed = httpx.delete(f"{server.url}/v1/sessions/{sessions[0]}", timeout=30, headers={"Connection": "close"})
        assert closed.status_code in (200, 204), closed.text
        for _ in range(4):  # closed for every worker, not only the one that took the DELETE
            refused = httpx.post(f"{server.url}/v1/sessions/{sessions[0]}/turns", json={"message": "hello"},
                                 timeout=30, headers={"Connection": "close"})
            assert refused.status_code == 409 and refused.json()["error"]["code"] == "session_ended", refused.text
    finally:
        assert server.stop() == 0
    workers = set(re.findall(r"Started server process \[(\d+)\]", server.log_path.read_text()))
    assert len(workers) == 2, server.log()
    with Store(db) as store:
        assert store.verify().ok
        assert sum(1 for _ in store.sessions()) == 6
