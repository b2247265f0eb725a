"""The engine: one user message in, one validated catalog reply out, with its trace."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from . import deadline
from .backends.base import Backend, Completion, Constraint, Hole, turn_deadline, turn_time_left
from .errors import (BackendError, CatalogError, EffectError, ExplorationError, MessageRejected,
                     OutputInvalid, PolicyError, ResponseInvalid, SessionError)
from .explore import Exploration, ReplayingSaid, explore, frozen_copy, run_decision
from .grammar import (constraint_for, display, extracted_in_order, hole_spans, narrowed, reply_grammar,
                      serialize)
from .policy import Policy
from .prompt import HistoryLine, build_prompt, question_prompt, reply_hints
from .reply import Reply
from .said import ASK, EXTRACT, PICK, Said, Step
from .store import SessionRecord, Store, TurnRecord, is_message_digest

__all__ = ["Engine", "Session", "Trace", "Turn", "default_understanding"]

MODES = ("prompted", "executed")
UNDERSTANDINGS = ("encoder", "model", "hybrid")
MAX_SESSIONS = 1000  # sessions one engine keeps in memory by default
HYBRID_CANDIDATES = 5  # replies the language model chooses among in hybrid understanding
EFFECT_SECONDS = 5.0  # time one effect may take
TURN_TIMEOUT = 120.0  # seconds of model calls one turn may take, retries included
MAX_RAW_CHARS = 2000  # characters of one raw model output kept in the trace and the store
ON_CHANGE = ("error", "continue")  # what resuming a session does when its policy or catalog changed

log = logging.getLogger(__name__)


@dataclass
class Trace:
    """Everything that explains a turn. Model text appears here and nowhere else."""

    mode: str
    node: str = ""
    reachable: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # every raw model output, per attempt
    valid: bool = False
    validation_errors: list[str] = field(default_factory=list)
    retries: int = 0
    fallback: bool = False
    fallback_reason: str | None = None
    steps: list[dict] = field(default_factory=list)  # executed mode: question, answer, raw
    path: list[str] = field(default_factory=list)  # the branch taken, as "question -> answer"
    tokens_reused: int = 0
    tokens_new: int = 0
    tokens_forced: int = 0
    decode_steps: int = 0
    model_calls: int = 0
    scores: dict[str, float] | None = None
    understanding: str = ""  # encoder | model | hybrid
    encoder: str = ""  # the sentence encoder's model id and weights hash
    candidates: list[dict] = field(default_factory=list)  # the matcher's ranking: reply, score, confidence
    confidence: float | None = None  # the chosen candidate's match (cosine to what it learned)
    threshold: float | None = None  # under it, nothing matched well (the node's default or unclear line)
    unclear: bool = False  # the match was weak
    timings: dict[str, float] = field(default_factory=dict)
    backend: str = ""
    model: str = ""

    def add_completion(self, completion: Completion) -> None:
        text = completion.text
        if len(text) > MAX_RAW_CHARS:  # what is stored of it; validation reads all of it
            text = text[:MAX_RAW_CHARS] + f"... [{len(text) - MAX_RAW_CHARS} more characters not kept]"
        self.raw.append(text)
        self.model_calls += 1
        self.tokens_reused += completion.tokens_reused
        self.tokens_new += completion.tokens_new
        self.tokens_forced += completion.tokens_forced
        self.decode_steps += completion.decode_steps
        if completion.scores is not None and self.scores is None:
            self.scores = completion.scores


@dataclass
class Turn:
    """One user message and the validated reply sent back."""

    session_id: str
    index: int
    message: str
    reply: Reply
    text: str
    state: BaseModel
    trace: Trace
    locale: str
    audio: str | None = None
    lines: list[dict] = field(default_factory=list)  # each line: id, slots, text, audio
    node: str = ""
    meta: dict[str, str] = field(default_factory=dict)  # the caller's labels, stored and audited with the turn


class Engine:
    """Serves sessions of one policy on one backend, in prompted or executed mode.

    `backend` is a backend object, a registered name, or None for the embedded model
    (loaded on first use). `allow_drafts` is the development switch that lets draft
    lines be emitted. One engine serves many sessions from threads and asyncio.

    `understanding` says who decides which reachable reply fits: "encoder" (a sentence
    encoder and a matcher trained on the policy's examples; the model only fills extracted
    values the message does not decide), "model" (the language model reads the prompt and
    chooses) or "hybrid" (the language model chooses among the matcher's best candidates).
    Default: "encoder" on the embedded model, "model" on any other backend. `encoder` is a
    registered encoder name, a path to a sentence-transformers ONNX model, or an encoder.

    `store` (an SQLite file path, a `postgresql://` URL or a `Store`) keeps sessions and an audited record of every turn;
    without it sessions live in memory only. `store_messages=False`, `redact` (str -> str)
    and `audit_key` (bytes, text or a key file) apply when the engine opens the store from a
    path. `on_change` is the default for resuming a session whose policy or catalog changed:
    "error" or "continue". A message longer than `max_message_chars` characters or
    `max_message_tokens` tokens (where the backend counts them), or one that is not valid
    Unicode, is `MessageRejected`. A turn's model calls end within `turn_timeout` seconds
    (None: only each call's own bound): past it the turn says the fallback line, flagged;
    the server backends cut a call short at the deadline, a local model's call ends first.

    At most `max_sessions` sessions stay in memory (None: no bound): beyond it the least
    recently used idle one is released. A stored session is resumed from the store on its
    next `engine.session(id)`; without a store a released session is gone. `drop_session`
    releases one at once.
    """

    def __init__(self, policy: Policy, *, mode: str = "prompted", backend: Backend | str | None = None,
                 locale: str | None = None, allow_drafts: bool = False, retries: int = 1,
                 max_message_chars: int = 4000, max_message_tokens: int = 2000, history_turns: int = 12,
                 turn_timeout: float | None = TURN_TIMEOUT,
                 store: Store | str | os.PathLike | None = None, store_messages: bool | None = None,
                 redact: Callable[[str], str] | None = None, on_change: str = "error",
                 understanding: str | None = None, encoder: Any = None,
                 audit_key: bytes | str | os.PathLike | None = None,
                 max_sessions: int | None = MAX_SESSIONS) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if understanding is not None and understanding not in UNDERSTANDINGS:
            raise ValueError(f"understanding must be one of {', '.join(UNDERSTANDINGS)}, not {understanding!r}")
        self.policy = policy
        self.catalog = policy.catalog
        self.mode = mode
        self.locale = locale or self.catalog.locale
        if self.locale not in self.catalog.locales:
            raise CatalogError(f"catalog {self.catalog.id!r} has no locale {self.locale!r}",
                               hint=f"locales: {', '.join(self.catalog.locales)}")
        self.allow_drafts = allow_drafts
        self.retries = retries
        self.max_message_chars = max_message_chars
        self.max_message_tokens = max_message_tokens
        if turn_timeout is not None and not turn_timeout > 0:
            raise ValueError(f"turn_timeout is a number of seconds over 0 (or None: no deadline), not {turn_timeout!r}")
        self.turn_timeout = turn_timeout
        self.history_turns = history_turns
        self._backend = backend
        self._backend_lock = threading.Lock()
        if max_sessions is not None and max_sessions < 1:
            raise ValueError(f"max_sessions is at least 1 (or None: no bound), not {max_sessions!r}")
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._sessions_lock = threading.Lock()
        self._explored: OrderedDict[str, Exploration] = OrderedDict()
        self.understanding = understanding or default_understanding(backend)
        self._encoder = encoder
        self._matcher = None
        self._matcher_lock = threading.Lock()
        _check_unclear(policy, self.catalog)
        self.on_change = _checked_on_change(on_change)
        self.store, self._owns_store = _open_store(store, store_messages, redact, audit_key)
        if self.store is not None:
            self._save_versions()

    @property
    def backend(self) -> Backend:
        """The backend, created on first use when given by name or left to the default."""
        if isinstance(self._backend, str) or self._backend is None:
            with self._backend_lock:
                if isinstance(self._backend, str) or self._backend is None:
                    from .backends import create_backend

                    self._backend = create_backend(self._backend or "llamacpp")
        return self._backend

    @property
    def matcher(self):
        """The policy's matcher (trained per node on first use), for encoder and hybrid understanding."""
        if self._matcher is None:
            with self._matcher_lock:
                if self._matcher is None:
                    from .understanding.encoder import shared_encoder
                    from .understanding.matcher import Matcher

                    encoder = self._encoder
                    if encoder is None or isinstance(encoder, (str, os.PathLike)):
                        encoder = shared_encoder(encoder)
                    self._matcher = Matcher(self.policy, encoder)
        return self._matcher

    def prepare(self) -> None:
        """Load what the first turn would: the matcher of every node (train or read its cache)."""
        if self.understanding != "model":
            self.matcher.prepare()

    def session(self, id: str, *, state: dict | BaseModel | None = None,
                locale: str | None = None, on_change: str | None = None, node: str | None = None) -> Session:
        """The session `id`: a new one with `state`, or the existing one with that id.

        `node` starts a new session in that node instead of the policy's start node (to test
        or resume a step of a flow); an existing session keeps its own.

        With a store, an id found there resumes with its state, node and history. When its
        policy or catalog changed since, that is a SessionError naming both hashes, unless
        `on_change="continue"` (default: the engine's `on_change`) moves it to the new ones.
        """
        on_change = _checked_on_change(on_change or self.on_change)
        with self._sessions_lock:
            existing = self._sessions.get(id)
            if existing is not None:
                if state is not None or node is not None:
                    raise SessionError(f"session {id!r} exists already; its state and node come from its turns")
                self._sessions.move_to_end(id)
                return existing
            if node is not None:
                self.policy.decision_of(node)  # PolicyError naming the nodes when there is no such node
            if self.store is not None:
                session = self._stored_session(id, state, locale, on_change, node)
            else:
                session = Session(self, id, self.policy.new_state(state), locale or self.locale, node)
            self._sessions[id] = session
            self._release_idle()
            return session

    @property
    def live_sessions(self) -> int:
        """How many sessions this engine holds in memory now."""
        return len(self._sessions)

    def drop_session(self, id: str) -> bool:
        """Release session `id` from memory (a stored one is resumed on its next use); whether it was held."""
        with self._sessions_lock:
            return self._sessions.pop(id, None) is not None

    def _release_idle(self) -> None:
        """Keep at most `max_sessions` in memory: release the least recently used idle ones."""
        if self.max_sessions is None:
            return
        for id in list(self._sessions)[:-1]:  # the newest is the one just asked for
            if len(self._sessions) <= self.max_sessions:
                return
            if not self._sessions[id]._lock.locked():  # never one in the middle of a turn
                del self._sessions[id]

    def explore(self, state: BaseModel, node: str | None = None) -> Exploration:
        """Exploration of a node's decision function for `state`, cached by the state's value."""
        key = (node or self.policy.start) + "\0" + json.dumps(state.model_dump(mode="json"), sort_keys=True)
        found = self._explored.get(key)
        if found is None:
            found = explore(self.policy, state, node=node)
            self._explored[key] = found
            if len(self._explored) > 512:
                self._explored.popitem(last=False)
        return found

    def close(self) -> None:
        """Close the backend, and the store when the engine opened it from a path."""
        close = getattr(self._backend, "close", None)
        if callable(close):
            close()
        if self._owns_store and self.store is not None:
            self.store.close()

    # -- the session store ---------------------------------------------------------------

    def _save_versions(self) -> None:
        """Keep this policy's source and catalog text in the store, under their hashes."""
        policy, catalog = self.policy, self.catalog
        try:
            self.store.save_versions(policy.name, policy.hash, policy.module_source,
                                     catalog.id, catalog.hash, catalog.source)
        except BaseException:
            if self._owns_store:
                self.store.close()
            raise

    def _stored_session(self, id: str, state: dict | BaseModel | None, locale: str | None,
                        on_change: str, node: str | None = None) -> Session:
        """Resume `id` from the store, or start it there with `state` (in `node`)."""
        record = self.store.load_session(id)
        if record is None:
            session = Session(self, id, self.policy.new_state(state), locale or self.locale, node)
            try:
                self._create_stored(session)
                return session
            except SessionError:
                record = self.store.load_session(id)  # another process started it just now
                if record is None:
                    raise
        if state is not None or node is not None:
            raise SessionError(f"session {id!r} exists already in {self.store.path}; its state and node "
                               "come from its turns: resume it without them, or choose another id")
        return _resumed(self, record, locale, on_change)

    def _create_stored(self, session: Session) -> None:
        self.store.create_session(session.id, policy_name=self.policy.name, policy_hash=self.policy.hash,
                                  catalog_hash=self.catalog.hash, state=session.state.model_dump(mode="json"),
                                  locale=session.locale, mode=self.mode, node=session.node)


class Session:
    """A conversation: its id, state, turns; `say` runs one turn."""

    def __init__(self, engine: Engine, id: str, state: BaseModel, locale: str, node: str | None = None) -> None:
        self.engine = engine
        self.id = id
        self.state = state
        self.locale = locale
        self.turns: list[Turn] = []
        self.node = node or engine.policy.start
        self.said_ids: set[str] = set()  # every line id said so far (for required_before)
        self.ended = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Session {self.id!r} turns={len(self.turns)}>"

    async def asay(self, message: str, *, meta: dict[str, str] | None = None) -> Turn:
        """`say` for asyncio: the model call runs in a worker thread."""
        return await asyncio.to_thread(self.say, message, meta=meta)

    def say(self, message: str, *, meta: dict[str, str] | None = None) -> Turn:
        """One turn: the user's message in, one validated catalog reply out.

        `meta` (text labels such as who sent the message) is kept with the turn and, with a
        store, in its audit row.
        """
        self._check_message(message)
        with self._lock:
            if self.ended:
                raise SessionError(f"session {self.id!r} has ended; start a new session")
            return self._turn(message, dict(meta or {}))

    def _check_message(self, message: Any) -> None:
        if not isinstance(message, str):
            raise MessageRejected(f"a message is text, not {type(message).__name__}")
        limit = self.engine.max_message_chars
        if len(message) > limit:
            raise MessageRejected(f"message of {len(message)} characters is over the limit of {limit}")
        try:
            size = len(message.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise MessageRejected(f"message is not valid Unicode text: a lone surrogate at character {exc.start}; "
                                  "decode the client's text as UTF-8 before sending it") from None
        if size > self.engine.max_message_tokens:  # a token holds at least one byte: fewer bytes, fewer tokens
            self._check_tokens(message)

    def _check_tokens(self, message: str) -> None:
        """Refuse a message of more tokens than the limit where the backend counts tokens
        locally (a few characters can be many tokens: emoji). With encoder understanding a
        backend not loaded yet is not loaded for this."""
        engine = self.engine
        backend = engine._backend if engine.understanding == "encoder" else engine.backend
        count = getattr(backend, "count_tokens", None)
        if isinstance(backend, str) or not callable(count):
            return
        tokens, limit = count(message), engine.max_message_tokens
        if tokens > limit:
            raise MessageRejected(f"message of {tokens} tokens is over the limit of {limit} "
                                  f"({len(message)} characters)")

    def _turn(self, message: str, meta: dict[str, str]) -> Turn:
        engine = self.engine
        started = time.perf_counter()
        trace = Trace(mode=engine.mode, node=self.node, understanding=engine.understanding)
        if engine.understanding == "model":
            runner = _Prompted if engine.mode == "prompted" else _Executed
        else:
            runner = _Understood
        with turn_deadline(engine.turn_timeout):
            chosen = runner(self, message, trace).run()
        if chosen is None:
            chosen = Reply(engine.catalog.fallback)
        lines = self._render(chosen, trace)
        if trace.fallback:
            chosen = Reply(engine.catalog.fallback)
            lines = self._render(chosen, trace)
        t = time.perf_counter()
        new_state, moved = self._apply_effects(chosen)
        if moved is not None:
            chosen = dataclasses.replace(chosen, goto=moved)  # the effect decided where the turn leads
        trace.timings["effects_s"] = time.perf_counter() - t
        trace.timings["total_s"] = time.perf_counter() - started
        backend = engine._backend if not isinstance(engine._backend, (str, type(None))) else None
        trace.backend = getattr(backend, "name", "")
        trace.model = getattr(backend, "model", "")
        text = "\n".join(line["text"] for line in lines)
        turn = Turn(self.id, len(self.turns), message, chosen, text, new_state, trace, self.locale,
                    lines[-1]["audio"], lines, self.node, meta)
        log.info("session %s turn %d: %s (%.0f ms)%s", self.id, len(self.turns), _serial(chosen, engine.catalog),
                 1000 * trace.timings["total_s"], f"; fallback: {trace.fallback_reason}" if trace.fallback else "")
        if engine.store is not None:
            self._save(turn)
        self._advance(turn)
        return turn

    def _save(self, turn: Turn) -> None:
        """Record the turn, the state after it and its audit row in one transaction.

        Raises before the session moves on when the store fails (StoreError) or holds a
        different version of this session (SessionError: the engine forgets its copy, so
        the next `engine.session(id)` loads the stored one).
        """
        node = turn.reply.goto or self.node
        try:
            self.engine.store.record_turn(_turn_record(self, turn), turn.state.model_dump(mode="json"),
                                          ended=turn.reply.end, node=node)
        except SessionError:
            with self.engine._sessions_lock:
                if self.engine._sessions.get(self.id) is self:
                    del self.engine._sessions[self.id]
            raise

    def _advance(self, turn: Turn) -> None:
        """Commit a turn: the new state, the node it moves to, the lines said."""
        self.state = turn.state
        self.turns.append(turn)
        self.said_ids.update(line["id"] for line in turn.lines)
        if turn.reply.goto:
            self.node = turn.reply.goto
        if turn.reply.end:
            self.ended = True

    def _render(self, chosen: Reply, trace: Trace) -> list[dict]:
        catalog = self.engine.catalog
        t = time.perf_counter()
        try:
            lines = [{"id": line.id, "slots": line.slots,
                      "text": catalog.render(line.id, line.slots, self.locale),
                      "audio": catalog[line.id].audio_for(self.locale)} for line in chosen.lines]
        except CatalogError as exc:
            _fallback(trace, f"rendering {chosen.id} failed: {exc.message}")
            lines = [{"id": catalog.fallback, "slots": {}, "audio": catalog[catalog.fallback].audio_for(self.locale),
                      "text": catalog.render(catalog.fallback, {}, self.locale)}]
        trace.timings["render_s"] = time.perf_counter() - t
        return lines

    def _apply_effects(self, chosen: Reply) -> tuple[BaseModel, str | None]:
        """The state after the reply's effects, and the node an effect moved to (or None)."""
        policy = self.engine.policy
        effects = [(line, policy.effects.get(line.id)) for line in chosen.lines]
        effects = [(line, fn) for line, fn in effects if fn is not None]
        if not effects:
            return self.state, None
        draft = self.state.model_copy(deep=True)
        moved = None
        for line, effect in effects:
            target = _run_effect(effect, draft, line)
            if target is None:
                continue
            declared = policy.effect_gotos.get(line.id, ())
            if target not in declared or target not in policy.nodes:
                raise EffectError(f"effect for {line.id} ({effect.__name__}) moved to {target!r}, which is not "
                                  f"one of the nodes it declares ({', '.join(map(repr, declared)) or 'none'}); "
                                  f'the state is unchanged (declare it: @policy.effect("{line.id}", goto=[...]))')
            moved = target
        try:
            return type(draft).model_validate(dict(draft)), moved
        except ValidationError as exc:
            raise EffectError(f"effects for {chosen.id} left an invalid state: {exc.errors()[0]['msg']}; "
                              "the state is unchanged") from exc

    def history(self) -> list[HistoryLine]:
        """Recent turns as the model sees them, oldest first."""
        keep = self.turns[-self.engine.history_turns:] if self.engine.history_turns else []
        return [HistoryLine(t.message, _serial(t.reply, self.engine.catalog)) for t in keep]


def _run_effect(effect: Callable, draft: BaseModel, line: Any) -> str | None:
    """Call one effect, bounded by `EFFECT_SECONDS`; its failures are `EffectError`s."""
    def over() -> EffectError:
        return EffectError(f"effect for {line.id} ({effect.__name__}) ran past its bound of {EFFECT_SECONDS:g} s; "
                           "the state is unchanged (an effect updates the state: no waiting, no slow I/O)")

    with deadline.bounded(EFFECT_SECONDS, over) as budget:
        try:
            return effect(draft, line)
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            if isinstance(exc, KeyboardInterrupt) and budget is not None and budget.interrupted:
                raise  # a real Ctrl-C
            raise EffectError(f"effect for {line.id} ({effect.__name__}) raised "
                              f"{type(exc).__name__}: {exc}; the state is unchanged") from exc


def _earlier(session: Session) -> list[str]:
    """The messages of the session's last turns, oldest first (where extracted values may be)."""
    return [turn.message for turn in session.turns[-EARLIER_TURNS:]]


EARLIER_TURNS = 20  # how far back a hole looks for what the person typed


def _serial(reply: Reply, catalog) -> str:
    return display(serialize(reply, catalog))


def _fallback(trace: Trace, reason: str) -> None:
    if not trace.fallback:
        log.info("answering with the fallback line: %s", reason)
        trace.fallback = True
        trace.fallback_reason = reason


class _Prompted:
    """Prompted mode: explore, constrain to the reachable replies, one model call, validate."""

    def __init__(self, session: Session, message: str, trace: Trace) -> None:
        self.session, self.message, self.trace = session, message, trace
        self.engine = session.engine

    def run(self) -> Reply | None:
        trace, engine = self.trace, self.engine
        t = time.perf_counter()
        exploration = engine.explore(self.session.state, self.session.node)
        replies = _emittable(engine, self.session, exploration.reachable)
        trace.timings["explore_s"] = time.perf_counter() - t
        if not replies:
            _fallback(trace, "no reachable reply may be emitted (drafts or retired lines)")
            return None
        constraint = constraint_for(replies, engine.catalog)
        trace.reachable = [display(a) for a in constraint.alternatives]
        t = time.perf_counter()
        history = _fit_history(engine, self.session.history(), self.message, trace.reachable,
                               self.session.node)
        hints = reply_hints(engine.policy, exploration, replies, self.session.node)
        prompt = build_prompt(engine.policy, self.session.state, history, self.message, trace.reachable,
                              self.session.node, hints)
        trace.timings["prompt_s"] = time.perf_counter() - t
        parsed = _generate_valid(engine, prompt, constraint, trace,
                                 guide=narrowed(constraint, self.message, _earlier(self.session)))
        if parsed is None:
            return None
        index, holes = parsed
        return _replayed(engine, self.session, trace, exploration, replies[index], holes)


def _emittable(engine: Engine, session: Session, reachable: tuple[Reply, ...]) -> list[Reply]:
    """The reachable replies that may be said now; a reply id the catalog lacks is a PolicyError."""
    catalog = engine.catalog
    unknown = [line.id for r in reachable for line in r.lines if line.id not in catalog]
    if unknown:
        raise PolicyError(f"policy {engine.policy.name!r} reached reply {unknown[0]}, which is "
                          f"not in catalog {catalog.id!r}", entry=unknown[0],
                          hint="run `dialogue lint` with a sample state like this one")
    return [r for r in reachable if _allowed(engine, session, r) is None]


def _replayed(engine: Engine, session: Session, trace: Trace, exploration: Exploration, target: Reply,
              holes: tuple[str, ...]) -> Reply | None:
    """The chosen reply with the model's extracted values put back through the decision function."""
    path = exploration.paths_to(target)[0]
    trace.path = [s.describe() for s in path.steps if s.kind != EXTRACT]
    if not holes:
        return _checked(engine, session, target, trace)
    symbolic = extracted_in_order(target, engine.catalog)
    extracted = {value.index: text for value, text in zip(symbolic, holes)}
    said = ReplayingSaid(path.steps, extracted)
    real = run_decision(engine.policy, said, frozen_copy(session.state), session.node)
    trace.path = [s.describe() for s in said.steps]
    return _checked(engine, session, real, trace)


def _allowed(engine: Engine, session: Session, chosen: Reply) -> str | None:
    """Why `chosen` may not be said now (not approved, a required line missing), or None."""
    catalog = engine.catalog
    said = set(session.said_ids)
    for line in chosen.lines:
        if not catalog.emittable(line.id, allow_drafts=engine.allow_drafts, locale=session.locale):
            return f"{line.id} is not approved for emission"
        missing = [r for r in catalog.required_before(line.id) if r not in said]
        if missing:
            return f"{line.id} requires {missing[0]} to be said first"
        said.add(line.id)
    return None


def _checked(engine: Engine, session: Session, chosen: Reply, trace: Trace) -> Reply | None:
    """The reply with normalized slot values, or None (fallback) when anything fails."""
    lines = []
    for line in chosen.lines:
        try:
            slots = engine.catalog.check_slots(line.id, line.slots)
        except CatalogError as exc:
            _fallback(trace, f"slot values of {line.id} failed validation: {exc.message}")
            return None
        lines.append(Reply(line.id, slots, line.goto, line.end, origin=line.origin))
    why = _allowed(engine, session, chosen)
    if why is not None:
        _fallback(trace, why)
        return None
    if chosen.goto is not None and chosen.goto not in engine.policy.nodes:
        raise PolicyError(f"reply {chosen.id} moves to node {chosen.goto!r}, which does not exist",
                          entry=chosen.id, hint=f"nodes: {', '.join(engine.policy.nodes)}")
    result = lines[-1]
    for earlier in reversed(lines[:-1]):
        result = earlier + result
    return result


def _generate_valid(engine: Engine, prompt, constraint: Constraint, trace: Trace,
                    guide: Constraint | None = None):
    """Call the model, validate; retry `engine.retries` times; None means fallback.

    `guide` (default: the constraint) is what the backend decodes in; the output is
    always validated against `constraint`.
    """
    grammar = reply_grammar(constraint)
    guide = guide or constraint
    for attempt in range(engine.retries + 1):
        trace.retries = max(trace.retries, attempt)
        if _out_of_time(engine, trace):
            return None
        t = time.perf_counter()
        try:
            completion = engine.backend.generate(prompt, guide)
        except ResponseInvalid as exc:  # the server's answer is garbage: like output that fails validation
            trace.validation_errors.append(str(exc))
            continue
        except BackendError as exc:
            if _out_of_time(engine, trace):  # cut short by the turn's deadline
                trace.validation_errors.append(str(exc))
                return None
            raise
        finally:
            trace.timings["generate_s"] = trace.timings.get("generate_s", 0.0) + time.perf_counter() - t
        for stage, seconds in completion.detail.get("timings", {}).items():
            trace.timings[stage] = trace.timings.get(stage, 0.0) + seconds
        trace.add_completion(completion)
        t = time.perf_counter()
        try:
            parsed = grammar.parse(completion.text)
        except OutputInvalid as exc:
            trace.validation_errors.append(str(exc))
            continue
        finally:
            trace.timings["validate_s"] = trace.timings.get("validate_s", 0.0) + time.perf_counter() - t
        trace.valid = True
        return parsed
    _fallback(trace, f"model output failed validation {engine.retries + 1} times")
    return None


def _out_of_time(engine: Engine, trace: Trace) -> bool:
    """Whether the turn's deadline has passed (then the turn falls back, flagged)."""
    left = turn_time_left()
    if left is None or left > 0:
        return False
    _fallback(trace, f"the turn ran past its deadline of {engine.turn_timeout:g} s")
    return True


def _fit_history(engine: Engine, history: list[HistoryLine], message: str,
                 allowed: list[str], node: str) -> list[HistoryLine]:
    """Drop the oldest turns until the prompt fits the backend's context."""
    backend = engine.backend
    n_ctx = getattr(backend, "n_ctx", None)
    count = getattr(backend, "count_tokens", None)
    if not n_ctx or not callable(count) or not history:
        return history
    from .prompt import static_prefix

    budget = n_ctx - _static_tokens(engine, count, static_prefix(engine.policy, node)) - 64
    fixed = count(message) + sum(count(a) for a in allowed) + 200
    while history and fixed + sum(count(h.message) + count(h.reply) + 8 for h in history) > budget:
        history = history[1:]
    return history


def _static_tokens(engine: Engine, count, text: str) -> int:
    cached = getattr(engine, "_static_token_count", None)
    if cached is None or cached[0] != text:
        cached = (text, count(text))
        engine._static_token_count = cached
    return cached[1]


class _Executed:
    """Executed mode: run the decision function; every `said` call asks the model."""

    def __init__(self, session: Session, message: str, trace: Trace) -> None:
        self.session, self.message, self.trace = session, message, trace
        self.engine = session.engine

    def run(self) -> Reply | None:
        chosen = _decided(self, _ModelSaid(self), "a said answer failed validation")
        if chosen is None:
            return None
        for line in chosen.lines:
            if line.id not in self.engine.catalog:
                raise PolicyError(f"policy {self.engine.policy.name!r} returned reply {line.id}, which is "
                                  f"not in catalog {self.engine.catalog.id!r}", entry=line.id)
        return _checked(self.engine, self.session, chosen, self.trace)


def _decided(runner: Any, said: Said, failure: str) -> Reply | None:
    """Run the node's decision function with `said`; None (fallback) when an answer fails."""
    t = time.perf_counter()
    try:
        return run_decision(runner.engine.policy, said, frozen_copy(runner.session.state), runner.session.node)
    except OutputInvalid as exc:
        _fallback(runner.trace, f"{failure}: {exc}")
        return None
    finally:
        runner.trace.timings["decide_s"] = time.perf_counter() - t
        runner.trace.path = [s.describe() for s in said.steps]


class _ModelSaid(Said):
    """`said` answered by the model: yes/no, a constrained choice, a regex span."""

    answers_off_the_clock = True  # the model's time is not the decision function's

    def __init__(self, runner: _Executed) -> None:
        super().__init__()
        self.runner = runner

    def _answer(self, step: Step, index: int) -> Any:
        engine, trace = self.runner.engine, self.runner.trace
        labels = _labels(step)
        prompt = question_prompt(engine.policy, self.runner.session.history(), self.runner.message,
                                 step.question, step.kind, labels if step.kind == PICK else (),
                                 self.runner.session.node)
        constraint = (Constraint.choice(labels) if step.kind != EXTRACT
                      else Constraint(((self._hole(step),),)))
        attempts_before = len(trace.raw)
        guide = (narrowed(constraint, self.runner.message, _earlier(self.runner.session))
                 if step.kind == EXTRACT else constraint)
        parsed = _generate_valid(engine, prompt, constraint, trace, guide=guide)
        raw = trace.raw[attempts_before:]
        if parsed is None:
            raise OutputInvalid(f"no valid answer to {step.question!r}", raw=raw[-1] if raw else None)
        index_, holes = parsed
        answer = holes[0] if step.kind == EXTRACT else step.options[index_]
        trace.steps.append({"kind": step.kind, "question": step.question,
                            "answer": answer if step.kind == EXTRACT else labels[index_],
                            "raw": raw, "options": list(labels)})
        return answer

    def _hole(self, step: Step) -> Hole:
        """The hole an extracted value must fit (its pattern; the matcher narrows it further)."""
        return Hole(step.pattern, step.max_length or 64)


def _labels(step: Step) -> list[str]:
    if step.kind == ASK:
        return ["yes", "no"]
    return [str(o) for o in step.options]


class _Understood:
    """Encoder (and hybrid) understanding: the matcher ranks the reachable paths and one is
    taken; the decision function then runs for real, its `said` calls answered as that path
    answers them and its extracted values taken from what the person typed (the model
    writes one only where the message does not decide it). Hybrid prompted turns let the
    model choose among the matcher's best candidates first."""

    def __init__(self, session: Session, message: str, trace: Trace) -> None:
        self.session, self.message, self.trace = session, message, trace
        self.engine = session.engine

    def run(self) -> Reply | None:
        trace, engine, session = self.trace, self.engine, self.session
        t = time.perf_counter()
        exploration = engine.explore(session.state, session.node)
        replies = _emittable(engine, session, exploration.reachable)
        trace.timings["explore_s"] = time.perf_counter() - t
        if not replies:
            _fallback(trace, "no reachable reply may be emitted (drafts or retired lines)")
            return None
        trace.reachable = [display(a) for a in constraint_for(replies, engine.catalog).alternatives]
        allowed = set(replies)
        paths = _with_spans([p for p in exploration.paths if p.reply in allowed], self.message, _earlier(session))
        ranking = engine.matcher.rank(session.node, self.message, paths)
        trace.timings["match_s"] = ranking.seconds
        self._record(ranking)
        unclear = engine.policy.unclear_of(session.node)
        if ranking.unclear and unclear is not None and _allowed(engine, session, Reply(unclear)) is None:
            trace.path = [f"unclear: best match {ranking.confidence:.2f} < {ranking.threshold:.2f}"]
            return _checked(engine, session, Reply(unclear), trace)
        chosen = ranking.chosen
        if engine.understanding == "hybrid" and engine.mode == "prompted" and len(ranking.candidates) > 1:
            return self._hybrid(exploration, ranking)
        return self._run_path(chosen.path)

    def _record(self, ranking) -> None:
        trace, catalog = self.trace, self.engine.catalog
        matcher = self.engine.matcher
        trace.encoder = f"{matcher.encoder.model_id} {matcher.encoder.hash[:12]}"
        scores = [c.score for c in ranking.candidates]
        top = max(scores) if scores else 0.0
        weights = [math.exp(s - top) for s in scores]
        total = sum(weights) or 1.0
        trace.candidates = [{"reply": _serial(c.path.reply, catalog), "score": round(w / total, 4),
                             "confidence": round(c.confidence, 4)}
                            for c, w in zip(ranking.candidates[:HYBRID_CANDIDATES * 2], weights)]
        trace.confidence = round(ranking.confidence, 4)
        trace.threshold = round(ranking.threshold, 4)
        trace.unclear = ranking.unclear
        trace.scores = {entry["reply"]: entry["score"] for entry in trace.candidates}

    def _run_path(self, path) -> Reply | None:
        """Run the decision function, answering as `path` does; extracted values from the message."""
        chosen = _decided(self, _MatcherSaid(self, path), "an extracted value failed validation")
        return None if chosen is None else _checked(self.engine, self.session, chosen, self.trace)

    def _hybrid(self, exploration: Exploration, ranking) -> Reply | None:
        """The language model chooses among the matcher's best candidates, in a prompt that
        holds only those candidates."""
        from .understanding.rerank import candidates_prompt

        engine, session, trace = self.engine, self.session, self.trace
        replies: list[Reply] = []
        for candidate in ranking.candidates:
            if candidate.path.reply not in replies:
                replies.append(candidate.path.reply)
            if len(replies) == HYBRID_CANDIDATES:
                break
        constraint = constraint_for(replies, engine.catalog)
        allowed = [display(a) for a in constraint.alternatives]
        matcher = engine.matcher.node(session.node)
        prompt = candidates_prompt(engine.policy, matcher, exploration, replies, allowed, session.history(),
                                   self.message, session.node)
        parsed = _generate_valid(engine, prompt, constraint, trace,
                                 guide=narrowed(constraint, self.message, _earlier(session)))
        if parsed is None:
            return None
        index, holes = parsed
        return _replayed(engine, session, trace, exploration, replies[index], holes)


def _with_spans(paths: list, message: str, earlier: list[str]) -> list:
    """The paths whose extracted values the person typed somewhere (all of them, when none has)."""
    texts = [t for t in (message, *reversed(earlier)) if t]

    def typed(path) -> bool:
        for step in path.steps:
            if step.kind == EXTRACT and hole_spans(Hole(step.pattern, step.max_length or 64), texts) == []:
                return False
        return True

    kept = [p for p in paths if typed(p)]
    return kept or paths


class _MatcherSaid(_ModelSaid):
    """`said` answered as the matcher's chosen path answers; `extract` from the message's spans."""

    def __init__(self, runner: _Understood, path) -> None:
        super().__init__(runner)
        self.path = path

    def _answer(self, step: Step, index: int) -> Any:
        recorded = self.path.steps[index] if index < len(self.path.steps) else None
        if recorded is None or recorded.question != step.question:
            raise ExplorationError(
                f"the decision function asked {step.question!r} where the explored path asked "
                f"{recorded.question if recorded else 'nothing'!r}",
                hint="a decision function must be deterministic: no randomness, clocks or I/O")
        if step.kind != EXTRACT:
            self.runner.trace.steps.append({"kind": step.kind, "question": step.question,
                                            "answer": _label(recorded.answer), "raw": [],
                                            "options": _labels(step), "by": "matcher"})
            return recorded.answer
        spans = self._spans(step)
        if spans is not None and len(spans) == 1:
            self.runner.trace.steps.append({"kind": step.kind, "question": step.question, "answer": spans[0],
                                            "raw": [], "options": [], "by": "span"})
            return spans[0]
        return super()._answer(step, index)

    def _spans(self, step: Step) -> list[str] | None:
        texts = [t for t in (self.runner.message, *reversed(_earlier(self.runner.session))) if t]
        return hole_spans(Hole(step.pattern, step.max_length or 64), texts)

    def _hole(self, step: Step) -> Hole:
        """Where the person typed several values of the pattern, the model chooses one of them,
        and an answer that is none of them fails validation: a value is never invented."""
        spans = self._spans(step)
        if spans:
            return Hole("|".join(re.escape(span) for span in spans), step.max_length or 64)
        return super()._hole(step)


def _label(answer: Any) -> str:
    return "yes" if answer is True else "no" if answer is False else str(answer)


def default_understanding(backend: Any) -> str:
    """Encoder understanding on the embedded model (measured best there); elsewhere the model."""
    if backend is None or backend == "llamacpp" or getattr(backend, "name", None) == "llamacpp":
        return "encoder"
    return "model"


def _check_unclear(policy: Policy, catalog) -> None:
    """The policy's `unclear` lines name nodes it has and approved, slot-free catalog lines."""
    from .checks import unclear_problems

    problems = unclear_problems(policy, catalog)
    if problems:
        raise problems[0]


# -- the session store: turns out as records, stored sessions back in -------------------------

_TRACE_COLUMNS = {"mode", "node", "reachable", "raw", "retries", "fallback", "fallback_reason",
                  "timings", "backend", "model"}  # trace fields the store keeps in columns of their own
_TRACE_FIELDS = sorted({f.name for f in dataclasses.fields(Trace)} - _TRACE_COLUMNS)


def _checked_on_change(value: str) -> str:
    if value not in ON_CHANGE:
        raise ValueError(f"on_change must be one of {', '.join(ON_CHANGE)}, not {value!r}")
    return value


def _open_store(store: Store | str | os.PathLike | None, store_messages: bool | None,
                redact: Callable[[str], str] | None, audit_key: Any) -> tuple[Store | None, bool]:
    """The engine's store and whether the engine opened it (and so closes it)."""
    if store is None or isinstance(store, Store):
        if store_messages is not None or redact is not None or audit_key is not None:
            raise ValueError("store_messages, redact and audit_key apply to a store the engine opens from a "
                             "path; pass them to Store(...) instead" if store is not None else
                             "store_messages, redact and audit_key need a store: pass store=PATH as well")
        return store, False
    if not isinstance(store, (str, os.PathLike)):
        raise TypeError(f"store is a file path, a postgresql:// URL or a Store, not {type(store).__name__}")
    return Store(store, store_messages=store_messages is not False, redact=redact, audit_key=audit_key), True


def _turn_record(session: Session, turn: Turn) -> TurnRecord:
    """A turn as the store keeps it; the trace fields without columns of their own go in `trace`."""
    engine, trace = session.engine, turn.trace
    return TurnRecord(
        session_id=session.id, index=turn.index, node=turn.node, message=turn.message,
        reply_id=turn.reply.id, slots=turn.reply.slots, text=turn.text, locale=turn.locale,
        mode=trace.mode, policy_hash=engine.policy.hash, catalog_hash=engine.catalog.hash,
        reachable=trace.reachable, raw=trace.raw, retries=trace.retries, fallback=trace.fallback,
        fallback_reason=trace.fallback_reason, backend=trace.backend, model=trace.model,
        timings=trace.timings, trace=_trace_extras(turn),
        earlier_messages=tuple(t.message for t in session.turns if t.message))


def _trace_extras(turn: Turn) -> dict:
    """The rest of the trace, plus the lines said and the transition, for resuming."""
    extras = {name: getattr(turn.trace, name) for name in _TRACE_FIELDS}
    extras.update(lines=turn.lines, goto=turn.reply.goto, end=turn.reply.end)
    if turn.meta:
        extras["meta"] = turn.meta
    return _finite(extras)


def _finite(value: Any) -> Any:
    """JSON has no infinity or NaN (log-probability scores can be -inf): those become text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _resumed(engine: Engine, record: SessionRecord, locale: str | None, on_change: str) -> Session:
    """A stored session continued: its state, node, turns (the history) and lines said."""
    _check_versions(engine, record, on_change)
    node = record.node or engine.policy.start
    if node not in engine.policy.nodes:
        raise SessionError(f"session {record.id!r} is at node {node!r}, which policy "
                           f"{engine.policy.name!r} no longer has; start a new session")
    known = engine.policy.state_model.model_fields  # a field the policy dropped since is dropped here
    state = {k: v for k, v in (record.state or {}).items() if k in known}
    session = Session(engine, record.id, engine.policy.new_state(state), locale or record.locale)
    session.node, session.ended = node, record.ended
    session.turns = [_restored_turn(engine, t) for t in record.turns]
    session.said_ids = {line["id"] for t in session.turns for line in t.lines}
    return session


def _check_versions(engine: Engine, record: SessionRecord, on_change: str) -> None:
    """Refuse, or with on_change="continue" accept, a session stored under other versions."""
    changed = [(what, old, new) for what, old, new in (
        ("policy", record.policy_hash, engine.policy.hash),
        ("catalog", record.catalog_hash, engine.catalog.hash)) if old != new]
    if not changed:
        return
    if on_change != "continue":
        what = " and ".join(f"{w} changed from {old} to {new}" for w, old, new in changed)
        raise SessionError(f"session {record.id!r} in {engine.store.path}: its {what}; pass "
                           "on_change=\"continue\" to continue it on the new version, or start a new session")
    # Continued: its next turn is recorded, and audited, with the new versions.


def _restored_turn(engine: Engine, record: TurnRecord) -> Turn:
    """A stored turn as a Turn; its text is the stored catalog rendering, never model output."""
    extras = record.trace or {}
    lines = extras.get("lines") or [{"id": record.reply_id, "slots": record.slots, "text": record.text,
                                     "audio": None}]
    chosen = _restored_reply(engine.catalog, lines, extras.get("goto"), bool(extras.get("end")))
    trace = Trace(mode=record.mode, node=record.node, reachable=record.reachable, raw=record.raw,
                  retries=record.retries, fallback=record.fallback, fallback_reason=record.fallback_reason,
                  timings=record.timings, backend=record.backend, model=record.model,
                  **{k: v for k, v in extras.items() if k in _TRACE_FIELDS})
    state = _restored_state(engine.policy, record.state_after)
    message = "" if is_message_digest(record.message) else record.message
    return Turn(record.session_id, record.index, message, chosen, record.text, state, trace, record.locale,
                lines[-1].get("audio"), lines, record.node, dict(extras.get("meta") or {}))


def _restored_reply(catalog, lines: list[dict], goto: str | None, end: bool) -> Reply:
    """The reply of a stored turn, with slot values typed by the catalog where it still allows them."""
    replies = [Reply(line["id"], _restored_slots(catalog, line["id"], line.get("slots") or {}))
               for line in lines]
    replies[-1] = dataclasses.replace(replies[-1], goto=goto, end=end)
    result = replies[-1]
    for earlier in reversed(replies[:-1]):
        result = earlier + result
    return result


def _restored_slots(catalog, id: str, slots: dict) -> dict:
    if id not in catalog:
        return slots
    try:
        return catalog.check_slots(id, slots)
    except CatalogError:  # the catalog changed since: keep the values as stored
        return slots


def _restored_state(policy: Policy, data: dict | None) -> BaseModel:
    """The state after a stored turn; unvalidated when the state model changed since."""
    try:
        return policy.new_state(data or {})
    except PolicyError:
        return policy.state_model.model_construct(**(data or {}))
