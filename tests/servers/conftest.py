"""Real servers for the server tests: llama-cpp-python's OpenAI-compatible server on
127.0.0.1 serving the embedded SmolLM2 GGUF, started once and stopped at the end."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

READY_SECONDS = 120  # the server loads a 100 MB model; a cold disk can be slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(url: str, process: subprocess.Popen, log) -> None:
    """Poll GET /v1/models until it answers, the process dies, or READY_SECONDS pass."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=1) as response:
                if json.load(response).get("data"):
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.25)
    pytest.fail(f"llama_cpp.server was not ready after {READY_SECONDS} s")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """The base URL (ending in /v1) of a running `python -m llama_cpp.server`."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    from dialogue.backends.transformers import default_model_path

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log = open(tmp_path_factory.mktemp("llama-server") / "server.log", "w+")
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
