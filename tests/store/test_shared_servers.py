"""Two `dialogue serve` processes on one PostgreSQL database, as two hosts behind a load
balancer: clients hammering the same and different sessions through both, one server
SIGKILLed mid-turn, the database restarted under load. After each: no committed turn lost,
no turn taken twice, no half turn, the chain valid, and the servers still serving."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import httpx
import pytest

from dialogue.store import Store

from ..serve.conftest import Server

pytestmark = pytest.mark.server
GATE_POLICY = "gate"  # tests/serve/gate.py: a turn that can be held until a file exists


@pytest.fixture
def url(postgres_server):
    return postgres_server.create_database("shared")


@pytest.fixture
def servers(tmp_path, url):
    """Two servers on the database at `url` (scripted model, no encoder to load), started together."""
    pair = [Server(tmp_path, "--db", url, "--no-auth", "--understanding", "model") for _ in range(2)]
    starters = [threading.Thread(target=server.start) for server in pair]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join()
    assert all(server.process is not None and server.process.poll() is None for server in pair)
    yield pair
    for server in pair:
        server.stop()


def create(client, session_id, state=None):
    body = {"id": session_id} | ({"state": state} if state else {})
    response = client.post(f"/v1/policies/{GATE_POLICY}/sessions", json=body)
    assert response.status_code in (200, 201), response.text


class Load:
    """Client threads sending turns with an Idempotency-Key each, round-robin over the servers,
    retrying a failed request (on the next server) until it is answered 200."""

    def __init__(self, servers: list[Server], sessions: list[str], turns: int, deadline_s: float = 60) -> None:
        self.servers, self.sessions, self.turns = servers, sessions, turns
        self.deadline = time.monotonic() + deadline_s
        self.answered: dict[str, dict] = {}  # idempotency key -> the turn the client was given
        self.statuses: list[tuple[float, int, int]] = []  # (when, server, HTTP status or 0 for no answer)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(n,)) for n in range(len(sessions))]

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def wait_for(self, answered: int) -> None:
        while len(self.answered) < answered and time.monotonic() < self.deadline:
            time.sleep(0.01)

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

    def _client(self, n: int) -> None:
        order = itertools.cycle(range(len(self.servers)))
        for _ in range(n):
            next(order)
        session = self.sessions[n]
        with httpx.Client(timeout=30) as http:
            for turn in range(self.turns):
                key = f"{session}-{turn}-{uuid.uuid4().hex[:6]}"
                while time.monotonic() < self.deadline:
                    index = next(order)
                    status, body = self._send(http, index, session, key)
                    with self.lock:
                        self.statuses.append((time.monotonic(), index, status))
                    if status == 200:
                        with self.lock:
                            self.answered[key] = body
                        break
                    time.sleep(0.05)

    def _send(self, http, index: int, session: str, key: str) -> tuple[int, dict | None]:
        server = self.servers[index]
        if server.process.poll() is not None:
            return 0, None
        try:
            response = http.post(f"{server.url}/v1/sessions/{session}/turns", json={"message": "let me pass"},
                                 headers={"Idempotency-Key": key})
        except httpx.TransportError:
            return 0, None
        return response.status_code, response.json() if response.status_code == 200 else None


def check_store(url: str, load: Load) -> None:
    """Every answered turn is stored, once, under its key; no half turn; the chain verifies."""
    with Store(url, readonly=True) as store:
        result = store.verify()
        assert result.ok, result
        stored = {}
        for session in {s["id"] for s in store.sessions()}:
            turns = list(store.export(session))
            assert [t["index"] for t in turns] == list(range(len(turns)))  # no gap, no turn twice
            for turn in turns:
                key = (turn["trace"].get("meta") or {}).get("idempotency_key")
                assert key not in stored, f"turn under {key} stored twice"
                stored[key] = turn
        assert result.count == len(stored)
    for key, answer in load.answered.items():
        assert key in stored, f"the turn answered under {key} was lost"
        assert (stored[key]["session_id"], stored[key]["index"]) == (answer["session_id"], answer["index"])
    from .helpers import query

    counts = query(url, "SELECT (SELECT count(*) FROM audit), (SELECT count(*) FROM turns), "
                        "(SELECT count(*) FROM states WHERE turn > 0), (SELECT sum(turns) FROM sessions)")
    assert counts == [(result.count,) * 4]


def test_two_servers_share_sessions_and_one_chain(servers, url):
    with httpx.Client(base_url=servers[0].url) as http:
        sessions = [f"player-{n}" for n in range(6)]
        for session in sessions:
            create(http, session)
    sessions += ["player-0", "player-0", "player-1"]  # the same session from several clients at once
    load = Load(servers, sessions, turns=12).start()
    load.join()
    assert len(load.answered) == len(sessions) * 12
    assert {status for _, _, status in load.statuses} <= {200, 409}  # 409: the session was busy
    check_store(url, load)
    assert {server for _, server, status in load.statuses if status == 200} == {0, 1}


def test_a_server_killed_mid_turn_loses_nothing_and_the_other_serves_on(servers, url, tmp_path):
    held, gate = "held-session", tmp_path / "gate-open"
    with httpx.Client(base_url=servers[0].url, timeout=30) as http:
        create(http, held, state={"gate": str(gate)})
        sessions = [f"player-{n}" for n in range(4)]
        for session in sessions:
            create(http, session)
        in_flight = threading.Thread(target=lambda: _ignore(lambda: http.post(
            f"/v1/sessions/{held}/turns", json={"message": "let me pass"}, headers={"Idempotency-Key": "held-1"})))
        in_flight.start()
        time.sleep(0.5)  # the held turn is running on server 0 (its effect waits for the gate file)
        load = Load(servers, sessions, turns=60).start()
        load.wait_for(40)  # under way on both servers
        servers[0].process.kill()  # SIGKILL, mid-turn for the held session and maybe others
        servers[0].process.wait()
        in_flight.join()
        load.join()
    assert len(load.answered) == len(sessions) * 60  # every turn was answered, by server 1 after the kill
    killed_at = max(when for when, server, status in load.statuses if server == 0 and status == 200)
    assert any(server == 0 and status == 0 for _, server, status in load.statuses)  # the kill hit the load
    assert any(server == 1 and status == 200 and when > killed_at for when, server, status in load.statuses)
    gate.write_text("open")
    with httpx.Client(base_url=servers[1].url, timeout=30) as http:  # the held turn never committed
        resumed = http.post(f"/v1/sessions/{held}/turns", json={"message": "let me pass"},
                            headers={"Idempotency-Key": "held-1"})
        assert resumed.status_code == 200 and resumed.json()["index"] == 0
    load.answered["held-1"] = resumed.json()
    check_store(url, load)


def test_the_database_restarted_under_load(servers, url, postgres_server):
    with httpx.Client(base_url=servers[0].url) as http:
        sessions = [f"player-{n}" for n in range(6)]
        for session in sessions:
            create(http, session)
    load = Load(servers, sessions, turns=80).start()
    load.wait_for(60)
    restarted = time.monotonic()
    postgres_server.restart()  # fast shutdown: every connection of both servers is cut
    load.join()
    assert len(load.answered) == len(sessions) * 80
    for server in (0, 1):  # each server reconnected and served again
        assert any(s == server and status == 200 and when > restarted + 0.5 for when, s, status in load.statuses)
    assert {status for _, _, status in load.statuses} <= {0, 200, 409, 503}
    check_store(url, load)


def _ignore(call) -> None:
    try:
        call()
    except httpx.TransportError:
        pass  # the server was killed while it held the request
