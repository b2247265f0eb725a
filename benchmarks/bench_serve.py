"""`dialogue serve` against the same turns in process: turns/s and p50/p99 latency over HTTP
at 1, 16 and 64 concurrent clients, with the scripted backend (prompted turns whose model
answers at once: the HTTP layer's own cost) and with the embedded setup as `dialogue serve
dialogue/examples/policies/blacksmith.py` runs it (encoder understanding; the blacksmith has no extracted
values, so the language model is never called).

The server is a subprocess (uvicorn, one worker, no auth, no store, no rate limit) so that
the load generator (asyncio streams, one keep-alive connection per client) does not share
its interpreter; each client talks to
its own session. The baseline is the same engine in this process: `session.say` timed one
at a time, and from N threads on N sessions for the throughput rows. On a 2-core machine
the load generator and the server compete for the cores; the figures say what one server
process reaches under that load, not its ceiling.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from common import POLICIES, ROOT, Context, median

CLIENTS = (1, 16, 64)
MESSAGES = ("hello", "how much for a dagger?", "any news?", "bye")
OVERHEAD_TARGET_S = 0.002  # the target: HTTP adds at most 2 ms to a turn's p50
THROUGHPUT_TARGET = 1000.0  # turns/s at 64 clients on the scripted backend


def run(ctx: Context) -> None:
    _compare(ctx, "scripted", {1: 40, 16: 160, 64: 320} if ctx.quick else {1: 400, 16: 2400, 64: 6400})
    _compare(ctx, "embedded", {1: 20, 16: 64, 64: 128} if ctx.quick else {1: 200, 16: 800, 64: 1600})


def _compare(ctx: Context, setup: str, turns: dict[int, int]) -> None:
    engine = _engine(setup)
    local = {n: _in_process(engine, n, turns[n]) for n in CLIENTS}
    ctx.tick(f"serve: {setup} turns in process")
    with _Server(setup) as server:
        remote = {n: asyncio.run(_over_http(server.url, n, turns[n])) for n in CLIENTS}
    ctx.tick(f"serve: {setup} turns over HTTP")
    ctx.sample(f"serve_{setup}", {"in_process": local, "http": remote, "turns": turns, "uvicorn": _uvicorn()})
    _rows(ctx, setup, local, remote)


def _uvicorn() -> dict:
    """Which HTTP parser and event loop uvicorn picks here (httptools and uvloop when installed)."""
    import importlib.util

    return {"http": "httptools" if importlib.util.find_spec("httptools") else "h11",
            "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"}


def _rows(ctx: Context, setup: str, local: dict, remote: dict) -> None:
    one, base = remote[1], local[1]
    added = one["p50_s"] - base["p50_s"]
    met = added <= OVERHEAD_TARGET_S if setup == "scripted" else None
    ctx.row("serve", f"turn p50 over HTTP, 1 client ({setup})", one["p50_s"], "s", "same turn in process",
            one["p50_s"] / base["p50_s"], "adds <= 2 ms" if met is not None else "", met,
            f"adds {added * 1000:.2f} ms; p99 {one['p99_s'] * 1000:.1f} ms against {base['p99_s'] * 1000:.1f} ms")
    for n in CLIENTS:
        got, against = remote[n], local[n]
        target = n == 64 and setup == "scripted"
        ctx.row("serve", f"turns/s over HTTP, {n} client{'s' * (n > 1)} ({setup})", got["turns_s"], "turns/s",
                f"{n} thread{'s' * (n > 1)} in process", got["turns_s"] / against["turns_s"],
                f">= {THROUGHPUT_TARGET:,.0f} turns/s" if target else "",
                got["turns_s"] >= THROUGHPUT_TARGET if target else None,
                f"p50 {got['p50_s'] * 1000:.1f} ms, p99 {got['p99_s'] * 1000:.1f} ms; in process "
                f"{against['turns_s']:,.0f} turns/s")


# -- the engine and the same turns in process ----------------------------------------------

def _engine(setup: str):
    from dialogue import Engine, load_policy

    policy = load_policy(POLICIES["blacksmith"])
    if setup == "scripted":
        return Engine(policy, backend=_scripted(), understanding="model")
    engine = Engine(policy)  # the embedded model with encoder understanding, as `dialogue serve` runs it
    engine.prepare()
    return engine


def _scripted():
    from dialogue.backends.scripted import ScriptedBackend

    # Always the first admitted reply: no model, so what is timed is the engine and the HTTP layer.
    return ScriptedBackend(lambda prompt, constraint: "".join(
        part if isinstance(part, str) else "" for part in constraint.alternatives[0]))


def _in_process(engine, clients: int, turns: int) -> dict:
    per_client = max(1, turns // clients)
    sessions = [engine.session(f"local-{clients}-{i}-{time.monotonic_ns()}") for i in range(clients)]
    for session in sessions:
        session.say(MESSAGES[0])  # warm: exploration cached, matcher loaded

    def talk(session) -> list[float]:
        out = []
        for i in range(per_client):
            t = time.perf_counter()
            session.say(MESSAGES[i % len(MESSAGES)])
            out.append(time.perf_counter() - t)
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [x for part in pool.map(talk, sessions) for x in part]
    return _summary(latencies, time.perf_counter() - started)


def _summary(latencies: list[float], seconds: float) -> dict:
    ordered = sorted(latencies)
    return {"turns": len(ordered), "seconds": seconds, "turns_s": len(ordered) / seconds,
            "p50_s": median(ordered), "p99_s": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "mean_s": statistics.fmean(ordered)}


# -- over HTTP ------------------------------------------------------------------------------

async def _over_http(url: str, clients: int, turns: int) -> dict:
    """Each client: one keep-alive connection, one session, its turns one after another."""
    per_client = max(1, turns // clients)
    host, port = url.removeprefix("http://").split(":")
    connections = [await _Connection.open(host, int(port)) for _ in range(clients)]
    ids = [(await c.post("/v1/policies/blacksmith/sessions", {}))["id"] for c in connections]
    for connection, id in zip(connections, ids):
        await connection.post(f"/v1/sessions/{id}/turns", {"message": MESSAGES[0]})

    async def talk(connection: _Connection, id: str) -> list[float]:
        out = []
        for i in range(per_client):
            t = time.perf_counter()
            await connection.post(f"/v1/sessions/{id}/turns", {"message": MESSAGES[i % len(MESSAGES)]})
            out.append(time.perf_counter() - t)
        return out

    started = time.perf_counter()
    parts = await asyncio.gather(*(talk(c, id) for c, id in zip(connections, ids)))
    seconds = time.perf_counter() - started
    for connection in connections:
        await connection.close()
    return _summary([x for part in parts for x in part], seconds)


class _Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the load generator shares the
    machine with the server, and a full client library (httpx) costs more CPU per request
    than the server does, so it would measure itself."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> "_Connection":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host)

    async def post(self, path: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
        payload = await self.reader.readexactly(int(headers["content-length"]))
        status = int(head[0].split()[1])
        if status >= 300:
            raise RuntimeError(f"the server answered {status}: {payload[:300]!r}")
        return json.loads(payload)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


class _Server:
    """This module run as `--serve SETUP PORT`: the benchmark's server in its own process."""

    def __init__(self, setup: str) -> None:
        self.setup = setup

    def __enter__(self) -> "_Server":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = os.environ | {"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", self.setup, str(port)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._wait()
        return self

    def _wait(self) -> None:
        import httpx

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the benchmark server exited: {self.process.stderr.read()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the benchmark server was not ready after 300 s")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.process.stderr.close()


def _serve(setup: str, port: int) -> None:
    import uvicorn

    from dialogue.serve import make_app

    uvicorn.run(make_app(_engine(setup), rate_limit=None), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    _serve(sys.argv[2], int(sys.argv[3]))
