"""OpenAI-compatible servers through the `openai` SDK: OpenAI, vLLM, SGLang, llama.cpp, Ollama.

Each server takes the constraint in its own documented shape (`server=`):

==================  ==========================================================
openai              Structured Outputs: a strict JSON schema, the reply an enum
vllm                ``extra_body={"structured_outputs": {"choice" | "regex": ...}}``
sglang              ``extra_body={"regex": ...}``
llama-server        llama.cpp's C++ server: a GBNF ``grammar`` (JSON schema if not)
llama-cpp-python    ``python -m llama_cpp.server``: GBNF ``grammar`` (json_object schema if not)
ollama              the native ``/api/chat`` with ``format``: a JSON schema
==================  ==========================================================

Schemas hold opaque reply ids with slot values, never catalog text. Output is
turned back into the constraint's alternative string; the engine validates it again,
so a server that ignores the constraint only costs a retry and a flagged fallback.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable
from urllib.parse import urlsplit

from ..errors import BackendError, ConstraintError, ResponseInvalid
from .base import Capabilities, Completion, Constraint, Hole, Prompt
from .bounded import Bounds, ResponseTooLarge, bounded_client

__all__ = ["OpenAIBackend", "OpenAILimits", "SERVERS", "bounded_regex", "gbnf"]

_ALL = Capabilities(choice=True, regex=True, grammar=True, prefix_reuse=True)
SERVERS: dict[str, Capabilities] = {
    "openai": Capabilities(choice=True, regex=True, grammar=False, prefix_reuse=True),
    "vllm": _ALL,
    "sglang": _ALL,
    "llama-server": _ALL,
    "llama-cpp-python": _ALL,
    "ollama": Capabilities(choice=True, regex=False, grammar=False, prefix_reuse=True),
}
# What GET /models reports as `owned_by`, per server (for server=None on a non-OpenAI URL).
_OWNERS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama-server", "me": "llama-cpp-python",
           "library": "ollama", "ollama": "ollama"}
_RETRIED = {408, 409, 429}
INSTALL = "pip install 'openai>=3.54,<4'"  # a core dependency: missing only when removed by hand


@dataclass(frozen=True)
class OpenAILimits:
    """OpenAI's Structured Outputs limits on enums; a bigger choice is split into calls."""

    enum_values: int = 1000  # enum values in one schema
    large_enum: int = 250  # an enum with more values than this ...
    large_enum_chars: int = 15_000  # ... may hold at most this many characters
    total_chars: int = 120_000  # property names and enum values in one schema
    max_calls: int = 6  # a split choice never takes more calls than this

    def fits(self, labels: list[str], extra_chars: int = 0) -> bool:
        chars = sum(len(x) for x in labels)
        if len(labels) > self.enum_values or chars + extra_chars > self.total_chars:
            return False
        return len(labels) <= self.large_enum or chars <= self.large_enum_chars

    def describe(self, labels: list[str]) -> str:
        chars = sum(len(x) for x in labels)
        if len(labels) > self.enum_values:
            return f"{len(labels)} enum values (limit {self.enum_values})"
        if chars > self.total_chars:
            return f"{chars} characters (limit {self.total_chars} in one schema)"
        return (f"{chars} characters in one enum of {len(labels)} values (limit {self.large_enum_chars} "
                f"for more than {self.large_enum} values)")


OPENAI_LIMITS = OpenAILimits()


class OpenAIBackend:
    """A model behind an OpenAI-compatible HTTP API, constrained in the server's own shape.

    `server` is one of `SERVERS`; left out, it is "openai" for OpenAI's API and found by
    asking the server's GET /models otherwise (once, on first use). The key comes from
    `api_key` or OPENAI_API_KEY; local servers need none. Each request, its whole response
    included, ends within `timeout` seconds and is retried `max_retries` times on
    408/409/429/5xx, timeouts and refused connections, with exponential backoff from
    `backoff` seconds (capped by `max_backoff`, honouring Retry-After); one `generate`, its
    retries and split calls included, ends within `total_timeout` seconds (default: `timeout`
    times the attempts). A response over `max_response_bytes`, or one that is not the API's
    shape, is `ResponseInvalid`. `extra_body` is merged into every request.
    """

    name = "openai"

    def __init__(self, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 server: str | None = None, timeout: float = 60.0, max_retries: int = 2,
                 backoff: float = 0.5, max_backoff: float = 8.0, temperature: float | None = 0.0,
                 max_tokens: int | None = None, extra_body: dict | None = None,
                 limits: OpenAILimits = OPENAI_LIMITS, total_timeout: float | None = None,
                 max_response_bytes: int = 1 << 20) -> None:
        if server is not None and server not in SERVERS:
            raise BackendError(f"unknown server kind {server!r}; one of: {', '.join(SERVERS)}")
        if not model:
            raise BackendError("the openai backend needs model=... (the model's name on the server)")
        openai = _import_openai()
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self._server = server or ("openai" if _is_openai(self.base_url) else None)
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key and self._server == "openai":
            raise BackendError("no API key for OpenAI: set OPENAI_API_KEY or pass api_key=...")
        self.timeout, self.max_retries = timeout, max(0, max_retries)
        self.total_timeout = total_timeout if total_timeout is not None else timeout * (self.max_retries + 1)
        self.max_response_bytes = max_response_bytes
        self.backoff, self.max_backoff = backoff, max_backoff
        self.temperature, self.max_tokens = temperature, max_tokens
        self.extra_body = dict(extra_body or {})
        self.limits = limits
        self._openai = openai
        self._bounds = Bounds(timeout, max_response_bytes)
        http = bounded_client(_import_httpx(), self._bounds, timeout=timeout, follow_redirects=True)
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key or "none", timeout=timeout,
                                     max_retries=0, http_client=http)
        self._detect_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<OpenAIBackend {self.model!r} at {self.base_url} ({self._server or 'not yet known'})>"

    @property
    def server(self) -> str:
        """The server kind; asks the server once when it was not given."""
        if self._server is None:
            with self._detect_lock:
                if self._server is None:
                    self._server = self._detect()
        return self._server

    @property
    def capabilities(self) -> Capabilities:
        return SERVERS[self.server]

    def close(self) -> None:
        self._client.close()

    def generate(self, prompt: Prompt, constraint: Constraint) -> Completion:
        """One constrained choice; on OpenAI a choice over its enum limits takes several calls."""
        start = time.perf_counter()
        usage = _Usage()
        with self._bounds.within(self.total_timeout):
            kind = self.server
            if kind == "openai":
                text = self._structured(prompt, constraint, usage)
            elif kind == "ollama":
                text = self._ollama(prompt, constraint, usage)
            else:
                text = self._chat_raw(prompt, constraint, usage)
        return usage.completion(text, kind, time.perf_counter() - start)

    # -- the shapes ---------------------------------------------------------------------

    def _structured(self, prompt: Prompt, constraint: Constraint, usage: _Usage) -> str:
        """OpenAI Structured Outputs, splitting a choice that exceeds the enum limits."""
        shape = JsonShape(constraint, patterns=True, lengths=False)
        members = list(shape.templates)
        prefix = 0
        for _ in range(self.limits.max_calls):
            if self.limits.fits(members, shape.extra_chars(members)):
                content = self._chat(prompt, usage, response_format=_strict(shape.schema(members)))
                return shape.decode(content)
            groups = _split(members, prefix, self.limits)
            content = self._chat(prompt, usage, response_format=_strict(_group_schema(list(groups))))
            chosen = _json_field(content, GROUP_FIELD)
            if chosen not in groups:
                return content  # not a group we offered: the engine's validation decides
            members, prefix = groups[chosen], len(chosen)
        raise ConstraintError(f"a choice of {len(shape.templates)} replies needs more than "
                              f"{self.limits.max_calls} calls under OpenAI's enum limits")

    def _chat_raw(self, prompt: Prompt, constraint: Constraint, usage: _Usage) -> str:
        """vLLM, SGLang and the llama.cpp servers: constrained text, or a JSON schema fallback."""
        kind = self.server
        if kind == "vllm":
            key = "choice" if constraint.is_choice else "regex"
            value = list(constraint.literals) if constraint.is_choice else bounded_regex(constraint)
            return self._chat(prompt, usage, extra={"structured_outputs": {key: value}},
                              max_tokens=_token_bound(constraint))
        if kind == "sglang":
            return self._chat(prompt, usage, extra={"regex": bounded_regex(constraint)},
                              max_tokens=_token_bound(constraint))
        try:
            grammar = gbnf(constraint)
        except ConstraintError:
            return self._chat_schema(prompt, constraint, usage)
        return self._chat(prompt, usage, extra={"grammar": grammar}, max_tokens=_token_bound(constraint))

    def _chat_schema(self, prompt: Prompt, constraint: Constraint, usage: _Usage) -> str:
        """The llama.cpp servers when a hole's regex has no GBNF form: a JSON schema instead."""
        shape = JsonShape(constraint, patterns=True, lengths=True)
        schema = shape.schema(list(shape.templates))
        if self.server == "llama-server":
            response_format = {"type": "json_schema", "json_schema": {"schema": schema}}
        else:  # llama-cpp-python refuses type json_schema; it takes a schema on json_object
            response_format = {"type": "json_object", "schema": schema}
        content = self._chat(prompt, usage, response_format=response_format,
                             max_tokens=shape.token_bound())
        return shape.decode(content)

    def _ollama(self, prompt: Prompt, constraint: Constraint, usage: _Usage) -> str:
        """Ollama's native chat endpoint, whose `format` takes a JSON schema."""
        shape = JsonShape(constraint, patterns=True, lengths=True)
        options: dict[str, Any] = {"num_predict": self.max_tokens or shape.token_bound()}
        if self.temperature is not None:
            options["temperature"] = self.temperature
        body = {"model": self.model, "messages": _messages(prompt), "stream": False,
                "format": shape.schema(list(shape.templates)), "options": options, **self.extra_body}
        url = _root(self.base_url) + "/api/chat"
        data = self._send(lambda: self._client.post(url, cast_to=object, body=body))
        usage.add_ollama(data if isinstance(data, dict) else {})
        message = data.get("message") if isinstance(data, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        return shape.decode(content if isinstance(content, str) else json.dumps(data))

    # -- requests -----------------------------------------------------------------------

    def _chat(self, prompt: Prompt, usage: _Usage, *, response_format: dict | None = None,
              extra: dict | None = None, max_tokens: int | None = None) -> str:
        """One chat completion: the static prefix as the system message, first (prompt caching)."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": _messages(prompt)}
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens or max_tokens:  # OpenAI's own API takes the newer name
            limit = "max_completion_tokens" if self.server == "openai" else "max_tokens"
            kwargs[limit] = self.max_tokens or max_tokens
        if response_format is not None:
            kwargs["response_format"] = response_format
        body = {**(extra or {}), **self.extra_body}
        if body:
            kwargs["extra_body"] = body
        response = self._send(lambda: self._client.chat.completions.create(**kwargs))
        content = self._content(response)
        usage.add(response)
        return content

    def _content(self, response: Any) -> str:
        """The reply text of a chat completion; `ResponseInvalid` when it is not the API's shape."""
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list):
            raise ResponseInvalid(f"{self._where()} sent a response that is not a chat completion "
                                  f"(no list of choices: {_excerpt(response)})")
        if not choices:
            return ""
        message = getattr(choices[0], "message", None)
        content, refusal = getattr(message, "content", None), getattr(message, "refusal", None)
        if not isinstance(content, (str, type(None))) or not isinstance(refusal, (str, type(None))):
            raise ResponseInvalid(f"{self._where()} sent a choice without a text message ({_excerpt(choices[0])})")
        return content if content is not None else (refusal or "")

    def _send(self, call: Callable[[], Any]) -> Any:
        """Run `call`, retrying transient failures with backoff; foreign errors become ours."""
        openai, failures = self._openai, []
        error: Exception | None = None
        for attempt in range(self.max_retries + 1):
            left = self._bounds.left()
            if left is not None and left <= 0:
                failures.append(f"no answer within {self.total_timeout:g} s in all")
                break
            try:
                return call()
            except ResponseTooLarge as exc:
                raise ResponseInvalid(f"{self._where()} sent {exc}: refused (max_response_bytes)") from None
            except (openai.APIResponseValidationError, ValueError) as exc:  # ValueError: JSON cut off
                raise ResponseInvalid(f"{self._where()} sent a response that is not the API's JSON "
                                      f"({type(exc).__name__}: {str(exc)[:200]})") from None
            except openai.APIStatusError as exc:
                if exc.status_code in (401, 403):
                    raise BackendError(self._auth_message(exc)) from exc
                if exc.status_code not in _RETRIED and exc.status_code < 500:
                    raise BackendError(self._refused_message(exc)) from exc
                failures.append(f"HTTP {exc.status_code}")
                error: Exception = exc
            except openai.APITimeoutError as exc:
                failures.append(f"no answer in {self.timeout:g} s")
                error = exc
            except openai.APIConnectionError as exc:
                failures.append(f"cannot connect ({_cause(exc)})")
                error = exc
            except openai.OpenAIError as exc:
                raise BackendError(f"the openai client failed: {exc}") from exc
            if attempt < self.max_retries:
                left = self._bounds.left()
                time.sleep(max(0.0, min(self._delay(attempt, error), left if left is not None else float("inf"))))
        raise BackendError(self._failed_message(failures)) from error

    def _delay(self, attempt: int, error: Exception) -> float:
        response = getattr(error, "response", None)
        after = _retry_after(response.headers) if response is not None else None
        if after is not None:
            return min(after, self.max_backoff)
        return min(self.max_backoff, self.backoff * 2 ** attempt) * (0.75 + random.random() / 2)

    def _detect(self) -> str:
        """The server kind from GET /models' `owned_by`; "openai" when it says nothing known."""
        try:
            listing = self._send(lambda: self._client.get("/models", cast_to=object))
        except BackendError as exc:
            if isinstance(exc.__cause__, self._openai.NotFoundError):
                return "ollama" if urlsplit(self.base_url).port == 11434 else "openai"
            raise
        models = listing.get("data", []) if isinstance(listing, dict) else []
        owners = [m.get("owned_by") for m in models if isinstance(m, dict)]
        for owner in owners:
            if owner in _OWNERS:
                return _OWNERS[owner]
        return "ollama" if urlsplit(self.base_url).port == 11434 else "openai"

    # -- messages -----------------------------------------------------------------------

    def _where(self) -> str:
        return f"the {self._server or 'OpenAI-compatible'} server at {self.base_url}"

    def _auth_message(self, exc: Any) -> str:
        return (f"{self._where()} refused the API key (HTTP {exc.status_code}: {_server_says(exc)}); "
                "set OPENAI_API_KEY or pass api_key=...")

    def _refused_message(self, exc: Any) -> str:
        hint = ""
        if exc.status_code in (400, 422):
            hint = (f"; if it does not take the {self._server} request shape, pass server= one of "
                    f"{', '.join(SERVERS)}")
        elif exc.status_code == 404:
            hint = f"; check the model name {self.model!r} and the base URL"
        return f"{self._where()} refused the request (HTTP {exc.status_code}: {_server_says(exc)}){hint}"

    def _failed_message(self, failures: list[str]) -> str:
        attempts = f"{len(failures)} attempt{'s' if len(failures) > 1 else ''}"
        if all(f.startswith("cannot connect") for f in failures):
            return f"cannot reach {self._where()}: {failures[-1]} after {attempts}; is it running?"
        if failures[-1].startswith("no answer"):
            return f"{self._where()} timed out: {failures[-1]} ({attempts}: {', '.join(failures)})"
        return f"{self._where()} failed after {attempts}: {', '.join(failures)}"


# -- usage accounting --------------------------------------------------------------------


class _Usage:
    """Token counts summed over the calls of one `generate`."""

    def __init__(self) -> None:
        self.calls = 0
        self.prompt = 0
        self.output = 0
        self.cached: int | None = None
        self.finish: list[str] = []

    def add(self, response: Any) -> None:
        self.calls += 1
        finish = getattr(response.choices[0], "finish_reason", None) if response.choices else None
        if isinstance(finish, str) and finish:
            self.finish.append(finish)
        usage = getattr(response, "usage", None)
        if usage is None:
            return
        self.prompt += _count(getattr(usage, "prompt_tokens", 0))
        self.output += _count(getattr(usage, "completion_tokens", 0))
        details = getattr(usage, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None)
        if cached is None:  # llama.cpp's server reports its prompt cache in `timings`
            extra = getattr(response, "model_extra", None)
            timings = extra.get("timings") if isinstance(extra, dict) else None
            cached = timings.get("cache_n") if isinstance(timings, dict) else None
        if isinstance(cached, int):
            self.cached = (self.cached or 0) + cached

    def add_ollama(self, data: dict) -> None:
        self.calls += 1
        self.prompt += _count(data.get("prompt_eval_count"))
        self.output += _count(data.get("eval_count"))
        if data.get("done_reason"):
            self.finish.append(str(data["done_reason"]))

    def completion(self, text: str, server: str, seconds: float) -> Completion:
        reused = self.cached or 0
        return Completion(text=text, tokens_reused=reused, tokens_new=max(0, self.prompt - reused),
                          cached_tokens=self.cached, seconds=seconds,
                          detail={"server": server, "calls": self.calls, "prompt_tokens": self.prompt,
                                  "completion_tokens": self.output, "finish_reasons": self.finish})


# -- JSON schemas ------------------------------------------------------------------------


class JsonShape:
    """A JSON schema admitting the alternatives of a constraint, and its way back.

    Each alternative is named by a template: its text with ``{value_1}``... where its
    holes are. The reply is an enum of templates; holes are string fields with their
    patterns. Alternatives with different holes sit in separate `anyOf` branches under
    ``answer`` so each asks only for its own values.
    """

    def __init__(self, constraint: Constraint, *, patterns: bool, lengths: bool) -> None:
        self.patterns, self.lengths = patterns, lengths
        self.templates: dict[str, tuple] = {}
        for alt in constraint.alternatives:
            self.templates[_template(alt)] = alt
        if len(self.templates) != len(constraint.alternatives):  # two alternatives look alike
            self.templates = {_template(alt, show_patterns=True): alt for alt in constraint.alternatives}

    def schema(self, templates: list[str]) -> dict:
        branches: dict[tuple, list[str]] = {}
        for template in templates:
            branches.setdefault(_holes(self.templates[template]), []).append(template)
        variants = [self._variant(holes, names) for holes, names in branches.items()]
        if len(variants) == 1:
            return variants[0]
        return _object({"answer": {"anyOf": variants}})

    def _variant(self, holes: tuple[Hole, ...], templates: list[str]) -> dict:
        properties: dict[str, Any] = {"reply": {"type": "string", "enum": templates}}
        for k, hole in enumerate(holes, 1):
            field: dict[str, Any] = {"type": "string"}
            if self.patterns:
                field["pattern"] = f"^({hole.pattern})$"
            if self.lengths:
                field["maxLength"] = hole.max_length
            properties[f"value_{k}"] = field
        return _object(properties)

    def extra_chars(self, templates: list[str]) -> int:
        holes = {h for t in templates for h in _holes(self.templates[t])}
        return 64 + sum(len(h.pattern) + 16 for h in holes)

    def token_bound(self) -> int:
        longest = max(len(t.encode()) + sum(h.max_length * 4 + 16 for h in _holes(alt))
                      for t, alt in self.templates.items())
        return longest + 48

    def decode(self, content: str) -> str:
        """The alternative's text that `content` spells, or `content` itself when it spells none."""
        try:
            data = json.loads(content)
            if isinstance(data, dict) and "answer" in data and "reply" not in data:
                data = data["answer"]
            alt = self.templates[data["reply"]]
            values = iter(str(data[f"value_{k}"]) for k in range(1, len(_holes(alt)) + 1))
            return "".join(next(values) if isinstance(p, Hole) else p for p in alt)
        except (ValueError, TypeError, KeyError):
            return content


def _template(alt: tuple, show_patterns: bool = False) -> str:
    out, k = [], 0
    for piece in alt:
        if isinstance(piece, Hole):
            k += 1
            out.append(f"{{value_{k}}}" + (f"<{piece.pattern}>" if show_patterns else ""))
        else:
            out.append(piece)
    return "".join(out)


def _holes(alt: tuple) -> tuple[Hole, ...]:
    return tuple(p for p in alt if isinstance(p, Hole))


def _object(properties: dict) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def _strict(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "reply", "strict": True, "schema": schema}}


def _group_schema(labels: list[str]) -> dict:
    return _object({GROUP_FIELD: {"type": "string", "enum": labels}})


def _json_field(content: str, label: str) -> str | None:
    try:
        data = json.loads(content)
        value = data.get(label) if isinstance(data, dict) else None
    except ValueError:
        return None
    return value if isinstance(value, str) else None


# -- splitting a choice over OpenAI's limits ---------------------------------------------

GROUP_FIELD = "reply_starts_with"  # the first call of a split choice picks where the reply starts
_CUTS = re.compile(r"[_(=,+ )]")


def _split(members: list[str], prefix: int, limits: OpenAILimits) -> dict[str, list[str]]:
    """Groups of `members` (which share `prefix` characters) for a first call: a group first.

    Members are grouped by their text up to the next separator (the id, then each
    slot); when that gives too many groups, by the longest shared prefix that fits.
    """
    cut = prefix
    while True:
        groups = _group(members, lambda m: _next_cut(m, cut))
        if len(groups) > 1:
            break
        cut = len(next(iter(groups)))  # every member shares this key: no call needed for it
    if limits.fits(list(groups)):
        return groups
    longest = max(len(k) for k in groups)
    for length in range(longest - 1, prefix, -1):
        coarse = _group(members, lambda m: m[:length])
        if len(coarse) > 1 and limits.fits(list(coarse)):
            return coarse
    raise ConstraintError(f"cannot split a choice of {len(members)} replies under OpenAI's limits: "
                          f"its first level has {limits.describe(list(groups))}")


def _next_cut(member: str, after: int) -> str:
    found = _CUTS.search(member, after + 1)
    return member[:found.start()] if found else member


def _group(members: list[str], key: Callable[[str], str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for m in members:
        groups.setdefault(key(m), []).append(m)
    return groups


# -- GBNF --------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def gbnf(constraint: Constraint) -> str:
    """A llama.cpp GBNF grammar admitting exactly the alternatives (holes as their regex).

    Raises `ConstraintError` for a regex with no GBNF form (anchors, lookaround,
    backreferences, flags).
    """
    alternatives = []
    for alt in constraint.alternatives:
        parts = [_gbnf_regex(p) if isinstance(p, Hole) else _gbnf_literal(p) for p in alt]
        alternatives.append(" ".join(p for p in parts if p) or '""')
    return "root ::= " + " | ".join(alternatives) + "\n"


def _gbnf_literal(text: str) -> str:
    if not text:
        return ""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_gbnf_escape(ord(ch)))
    return '"' + "".join(out) + '"'


def _gbnf_escape(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02X}"
    return f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}"


def _gbnf_regex(hole: Hole) -> str:
    from re import _constants as c, _parser as parser  # the stdlib's own regex parser

    pattern = hole.pattern
    try:
        parsed = parser.parse(pattern)
    except re.error as exc:
        raise ConstraintError(f"hole pattern /{pattern}/ is not a valid regex: {exc}") from exc
    if parsed.state.flags & ~(c.SRE_FLAG_UNICODE | c.SRE_FLAG_VERBOSE):
        raise ConstraintError(f"hole pattern /{pattern}/ uses flags, which GBNF cannot express")
    return "(" + _gbnf_sequence(parsed, _Regex(pattern, hole.max_length)) + ")"


@dataclass(frozen=True)
class _Regex:
    """The hole being translated: its pattern (for messages) and its length bound."""

    pattern: str
    max_length: int


def _gbnf_sequence(items, pattern: _Regex) -> str:
    from re import _constants as c

    out: list[str] = []
    literal: list[str] = []
    for op, av in items:
        if op is c.LITERAL:
            literal.append(chr(av))
            continue
        if literal:
            out.append(_gbnf_literal("".join(literal)))
            literal = []
        out.append(_gbnf_item(op, av, pattern))
    if literal:
        out.append(_gbnf_literal("".join(literal)))
    return " ".join(out) or '""'


def _gbnf_item(op, av, pattern: _Regex) -> str:
    from re import _constants as c

    if op is c.NOT_LITERAL:
        return "[^" + _class_char(av) + "]"
    if op is c.ANY:
        return "[^\\n]"
    if op is c.IN:
        return _gbnf_class(av, pattern)
    if op is c.CATEGORY:
        return _gbnf_class([(op, av)], pattern)
    if op is c.BRANCH:
        return "(" + " | ".join(_gbnf_sequence(b, pattern) for b in av[1]) + ")"
    if op is c.SUBPATTERN and not av[1] and not av[2]:
        return "(" + _gbnf_sequence(av[3], pattern) + ")"
    if op is c.ATOMIC_GROUP:
        return "(" + _gbnf_sequence(av, pattern) + ")"
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        low, high, item = av
        return "(" + _gbnf_sequence(item, pattern) + ")" + _gbnf_repeat(low, high, pattern.max_length)
    raise ConstraintError(f"hole pattern /{pattern.pattern}/ uses {str(op).lower()}, which GBNF "
                          "cannot express")


def _gbnf_repeat(low: int, high: int, max_length: int) -> str:
    """A repetition; an unbounded one is bounded by the hole's length (no longer span is valid)."""
    from re import _constants as c

    if high == c.MAXREPEAT:
        high = max(low, max_length)
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


_CATEGORIES = {"CATEGORY_DIGIT": ("0-9", False), "CATEGORY_NOT_DIGIT": ("0-9", True),
               "CATEGORY_SPACE": (" \\t\\n\\r\\x0B\\x0C", False),
               "CATEGORY_NOT_SPACE": (" \\t\\n\\r\\x0B\\x0C", True),
               "CATEGORY_WORD": ("0-9A-Za-z_", False), "CATEGORY_NOT_WORD": ("0-9A-Za-z_", True)}


def _gbnf_class(items, pattern: _Regex) -> str:
    from re import _constants as c

    negate, parts = False, []
    for op, av in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            parts.append(_class_char(av))
        elif op is c.RANGE:
            parts.append(_class_char(av[0]) + "-" + _class_char(av[1]))
        elif op is c.CATEGORY and str(av) in _CATEGORIES:
            chars, negated = _CATEGORIES[str(av)]
            if negated and (negate or len(items) > 1):
                raise ConstraintError(f"hole pattern /{pattern.pattern}/ mixes a negated class, "
                                      "which GBNF cannot express")
            negate = negate or negated
            parts.append(chars)
        else:
            raise ConstraintError(f"hole pattern /{pattern.pattern}/ uses {str(op).lower()} in a class")
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _class_char(code: int) -> str:
    ch = chr(code)
    return ch if ch.isascii() and ch.isalnum() else _gbnf_escape(code)


# -- bounded regular expressions ---------------------------------------------------------


@lru_cache(maxsize=256)
def bounded_regex(constraint: Constraint) -> str:
    """`constraint.regex()`, with each hole's unbounded repeats capped at its max_length.

    A hole longer than its max_length is invalid anyway; capping lets a decoder stop
    instead of running on. A hole the translation does not understand stays as written.
    """
    parts = []
    for alt in constraint.alternatives:
        parts.append("".join(f"(?:{_bounded(p)})" if isinstance(p, Hole) else re.escape(p) for p in alt))
    return "(?:" + "|".join(parts) + ")"


def _bounded(hole: Hole) -> str:
    from re import _parser as parser

    try:
        parsed = parser.parse(hole.pattern)
        if parsed.state.flags & ~(re.UNICODE | re.VERBOSE):
            return hole.pattern
        return _re_sequence(parsed, hole.max_length)
    except (re.error, ConstraintError):
        return hole.pattern


def _re_sequence(items, max_length: int) -> str:
    return "".join(_re_item(op, av, max_length) for op, av in items)


def _re_item(op, av, max_length: int) -> str:
    from re import _constants as c

    simple = {c.LITERAL: lambda: _re_char(av, False), c.NOT_LITERAL: lambda: f"[^{_re_char(av, True)}]",
              c.ANY: lambda: ".", c.IN: lambda: _re_class(av), c.CATEGORY: lambda: _re_category(av)}
    if op in simple:
        return simple[op]()
    if op is c.BRANCH:
        return "(?:" + "|".join(_re_sequence(b, max_length) for b in av[1]) + ")"
    if op is c.SUBPATTERN and not av[1] and not av[2]:
        return "(?:" + _re_sequence(av[3], max_length) + ")"
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        low, high, item = av
        high = max(low, max_length) if high == c.MAXREPEAT else high
        return "(?:" + _re_sequence(item, max_length) + ")" + (f"{{{low}}}" if low == high else f"{{{low},{high}}}")
    raise ConstraintError(f"no bounded form for {op}")


def _re_char(code: int, in_class: bool) -> str:
    ch = chr(code)
    if ch.isascii() and (ch.isalnum() or (ch in " _" and not in_class)):
        return ch
    return f"\\x{code:02X}" if code < 0x80 else (f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}")


def _re_category(category) -> str:
    names = {"CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
             "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W"}
    if str(category) not in names:
        raise ConstraintError(f"no bounded form for {category}")
    return names[str(category)]


def _re_class(items) -> str:
    from re import _constants as c

    out = []
    for op, av in items:
        if op is c.NEGATE:
            out.append("^")
        elif op is c.LITERAL:
            out.append(_re_char(av, True))
        elif op is c.RANGE:
            out.append(_re_char(av[0], True) + "-" + _re_char(av[1], True))
        elif op is c.CATEGORY:
            out.append(_re_category(av))
        else:
            raise ConstraintError(f"no bounded form for {op} in a class")
    return "[" + "".join(out) + "]"


# -- helpers -----------------------------------------------------------------------------


def _import_openai():
    try:
        import openai
    except ImportError as exc:
        raise BackendError(f"the openai backend needs the openai package: {INSTALL}") from exc
    return openai


def _import_httpx():
    try:
        import httpx2
    except ImportError:  # an openai client of the generation before it
        import httpx as httpx2
    return httpx2


def _count(value: Any) -> int:
    """A token count a server reported, or 0 where it sent something else."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _excerpt(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:120] + ("..." if len(text) > 120 else "")


def _messages(prompt: Prompt) -> list[dict[str, str]]:
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]


def _token_bound(constraint: Constraint) -> int:
    """Enough output tokens for the longest alternative (a token holds at least one byte)."""
    return 8 + max(sum(p.max_length * 4 if isinstance(p, Hole) else len(p.encode()) for p in alt)
                   for alt in constraint.alternatives)


def _is_openai(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "api.openai.com" or host.endswith(".openai.com")


def _root(url: str) -> str:
    return re.sub(r"/v1/?$", "", url.rstrip("/"))


def _retry_after(headers) -> float | None:
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        try:
            return float(value) / scale
        except (TypeError, ValueError):
            continue
    return None


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__


def _server_says(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:300]
    return str(getattr(exc, "message", exc))[:300]
