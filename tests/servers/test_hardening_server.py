"""Server calls end by their deadlines, big responses are refused, malformed ones fall back."""

import json
import sqlite3
import subprocess
import sys
import time

import pytest

from dialogue import Engine
from dialogue.backends import Constraint, Prompt
from dialogue.backends.openai import OpenAIBackend
from dialogue.errors import BackendError, ResponseInvalid

from ..conftest import EXAMPLES, ROOT
from .fake import FakeServer, Reply, answer, chat_reply, script

pytestmark = pytest.mark.server

PROMPT = Prompt(system="static", user="hello")
CHOICE = Constraint.choice(["GREETING", "FAREWELL"])


def backend(url, **options):
    options = {"timeout": 1.0, "max_retries": 0, "backoff": 0.01, "max_backoff": 0.05, **options}
    return OpenAIBackend(base_url=url, model="m", api_key="sk-test", server="vllm", **options)


def test_a_server_sending_a_byte_at_a_time_is_cut_off_at_the_call_deadline():
    with FakeServer(script(Reply(chat_reply("GREETING"), drip=0.2))) as server:  # ~60 s for the body
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out: no answer in 1 s"):
            backend(server.url, timeout=1.0).generate(PROMPT, CHOICE)
        assert time.monotonic() - started < 5


def test_retries_end_by_the_deadline_of_the_whole_generate():
    with FakeServer(script(Reply(chat_reply("GREETING"), drip=0.2))) as server:
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out"):
            backend(server.url, timeout=1.0, max_retries=20, total_timeout=2.5).generate(PROMPT, CHOICE)
        took = time.monotonic() - started
    assert took < 6 and len(server.posts) <= 4


def test_the_total_deadline_defaults_to_the_timeout_of_each_attempt():
    made = backend("http://127.0.0.1:9/v1", timeout=3.0, max_retries=2)
    assert made.total_timeout == 9.0


def test_a_30_mb_response_is_refused_without_reading_it():
    huge = chat_reply("GREETING" + " " * 30_000_000)
    with FakeServer(script(Reply(huge))) as server:
        started = time.monotonic()
        with pytest.raises(ResponseInvalid, match="of 30000268 bytes, over 1048576"):
            backend(server.url).generate(PROMPT, CHOICE)
        assert time.monotonic() - started < 10


def test_a_body_over_the_cap_without_a_length_is_cut_off():
    with FakeServer(script(Reply(chat_reply("GREETING" + " " * 5000), length=False))) as server:
        made = backend(server.url, max_response_bytes=1000)
        with pytest.raises(ResponseInvalid, match="a response over 1000 bytes"):
            made.generate(PROMPT, CHOICE)


MALFORMED = {
    "truncated JSON": Reply(json.dumps(chat_reply("GREETING"))[:40]),
    "an HTML page": Reply("<html><body>502 Bad Gateway</body></html>", content_type="text/html"),
    "choices is a string": Reply({**chat_reply("GREETING"), "choices": "nope"}),
    "content is a number": Reply({**chat_reply("GREETING"), "choices": [{"index": 0, "message": {"content": 5}}]}),
    "usage of the wrong type": Reply({**chat_reply("GREETING"), "usage": {"prompt_tokens": "many"}}),
    "a JSON list": Reply([1, 2, 3]),
}


@pytest.mark.parametrize("what", sorted(set(MALFORMED) - {"usage of the wrong type"}))
def test_a_malformed_response_is_a_response_invalid(what):
    with FakeServer(script(MALFORMED[what])) as server:
        with pytest.raises(ResponseInvalid, match="server at"):
            backend(server.url).generate(PROMPT, CHOICE)


def test_usage_of_the_wrong_type_is_not_counted():
    with FakeServer(script(MALFORMED["usage of the wrong type"])) as server:
        completion = backend(server.url).generate(PROMPT, CHOICE)
    assert completion.text == "GREETING" and completion.detail["prompt_tokens"] == 0


@pytest.mark.parametrize("what", sorted(set(MALFORMED) - {"usage of the wrong type"}))
@pytest.mark.parametrize("mode", ["prompted", "executed"])
def test_a_turn_on_a_malformed_response_is_answered_with_the_flagged_fallback(shop, what, mode):
    with FakeServer(script(MALFORMED[what])) as server:
        engine = Engine(shop, mode=mode, backend=backend(server.url), retries=1, understanding="model")
        turn = engine.session("s").say("hello")
    assert turn.reply.id == shop.catalog.fallback and turn.trace.fallback
    assert len(turn.trace.validation_errors) == 2 and "server at" in turn.trace.validation_errors[0]


def test_the_stored_raw_output_is_capped(shop, tmp_path):
    long = "GREETING" + "x" * 200_000
    with FakeServer(answer(long)) as server:
        engine = Engine(shop, backend=backend(server.url), retries=1, understanding="model",
                        store=tmp_path / "s.db")
        turn = engine.session("s").say("hello")
        engine.close()
    assert turn.trace.fallback and all(len(raw) < 2100 for raw in turn.trace.raw)
    with sqlite3.connect(tmp_path / "s.db") as db:
        [raw] = db.execute("SELECT raw FROM turns").fetchone()
    assert len(raw) < 10_000
    assert (tmp_path / "s.db").stat().st_size < 1_000_000


def test_dialogue_chat_on_a_malformed_server_prints_no_traceback():
    with FakeServer(script(MALFORMED["an HTML page"])) as server:
        out = subprocess.run([sys.executable, "-m", "dialogue", "chat", str(EXAMPLES["blacksmith"]),
                              "--backend", "openai", "--base-url", server.url, "--model", "m", "--server", "vllm",
                              "--understanding", "model", "--timeout", "2"],
                             input="hello\n", capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "blacksmith>" in out.stdout


def test_a_turn_of_slow_garbage_ends_by_the_turn_deadline_with_the_flagged_fallback(shop):
    slow_html = Reply("<html>502</html>", content_type="text/html", hang=0.6)  # each attempt within its timeout
    with FakeServer(script(slow_html)) as server:
        engine = Engine(shop, backend=backend(server.url, timeout=5.0), retries=20, understanding="model",
                        turn_timeout=1.5)
        started = time.monotonic()
        turn = engine.session("s").say("hello")
        took = time.monotonic() - started
    assert turn.reply.id == shop.catalog.fallback and turn.trace.fallback
    assert "deadline of 1.5 s" in turn.trace.fallback_reason
    assert took < 5 and len(server.posts) <= 4  # 20 retries at 0.6 s each would be 12 s


def test_the_turn_deadline_cuts_a_call_short_before_its_own_timeout(shop):
    with FakeServer(script(Reply(chat_reply("GREETING"), drip=0.2))) as server:  # ~60 s for the body
        engine = Engine(shop, backend=backend(server.url, timeout=30.0), understanding="model", turn_timeout=1.0)
        started = time.monotonic()
        turn = engine.session("s").say("hello")
        took = time.monotonic() - started
    assert turn.trace.fallback and "deadline of 1 s" in turn.trace.fallback_reason
    assert took < 5


def test_without_a_turn_deadline_each_call_keeps_its_own(shop):
    with FakeServer(script(Reply(chat_reply("GREETING"), hang=0.3))) as server:
        engine = Engine(shop, backend=backend(server.url), understanding="model", turn_timeout=None)
        turn = engine.session("s").say("hello")
    assert turn.reply.id == "GREETING" and not turn.trace.fallback


@pytest.mark.parametrize("bad", [0, -1.0])
def test_a_turn_timeout_is_a_positive_number_of_seconds(shop, bad):
    with pytest.raises(ValueError, match="turn_timeout"):
        Engine(shop, backend="scripted", turn_timeout=bad)
