"""Retries, timeouts and clear errors, against a local server that misbehaves on purpose."""

import socket
import sys
import time

import pytest

from dialogue.backends import Constraint, Prompt, create_backend
from dialogue.backends.openai import OpenAIBackend
from dialogue.errors import BackendError

from .fake import FakeServer, Reply, chat_reply, script

pytestmark = pytest.mark.server

PROMPT = Prompt(system="static", user="hello")
CHOICE = Constraint.choice(["GREETING", "FAREWELL"])
FAST = {"timeout": 1.0, "max_retries": 2, "backoff": 0.01, "max_backoff": 0.05}


def backend(url, **options):
    return OpenAIBackend(base_url=url, model="m", api_key="sk-test", server="vllm", **{**FAST, **options})


def error(status, message="busy"):
    return Reply({"error": {"message": message, "type": "server_error"}}, status=status)


def test_429_then_500_then_a_hang_is_retried_then_times_out_clearly():
    with FakeServer(script(error(429), error(500), Reply(chat_reply("GREETING"), hang=30))) as server:
        start = time.perf_counter()
        with pytest.raises(BackendError) as info:
            backend(server.url).generate(PROMPT, CHOICE)
        elapsed = time.perf_counter() - start
    assert len(server.posts) == 3
    message = str(info.value)
    assert "timed out" in message and "HTTP 429, HTTP 500, no answer in 1 s" in message
    assert server.url in message
    assert elapsed < 5


def test_a_transient_failure_is_retried_and_the_answer_used():
    with FakeServer(script(error(503), Reply(chat_reply("FAREWELL")))) as server:
        completion = backend(server.url).generate(PROMPT, CHOICE)
    assert completion.text == "FAREWELL" and len(server.posts) == 2


def test_retry_after_is_honoured_up_to_the_cap():
    limited = Reply({"error": {"message": "slow down"}}, status=429, headers={"retry-after": "0.2"})
    with FakeServer(script(limited, Reply(chat_reply("GREETING")))) as server:
        start = time.perf_counter()
        backend(server.url, max_backoff=1.0).generate(PROMPT, CHOICE)
    assert time.perf_counter() - start >= 0.2


def test_five_hundreds_exhaust_the_retries():
    with FakeServer(script(error(500, "model crashed"))) as server:
        with pytest.raises(BackendError, match=r"failed after 3 attempts: HTTP 500, HTTP 500, HTTP 500"):
            backend(server.url).generate(PROMPT, CHOICE)


def test_an_auth_failure_is_not_retried_and_says_what_to_set():
    with FakeServer(script(error(401, "Incorrect API key provided"))) as server:
        with pytest.raises(BackendError, match="refused the API key.*OPENAI_API_KEY") as info:
            backend(server.url).generate(PROMPT, CHOICE)
    assert len(server.posts) == 1
    assert "Incorrect API key provided" in str(info.value)


def test_a_refused_request_names_the_server_kinds():
    with FakeServer(script(error(400, "unknown field structured_outputs"))) as server:
        with pytest.raises(BackendError, match="HTTP 400: unknown field structured_outputs.*server= one of"):
            backend(server.url).generate(PROMPT, CHOICE)
    assert len(server.posts) == 1


def test_an_unreachable_server_is_a_clear_error():
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(BackendError, match=r"cannot reach .*127\.0\.0\.1:%d.*is it running\?" % port):
        backend(f"http://127.0.0.1:{port}/v1").generate(PROMPT, CHOICE)
    assert time.perf_counter() - start < 5


def test_the_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with FakeServer(script(Reply(chat_reply("GREETING")))) as server:
        OpenAIBackend(base_url=server.url, model="m", server="vllm").generate(PROMPT, CHOICE)
    assert server.posts[0].headers["authorization"] == "Bearer sk-from-env"


def test_openai_without_a_key_is_refused_up_front(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        OpenAIBackend(model="gpt-4.1-mini")


def test_a_missing_model_name_is_a_clear_error():
    with pytest.raises(BackendError, match="needs model="):
        OpenAIBackend(base_url="http://127.0.0.1:9/v1")


def test_an_unknown_server_kind_lists_the_known_ones():
    with pytest.raises(BackendError, match="llama-cpp-python"):
        OpenAIBackend(base_url="http://127.0.0.1:9/v1", model="m", server="tgi")


def test_a_missing_openai_package_says_which_pip_install_fixes_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(BackendError, match=r"pip install 'openai>=3.54,<4'"):
        OpenAIBackend(base_url="http://127.0.0.1:9/v1", model="m")


def test_the_registry_builds_it_by_name():
    model = create_backend("openai", base_url="http://127.0.0.1:9/v1", model="m", server="ollama")
    assert isinstance(model, OpenAIBackend) and not model.capabilities.regex
