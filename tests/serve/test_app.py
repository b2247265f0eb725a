"""The app in process (no socket): rate limits, error mapping, metrics, the CLI's checks."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from dialogue import Engine, load_policy
from dialogue.cli import main
from dialogue.errors import BackendError, MessageRejected, OutputInvalid, SessionError, StoreError
from dialogue.serve import make_app
from dialogue.serve.errors import from_dialogue_error

from .conftest import GATE, ROOT

TOKEN = "a-token-of-sixteen-or-more"


def app(**options):
    engine = Engine(load_policy(GATE), backend="scripted", understanding="encoder")
    return make_app(engine, tokens={TOKEN: "tester"}, warm=False, **options)


def test_the_rate_limit_answers_429_with_retry_after_per_token():
    with TestClient(app(rate_limit=0.5)) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/v1/policies", headers=headers).status_code == 200
        limited = client.get("/v1/policies", headers=headers)
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert client.get("/healthz").status_code == 200  # probes are not limited


def test_metrics_count_turns_per_policy_and_stage():
    with TestClient(app(rate_limit=None)) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        session = client.post("/v1/policies/gate/sessions", json={}, headers=headers).json()["id"]
        for _ in range(2):
            assert client.post(f"/v1/sessions/{session}/turns", json={"message": "hi"},
                               headers=headers).status_code == 200
        text = client.get("/metrics", headers=headers).text
        assert 'dialogue_turns_total{policy="gate"} 2' in text
        assert 'dialogue_turn_seconds_count{policy="gate",stage="total"} 2' in text
        assert 'dialogue_turn_seconds_count{policy="gate",stage="request"} 2' in text
        assert client.get("/metrics").status_code == 401


def test_cors_is_off_unless_an_origin_is_given():
    preflight = {"Origin": "https://game.example", "Access-Control-Request-Method": "POST"}
    with TestClient(app()) as client:
        assert "access-control-allow-origin" not in client.options("/v1/policies", headers=preflight).headers
    with TestClient(app(cors=["https://game.example"])) as client:
        allowed = client.options("/v1/policies", headers=preflight).headers
        assert allowed["access-control-allow-origin"] == "https://game.example"


@pytest.mark.parametrize("error, status, code", [
    (MessageRejected("too long"), 422, "message_rejected"),
    (SessionError("advanced elsewhere"), 409, "session_conflict"),
    (BackendError("connection refused by model-server, it said: SECRET MODEL TEXT"), 503, "backend_unavailable"),
    (OutputInvalid("cannot parse 'SECRET MODEL TEXT'", raw="SECRET MODEL TEXT"), 502, "output_invalid"),
    (StoreError("disk full"), 503, "store_unavailable"),
])
def test_each_error_kind_has_a_stable_code_and_status_and_no_model_text(error, status, code):
    mapped = from_dialogue_error(error)
    assert (mapped.status, mapped.code) == (status, code)
    assert "SECRET" not in mapped.message


def test_serve_refuses_to_run_without_auth_off_loopback(capsys):
    assert main(["serve", str(GATE)]) == 1
    assert "--token-file" in capsys.readouterr().err
    assert main(["serve", str(GATE), "--no-auth", "--host", "0.0.0.0"]) == 1
    assert "loopback" in capsys.readouterr().err
    assert main(["serve", str(GATE), "--no-auth", "--workers", "2"]) == 1
    assert "--db" in capsys.readouterr().err


def test_a_bad_token_file_is_reported_with_its_line(tmp_path, capsys):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("# tokens\ngame-server short\n")
    assert main(["serve", str(GATE), "--token-file", str(tokens), "--backend", "scripted"]) == 1
    err = capsys.readouterr().err
    assert f"{tokens}:2:1" in err and "at least 16" in err and "Traceback" not in err


def test_the_library_imports_without_the_serve_extra():
    import subprocess
    import sys

    code = ("import sys; sys.modules['fastapi'] = None; import dialogue, dialogue.engine, dialogue.cli; "
            "from dialogue.cli import main; raise SystemExit(main(['serve', 'x.py', '--no-auth']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "pip install 'dialogue[serve]'" in out.stderr, out.stderr


def test_readyz_says_what_failed_to_load_and_stays_503():
    import time

    engine = Engine(load_policy(GATE), backend="no-such-backend", understanding="model")
    with TestClient(make_app(engine)) as client:
        for _ in range(200):
            ready = client.get("/readyz")
            if ready.json()["policies"]["gate"] != "loading":
                break
            time.sleep(0.05)
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert ready.json()["policies"]["gate"].startswith("failed: BackendError: no backend named")
        assert client.get("/healthz").status_code == 200


def test_readyz_is_200_once_the_matcher_is_trained():
    import time

    engine = Engine(load_policy(GATE), backend="scripted", understanding="encoder")
    with TestClient(make_app(engine)) as client:
        for _ in range(600):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        assert client.get("/readyz").json() == {"ready": True, "policies": {"gate": "ready"}}


def test_turn_meta_is_audited_and_comes_back_on_resume(tmp_path):
    from dialogue.store import Store

    db = tmp_path / "meta.db"
    engine = Engine(load_policy(GATE), backend="scripted", understanding="encoder", store=db)
    turn = engine.session("s").say("hi", meta={"client": "tester", "idempotency_key": "k1"})
    assert turn.meta == {"client": "tester", "idempotency_key": "k1"}
    assert engine.session("s").say("again").meta == {}
    engine.close()
    again = Engine(load_policy(GATE), backend="scripted", understanding="encoder", store=db)
    assert [t.meta for t in again.session("s").turns] == [{"client": "tester", "idempotency_key": "k1"}, {}]
    again.close()
    with Store(db, readonly=True) as store:
        assert [t["trace"].get("meta") for t in store.export("s")] == [{"client": "tester", "idempotency_key": "k1"},
                                                                      None]
        assert store.verify().ok


def test_without_a_store_a_released_session_is_404_not_a_new_one():
    engine = Engine(load_policy(GATE), backend="scripted", understanding="encoder", max_sessions=1)
    with TestClient(make_app(engine, tokens={TOKEN: "tester"}, warm=False)) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        first = client.post("/v1/policies/gate/sessions", json={}, headers=headers).json()["id"]
        assert client.post(f"/v1/sessions/{first}/turns", json={"message": "hi"}, headers=headers).status_code == 200
        client.post("/v1/policies/gate/sessions", json={}, headers=headers)  # the engine releases the first
        gone = client.post(f"/v1/sessions/{first}/turns", json={"message": "hi"}, headers=headers)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_session"
        assert "most recently used" in gone.json()["error"]["message"]


def test_a_key_masked_by_the_redaction_hook_still_replays_after_a_restart(tmp_path):
    import re

    from dialogue.store import Store

    def mask_digits(text: str) -> str:
        return re.sub(r"\d", "#", text)

    def serve():
        store = Store(tmp_path / "redacted.db", redact=mask_digits)
        engine = Engine(load_policy(GATE), backend="scripted", understanding="encoder", store=store)
        return TestClient(make_app(engine, tokens={TOKEN: "tester"}, warm=False, close_engines=True))

    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "turn-42"}
    with serve() as client:
        session = client.post("/v1/policies/gate/sessions", json={}, headers=headers).json()["id"]
        took = client.post(f"/v1/sessions/{session}/turns", json={"message": "hi"}, headers=headers).json()
    with serve() as client:
        again = client.post(f"/v1/sessions/{session}/turns", json={"message": "hi"}, headers=headers)
        assert again.headers["idempotency-replayed"] == "true" and again.json()["index"] == took["index"] == 0
