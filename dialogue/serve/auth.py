"""Bearer tokens from a file, each with a name, and a per-token rate limit."""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from pathlib import Path

from ..errors import AuthorError, Location
from .errors import ApiError

__all__ = ["RateLimiter", "Tokens", "read_token_file"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_TOKEN_CHARS = 16


def read_token_file(path: str | Path) -> dict[str, str]:
    """{token: name} from a file of `NAME TOKEN` lines (`#` starts a comment)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthorError(f"cannot read the token file: {exc}", location=Location(str(path))) from exc
    tokens: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            name, token = _token_line(path, number, line, text, tokens)
            tokens[token] = name
    if not tokens:
        raise AuthorError("the token file has no tokens", location=Location(str(path)),
                          hint="one `NAME TOKEN` a line, e.g. `game-server 3f9c...` (python -c "
                               "'import secrets; print(secrets.token_urlsafe(32))' makes a token)")
    return tokens


def _token_line(path: Path, number: int, line: str, text: str, seen: dict[str, str]) -> tuple[str, str]:
    where = Location(str(path), number, 1, line)
    parts = text.split()
    if len(parts) != 2:
        raise AuthorError("a token line is `NAME TOKEN`", location=where,
                          hint="a name (letters, digits, . _ @ -), a space, then the token")
    name, token = parts
    if not _NAME.fullmatch(name):
        raise AuthorError(f"token name {name!r} is not a name", location=where,
                          hint="letters, digits and . _ @ -, up to 64 characters")
    if len(token) < MIN_TOKEN_CHARS:
        raise AuthorError(f"the token of {name!r} is {len(token)} characters; a token has at least "
                          f"{MIN_TOKEN_CHARS}", location=where, hint="use secrets.token_urlsafe(32)")
    if token in seen:
        raise AuthorError(f"the token of {name!r} is also the token of {seen[token]!r}", location=where)
    return name, token


class Tokens:
    """Checks `Authorization: Bearer ...` and says whose token it is."""

    def __init__(self, tokens: dict[str, str]) -> None:
        # Looked up by digest, so the time a lookup takes says nothing about the token's text.
        self._names = {_digest(token): name for token, name in tokens.items()}

    def name_of(self, authorization: str | None) -> str:
        if not authorization:
            raise ApiError(401, "unauthorized", "this server needs a token: send `Authorization: Bearer TOKEN`",
                           {"WWW-Authenticate": "Bearer"})
        scheme, _, token = authorization.partition(" ")
        name = self._names.get(_digest(token.strip())) if scheme.lower() == "bearer" else None
        if name is None:
            raise ApiError(401, "unauthorized", "the bearer token is not one this server accepts",
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return name


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class RateLimiter:
    """A token bucket per client name: `rate` requests a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("a rate limit is a positive number of requests a second")
        self.rate, self.burst = rate, burst if burst is not None else max(1.0, 2 * rate)
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, name: str) -> None:
        """Count one request of `name`; ApiError 429 with Retry-After when over the limit."""
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(name, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens < 1:
                self._buckets[name] = (tokens, now)
                wait = math.ceil((1 - tokens) / self.rate)
                raise ApiError(429, "rate_limited", f"over the limit of {self.rate:g} requests a second for "
                               f"token {name!r}; retry after {wait} s", {"Retry-After": str(wait)})
            self._buckets[name] = (tokens - 1, now)
