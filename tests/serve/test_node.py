"""The JavaScript client (clients/dialogue.js) on Node's built-in fetch against `dialogue serve`."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import TOKENS

pytestmark = pytest.mark.server
NODE = shutil.which("node")
SCRIPT = Path(__file__).with_name("conversation.mjs")


def node(served, phase: str, *args: str) -> dict:
    out = subprocess.run([NODE, str(SCRIPT), served.url, TOKENS["game-server"], phase, *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    return {line["name"]: line["value"] for line in map(json.loads, out.stdout.splitlines())}


@pytest.mark.skipif(NODE is None, reason="node is not installed (the JS client test needs Node 18+ for fetch)")
def test_the_js_client_holds_a_conversation_across_a_restart(served, tmp_path):
    session = "node-" + uuid.uuid4().hex[:8]
    seen = node(served, "before", session, str(tmp_path / "gate-open"))
    assert seen["policies"] == ["blacksmith", "gate"]
    assert seen["offer"] == {"reply": "OFFER", "slots": {"item": "dagger", "price": "15"},
                             "text": "The dagger? 15 Gold. My own work. Want it?", "gold": 20}
    assert seen["idempotent"] == {"first": 1, "again": 1, "same": True}
    assert seen["unauthorized"]["status"] == 401 and seen["unauthorized"]["code"] == "unauthorized"
    assert seen["unknown_session"]["code"] == "unknown_session"
    assert seen["too_long"] == {"status": 422, "code": "message_rejected",
                                "message": "message of 201 characters is over the limit of 200"}
    assert seen["bad_json"]["status"] == 400 and seen["bad_json"]["body"]["error"]["code"] == "invalid_json"
    assert seen["concurrent"]["status"] == 409 and seen["concurrent"]["code"] == "turn_in_progress"
    assert seen["after_gate"] == 1
    served.stop()
    served.start()
    after = node(served, "after", session)
    assert after["resumed"] == {"turns": 2, "offer": "dagger"}
    assert after["sold"] == {"reply": "SOLD", "gold": 5, "inventory": ["dagger"]}
    assert after["ended"]["code"] == "session_ended"
