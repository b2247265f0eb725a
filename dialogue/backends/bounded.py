"""HTTP for the server backends within bounds: a deadline and a size cap per response.

A client's own timeout restarts with every byte, so a server sending one byte a second
never times out. Here the transport gives each request a deadline for the whole
exchange (the body included), never later than the deadline of the `generate` it
serves nor that of the turn (`Engine(turn_timeout=)`), and stops reading a response past
`max_bytes`.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from .base import turn_time_left

__all__ = ["Bounds", "ResponseTooLarge", "bounded_client"]


class ResponseTooLarge(Exception):
    """A response body past the size cap (the backend turns it into `ResponseInvalid`)."""


class Bounds:
    """The deadline of each request and of the current `generate` in this thread, and the size cap."""

    def __init__(self, call_seconds: float, max_bytes: int) -> None:
        self.call_seconds, self.max_bytes = call_seconds, max_bytes
        self._local = threading.local()

    @contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """Everything this thread sends in the block ends within `seconds`."""
        outer = getattr(self._local, "until", None)
        until = _turn_bound(time.monotonic() + seconds)
        self._local.until = until if outer is None else min(outer, until)
        try:
            yield
        finally:
            self._local.until = outer

    def left(self) -> float | None:
        """Seconds left to the current `generate`, or None outside one."""
        until = getattr(self._local, "until", None)
        return None if until is None else until - time.monotonic()

    def request_until(self) -> float:
        until = _turn_bound(time.monotonic() + self.call_seconds)
        outer = getattr(self._local, "until", None)
        return until if outer is None else min(until, outer)


def _turn_bound(until: float) -> float:
    """`until`, or the end of the turn being served when that comes first."""
    left = turn_time_left()
    return until if left is None else min(until, time.monotonic() + left)


def bounded_client(httpx: Any, bounds: Bounds, **options: Any) -> Any:
    """An httpx-style `Client` (of the module `httpx`) whose transport keeps `bounds`."""

    class CappedStream(httpx.SyncByteStream):
        def __init__(self, inner: Any, until: float, request: Any) -> None:
            self.inner, self.until, self.request = inner, until, request

        def __iter__(self) -> Iterator[bytes]:
            size = 0
            for chunk in self.inner:
                size += len(chunk)
                if size > bounds.max_bytes:
                    raise ResponseTooLarge(f"a response over {bounds.max_bytes} bytes")
                if time.monotonic() > self.until:
                    raise httpx.ReadTimeout("the response did not end by its deadline", request=self.request)
                yield chunk

        def close(self) -> None:
            self.inner.close()

    class BoundedTransport(httpx.HTTPTransport):
        def handle_request(self, request: Any) -> Any:
            until = bounds.request_until()
            left = until - time.monotonic()
            if left <= 0:
                raise httpx.ConnectTimeout("no time left before the deadline", request=request)
            timeouts = request.extensions.get("timeout") or {}
            request.extensions["timeout"] = {k: left if v is None else min(v, left) for k, v in timeouts.items()} \
                or {"connect": left, "read": left, "write": left, "pool": left}
            response = super().handle_request(request)
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > bounds.max_bytes:
                response.close()
                raise ResponseTooLarge(f"a response of {int(length)} bytes, over {bounds.max_bytes}")
            response.stream = CappedStream(response.stream, until, request)
            return response

    class Client(httpx.Client):
        def __del__(self) -> None:  # a backend left open closes its sockets when it goes away
            if not getattr(self, "is_closed", True):
                self.close()

    return Client(transport=BoundedTransport(), **options)
