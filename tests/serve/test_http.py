"""`dialogue serve` over real HTTP: a subprocess on 127.0.0.1, talked to with httpx."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid

import pytest

from dialogue.store import Store

from .conftest import ROOT, TOKENS, Server

pytestmark = pytest.mark.server
GAME = TOKENS["game-server"]
ISSUE_PATHS = ["/v1/policies/{policy}/sessions", "/v1/sessions/{session_id}/turns", "/v1/sessions/{session_id}",
               "/v1/policies", "/v1/policies/{policy}", "/healthz", "/readyz", "/metrics"]


def new_id() -> str:
    return "player-" + uuid.uuid4().hex[:8]


def start(client, policy="blacksmith", **body):
    response = client.post(f"/v1/policies/{policy}/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def say(client, session, message, **kwargs):
    return client.post(f"/v1/sessions/{session}/turns", json={"message": message}, **kwargs)


def error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["status"] == status
    assert "Traceback" not in response.text
    return body["error"]["message"]


def test_a_whole_conversation_with_the_store(served):
    with served.client(GAME) as client:
        session = start(client, id=new_id())
        assert session["state"]["gold"] == 20 and session["node"] == "main" and session["turns"] == 0
        offer = say(client, session["id"], "how much for a dagger?").json()
        assert offer["reply_id"] == "OFFER" and offer["slots"] == {"item": "dagger", "price": "15"}
        assert offer["lines"][0]["text"] == offer["text"] and "15" in offer["text"]
        assert offer["state"]["offer"] == "dagger" and offer["fallback"] is False and offer["trace"] is None
        sold = say(client, session["id"], "deal, here's the gold", params={"trace": 1}).json()
        assert sold["reply_id"] == "SOLD" and sold["index"] == 1 and sold["state"]["gold"] == 5
        assert sold["trace"]["reachable"] and sold["trace"]["understanding"] == "encoder"
        stored = client.get(f"/v1/sessions/{session['id']}").json()
        assert [h["reply_id"] for h in stored["history"]] == ["OFFER", "SOLD"]
        assert stored["state"]["inventory"] == ["dagger"]
        turns = client.get(f"/v1/sessions/{session['id']}/turns").json()["turns"]
        assert [t["index"] for t in turns] == [0, 1] and turns[1]["text"] == sold["text"]
    with Store(served.db, readonly=True) as store:
        exported = list(store.export(session["id"]))
        assert [t["reply_id"] for t in exported] == ["OFFER", "SOLD"]
        assert exported[0]["trace"]["meta"]["client"] == "game-server"  # the token's name, audited
        assert store.verify().ok


def test_policies_are_listed_with_their_catalog_versions(served):
    with served.client(GAME) as client:
        names = [p["name"] for p in client.get("/v1/policies").json()["policies"]]
        assert names == ["blacksmith", "gate"]
        policy = client.get("/v1/policies/blacksmith").json()
        assert policy["nodes"] == ["main"] and policy["catalog"]["version"] == "1.0.0"
        assert len(policy["catalog"]["hash"]) == 64
        error(client.get("/v1/policies/dragon"), 404, "unknown_policy")


def test_auth_failures_are_401_and_never_reach_a_session(served):
    with served.client() as anonymous:
        assert "Bearer" in error(anonymous.get("/v1/policies"), 401, "unauthorized")
        assert anonymous.get("/healthz").status_code == 200  # probes need no token
    with served.client("not-a-token-this-server-knows") as stranger:
        response = stranger.post("/v1/policies/blacksmith/sessions", json={})
        error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
    with served.client(TOKENS["support-desk"]) as other:
        assert other.get("/v1/policies").status_code == 200


def test_bad_json_unknown_sessions_and_bad_requests_are_clear(served):
    with served.client(GAME) as client:
        session = start(client)["id"]
        bad = client.post(f"/v1/sessions/{session}/turns", content=b'{"message": "hi"',
                          headers={"Content-Type": "application/json"})
        assert "not valid JSON" in error(bad, 400, "invalid_json")
        assert "message" in error(client.post(f"/v1/sessions/{session}/turns", json={"text": "hi"}),
                                  422, "invalid_request")
        form = client.post(f"/v1/sessions/{session}/turns", data={"message": "hi"})
        assert "application/json" in error(form, 415, "unsupported_media_type")
        error(say(client, "no-such-session", "hello"), 404, "unknown_session")
        error(client.get("/v1/sessions/no-such-session"), 404, "unknown_session")
        error(client.get("/v1/nothing-here"), 404, "not_found")
        invalid_state = client.post("/v1/policies/blacksmith/sessions", json={"state": {"gold": "lots"}})
        assert "gold" in error(invalid_state, 422, "invalid_session")


def test_a_message_over_the_limit_is_rejected_and_the_session_stays(served):
    with served.client(GAME) as client:
        session = start(client)["id"]
        assert "over the limit of 200" in error(say(client, session, "a" * 201), 422, "message_rejected")
        too_big = client.post(f"/v1/sessions/{session}/turns", json={"message": "b" * 5000})
        error(too_big, 413, "body_too_large")
        assert say(client, session, "hello").json()["index"] == 0


def test_concurrent_turns_on_one_session_are_refused_not_interleaved(served, tmp_path):
    gate = tmp_path / "open"
    with served.client(GAME) as client:
        session = start(client, "gate", state={"gate": str(gate)})["id"]
        first: dict = {}
        thread = threading.Thread(target=lambda: first.update(r=say(client, session, "let me through")))
        thread.start()
        try:
            busy = _await_in_flight(client, session)
            error(busy, 409, "turn_in_progress")
        finally:
            gate.touch()
            thread.join(30)
        assert first["r"].status_code == 200 and first["r"].json()["state"]["passed"] == 1
        after = say(client, session, "again").json()
        assert after["index"] == 1 and after["state"]["passed"] == 2


def _await_in_flight(client, session):
    """A second turn, sent once the server's metrics show the first one in flight at the gate."""
    for _ in range(600):
        if 'dialogue_turns_in_flight{policy="gate"} 1' in client.get("/metrics").text:
            return say(client, session, "me too")
        time.sleep(0.05)
    pytest.fail("the first turn never showed as in flight")


def test_turns_of_different_sessions_run_concurrently(served):
    with served.client(GAME) as client:
        ids = [start(client)["id"] for _ in range(8)]
        results: dict = {}

        def talk(id):
            results[id] = [say(client, id, m).json()["reply_id"] for m in ("how much for a dagger?", "deal")]

        threads = [threading.Thread(target=talk, args=(id,)) for id in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(results[id] == ["OFFER", "SOLD"] for id in ids)


def test_an_idempotency_key_replays_the_stored_turn(served):
    with served.client(GAME) as client:
        session = start(client)["id"]
        key = {"Idempotency-Key": "turn-" + uuid.uuid4().hex}
        first = say(client, session, "how much for a dagger?", headers=key)
        again = say(client, session, "how much for a dagger?", headers=key)
        assert again.status_code == 200 and again.headers["idempotency-replayed"] == "true"
        assert again.json() == first.json()
        assert client.get(f"/v1/sessions/{session}").json()["turns"] == 1
        reused = say(client, session, "something else", headers=key)
        assert "another message" in error(reused, 422, "idempotency_key_reused")


def test_ending_a_session_refuses_later_turns_and_keeps_its_audited_turns(served):
    with served.client(GAME) as client:
        session = start(client)["id"]
        assert say(client, session, "hello").status_code == 200
        assert client.delete(f"/v1/sessions/{session}").json()["ended"] is True
        error(say(client, session, "hello"), 409, "session_ended")
        assert client.get(f"/v1/sessions/{session}").json()["ended"] is True
    with Store(served.db, readonly=True) as store:
        assert len(store.load_session(session).turns) == 1
        assert store.verify().ok  # the server's own table of closed sessions is no part of the chain


def test_a_restarted_server_resumes_sessions_and_replays_keys_from_the_store(served):
    key = {"Idempotency-Key": "before-restart"}
    with served.client(GAME) as client:
        session = start(client, id=new_id())["id"]
        offer = say(client, session, "how much for a shield?", headers=key).json()
        assert offer["reply_id"] == "TOO_POOR"
        offer = say(client, session, "then a dagger").json()
        closed = start(client)["id"]
        client.delete(f"/v1/sessions/{closed}")
    served.stop()
    assert "Finished server process" in served.log()  # a graceful shutdown, not a kill
    served.start()
    with served.client(GAME) as client:
        resumed = client.get(f"/v1/sessions/{session}").json()
        assert resumed["turns"] == 2 and resumed["state"]["offer"] == "dagger"
        replayed = say(client, session, "how much for a shield?", headers=key)
        assert replayed.headers["idempotency-replayed"] == "true" and replayed.json()["index"] == 0
        assert say(client, session, "deal").json()["reply_id"] == "SOLD"
        error(say(client, closed, "hello"), 409, "session_ended")  # closed before the restart


def test_the_openapi_schema_is_served_and_valid(served):
    from jsonschema import Draft202012Validator

    with served.client() as client:
        schema = client.get("/openapi.json").json()
        page = client.get("/docs")
        assert page.status_code == 200 and "/openapi.json" in page.text
        # The docs page works offline: every script and stylesheet it names is served here.
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
    assert schema["openapi"].startswith("3.1")
    for path in ISSUE_PATHS:
        assert path in schema["paths"], path
    assert set(schema["paths"]["/v1/sessions/{session_id}"]) == {"get", "delete"}
    for name, component in schema["components"]["schemas"].items():
        Draft202012Validator.check_schema(component)
    refs = _refs(schema)
    assert refs and all(ref.removeprefix("#/components/schemas/") in schema["components"]["schemas"]
                        for ref in refs)


def _refs(value) -> list[str]:
    if isinstance(value, dict):
        return ([value["$ref"]] if "$ref" in value else []) + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def test_two_servers_on_one_store_take_turns_of_one_session_in_order(served, token_file):
    other = Server(served.tmp, "--db", str(served.db), "--token-file", str(token_file)).start()
    try:
        with served.client(GAME) as a, other.client(GAME) as b:
            session = start(a)["id"]
            assert say(a, session, "how much for a dagger?").json()["index"] == 0
            assert say(b, session, "any news?").json()["index"] == 1  # b reads it from the store
            key = {"Idempotency-Key": "shared-" + session}
            took = say(a, session, "deal", headers=key).json()  # a's copy is stale: it reloads
            assert took["index"] == 2 and took["reply_id"] == "SOLD"
            replayed = say(b, session, "deal", headers=key)  # b is stale now: it finds the key stored
            assert replayed.headers["idempotency-replayed"] == "true" and replayed.json()["index"] == 2
        with Store(served.db, readonly=True) as store:
            assert [t.reply_id for t in store.load_session(session).turns] == ["OFFER", "RUMOUR", "SOLD"]
            assert store.verify().ok
    finally:
        other.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_lines_hold_a_conversation(served):
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- serve:curl -->\n```sh\n", 1)[1].split("```", 1)[0]
    session = new_id()
    script = block.replace("http://127.0.0.1:8000", served.url).replace("player-7", session)
    out = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60,
                         env=os.environ | {"TOKEN": GAME})
    assert out.returncode == 0, out.stderr
    replies = [json.loads(line) for line in out.stdout.replace("}{", "}\n{").splitlines()]
    assert replies[1]["reply_id"] == "OFFER" and replies[2]["reply_id"] == "SOLD"
    assert [h["reply_id"] for h in replies[3]["history"]] == ["OFFER", "SOLD"]


def test_sigterm_finishes_the_turn_in_flight_before_the_server_exits(tmp_path):
    gate = tmp_path / "open"
    server = Server(tmp_path, "--no-auth").start()
    try:
        with server.client() as client:
            session = start(client, "gate", state={"gate": str(gate)})["id"]
            first: dict = {}
            thread = threading.Thread(target=lambda: first.update(r=say(client, session, "let me through")))
            thread.start()
            for _ in range(600):
                if 'dialogue_turns_in_flight{policy="gate"} 1' in client.get("/metrics").text:
                    break
                time.sleep(0.05)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # the server stops accepting; the turn at the gate is still running
            assert server.process.poll() is None
            gate.touch()
            thread.join(30)
        assert first["r"].status_code == 200 and first["r"].json()["state"]["passed"] == 1
        server.process.wait(timeout=30)
        assert "Finished server process" in server.log()
    finally:
        server.stop()
