"""`dialogue serve` as a real subprocess on 127.0.0.1 (a free port), for the HTTP tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
GATE = Path(__file__).with_name("gate.py")
READY_SECONDS = 90  # imports and the sentence encoder's first load on a busy machine
TOKENS = {"game-server": "token-of-the-game-server-0123", "support-desk": "token-of-the-support-desk-4567"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `python -m dialogue serve ...` process; `start()` returns once /readyz says ready."""

    def __init__(self, tmp: Path, *args: str, policies: tuple[str, ...] = ("dialogue/examples/policies/blacksmith.py", str(GATE))):
        self.tmp, self.args, self.policies = tmp, args, policies
        self.process: subprocess.Popen | None = None
        self.log_path = tmp / f"serve-{time.monotonic_ns()}.log"

    def start(self) -> "Server":
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        command = [sys.executable, "-m", "dialogue", "serve", *self.policies, "--port", str(self.port),
                   "--backend", "scripted", "--understanding", "encoder", *self.args]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"dialogue serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"dialogue serve was not ready after {READY_SECONDS} s:\n{self.log()}")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> int:
        """SIGTERM (uvicorn's graceful shutdown) and wait; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    path.write_text("# name token\n" + "".join(f"{name} {token}\n" for name, token in TOKENS.items()))
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory, token_file):
    """A server with tokens and a store, shared by a module's tests (restarted by the restart test)."""
    tmp = tmp_path_factory.mktemp("serve")
    server = Server(tmp, "--db", str(tmp / "store.db"), "--token-file", str(token_file),
                    "--max-message-chars", "200", "--max-body-bytes", "4096").start()
    server.db = tmp / "store.db"
    yield server
    server.stop()
