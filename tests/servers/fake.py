"""A small OpenAI-compatible HTTP server on 127.0.0.1 for tests.

It records every request as it came over the wire and answers from a responder: a
function of the request that returns a `Reply` (status, JSON body, headers, or a hang).
Responders below: fixed text, an obedient chooser that reads the constraint out of the
request, and a script of replies in turn.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

__all__ = ["FakeServer", "Reply", "Request", "answer", "chat_reply", "obey", "ollama_reply", "script"]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None


@dataclass
class Reply:
    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before answering (cut short when the server stops)
    drip: float = 0.0  # seconds between the bytes of the body (a server that answers very slowly)
    content_type: str = "application/json"
    length: bool = True  # False: no content-length, the body ends when the connection closes


Responder = Callable[[Request], Reply]


class FakeServer:
    """`with FakeServer(responder) as server:` serves on 127.0.0.1; `server.url` ends in /v1."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[Request] = []
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                  json.loads(raw) if raw else None)
                server.requests.append(request)
                reply = server.responder(request)
                if reply.hang and server._stopping.wait(reply.hang):
                    return
                data = reply.body if isinstance(reply.body, (bytes, str)) else json.dumps(reply.body)
                data = data.encode() if isinstance(data, str) else data
                self.send_response(reply.status)
                self.send_header("content-type", reply.content_type)
                if reply.length:
                    self.send_header("content-length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if not reply.drip:
                    self.wfile.write(data)
                    return
                for i in range(len(data)):
                    if server._stopping.wait(reply.drip):
                        return
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        return Handler


def chat_reply(content: str, *, prompt_tokens: int = 50, cached: int | None = None,
               completion_tokens: int = 5) -> dict:
    """A chat.completion body as OpenAI sends it."""
    usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                             "total_tokens": prompt_tokens + completion_tokens}
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "test",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": usage}


def ollama_reply(content: str) -> dict:
    """An /api/chat body as Ollama sends it."""
    return {"model": "test", "created_at": "2026-01-01T00:00:00Z", "done": True, "done_reason": "stop",
            "message": {"role": "assistant", "content": content}, "prompt_eval_count": 42,
            "eval_count": 7}


def answer(content: str) -> Responder:
    """Every POST gets `content`, whatever the request asked for (a server ignoring constraints)."""
    def respond(request: Request) -> Reply:
        if request.path.endswith("/api/chat"):
            return Reply(ollama_reply(content))
        return Reply(chat_reply(content))
    return respond


def obey(target: str, **usage) -> Responder:
    """Answers JSON-schema requests by picking the enum value that `target` starts with."""
    def respond(request: Request) -> Reply:
        schema = request.body["response_format"]["json_schema"]["schema"]
        (name, prop), = schema["properties"].items()
        chosen = next(v for v in prop["enum"] if target.startswith(v))
        return Reply(chat_reply(json.dumps({name: chosen}), **usage))
    return respond


def script(*replies: Reply) -> Responder:
    """Answers the n-th request with the n-th reply (the last one repeats)."""
    queue = list(replies)

    def respond(request: Request) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]
    return respond
