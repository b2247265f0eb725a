"""The server's sessions: which policy each belongs to, one turn at a time per session,
idempotent retries, and the JSON views of sessions, turns and policies.

Framework-free: the FastAPI app in `app.py` calls these from its worker threads.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
import weakref
from typing import Any

from pydantic_core import to_jsonable_python

from ..engine import Engine, Session, Turn, _finite
from ..errors import CatalogError, PolicyError, SessionError
from .closed import ClosedSessions
from .errors import ApiError
from .metrics import Metrics

__all__ = ["Service", "policy_view", "session_view", "turn_view"]

IDEMPOTENCY_KEY = "idempotency_key"  # the names under which a turn's meta keeps them
CLIENT = "client"


class Service:
    """The engines a server serves, by policy name, and the sessions it has seen."""

    def __init__(self, engines: dict[str, Engine], metrics: Metrics | None = None) -> None:
        self.engines = engines
        self.metrics = metrics or Metrics()
        self._owners: dict[str, str] = {}  # session id -> policy name
        self._held: dict[str, weakref.ref] = {}  # sessions without a store, as first handed out
        self._busy: set[str] = set()  # sessions with a turn in flight
        self._lock = threading.Lock()
        self._closed = {id(store): ClosedSessions(store) for store in _stores(engines.values())}
        self._closed_here = ClosedSessions()  # sessions of engines without a store
        self.readiness = {name: "loading" for name in engines}

    # -- policies and readiness -----------------------------------------------------------

    def engine(self, policy: str) -> Engine:
        engine = self.engines.get(policy)
        if engine is None:
            raise ApiError(404, "unknown_policy", f"this server serves no policy {policy!r}; "
                           f"it serves {', '.join(sorted(self.engines))}")
        return engine

    def warm(self) -> None:
        """Load what each policy's first turn would (its matcher; its model unless it is lazy)."""
        for name, engine in self.engines.items():
            try:
                engine.prepare()
                if engine.understanding != "encoder":
                    engine.backend  # noqa: B018 - creating it loads the model
                self.readiness[name] = "ready"
            except Exception as exc:  # reported by /readyz, which stays 503
                self.readiness[name] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    def close(self) -> None:
        """Close every engine (its backend) and every store they use."""
        for closed in self._closed.values():
            closed.shutdown()
        for engine in self.engines.values():
            engine.close()
        for store in _stores(self.engines.values()):
            store.close()

    def closed(self, session: Session) -> bool:
        """Whether the session has ended: by a reply that ends it, or closed by a client."""
        return session.ended or session.id in self._closed_of(session.engine)

    def _closed_of(self, engine: Engine) -> ClosedSessions:
        return self._closed[id(engine.store)] if engine.store is not None else self._closed_here

    @property
    def ready(self) -> bool:
        return all(state == "ready" for state in self.readiness.values())

    # -- sessions ----------------------------------------------------------------------

    def create(self, policy: str, id: str | None, state: dict | None, node: str | None,
               locale: str | None) -> tuple[Session, bool]:
        """A new session of `policy` (True), or its existing session `id` when nothing else is given."""
        engine = self.engine(policy)
        id = id or uuid.uuid4().hex
        with self._lock:
            owner = self._owner(id)
            if owner is not None:
                if owner != policy or state is not None or node is not None or locale is not None:
                    raise ApiError(409, "session_exists", f"session {id!r} exists already (policy {owner!r}); "
                                   "resume it by its id without state, node or locale, or choose another id")
                return self._held_session(self.engines[owner], id), False
            try:
                session = engine.session(id, state=state, node=node, locale=locale)
            except (PolicyError, CatalogError) as exc:
                raise ApiError(422, "invalid_session", exc.render().splitlines()[0]) from exc
            self._owners[id] = policy
            if engine.store is None:
                self._held[id] = weakref.ref(session)
        return session, True

    def session(self, id: str) -> Session:
        """The session `id`, resumed from the store when this process has not seen it yet."""
        owner = self._owners.get(id)
        if owner is None:
            with self._lock:
                owner = self._owner(id)
        if owner is None:
            raise ApiError(404, "unknown_session", f"no session {id!r}; create one with "
                           "POST /v1/policies/{policy}/sessions")
        return self._held_session(self.engines[owner], id)

    def _held_session(self, engine: Engine, id: str) -> Session:
        """The engine's session `id`, read again from the store when another process sharing it
        took turns since. Without a store, an engine that released it (it keeps its
        `max_sessions` most recent) would start a new one: that is 404, not a fresh session."""
        session = engine.session(id)
        if engine.store is not None:
            if engine.store.turn_count(id) != len(session.turns):  # another process took turns since
                engine.drop_session(id)
                session = engine.session(id)
            return session
        held = self._held.get(id)
        if held is not None and held() is session:
            return session
        engine.drop_session(id)
        with self._lock:
            self._owners.pop(id, None)
            self._held.pop(id, None)
        raise ApiError(404, "unknown_session", f"session {id!r} is no longer held: without a store the "
                       f"server keeps the {engine.max_sessions} most recently used sessions of a policy")

    def policy_of(self, id: str) -> str:
        """The policy of a session this process has seen."""
        return self._owners[id]

    def _owner(self, id: str) -> str | None:
        """The policy of session `id`: known here, or kept in a store of one of the engines."""
        if id in self._owners:
            return self._owners[id]
        for store in _stores(self.engines.values()):
            record = store.load_session(id)
            if record is None:
                continue
            if record.policy_name not in self.engines:
                raise ApiError(404, "unknown_session", f"session {id!r} belongs to policy "
                               f"{record.policy_name!r}, which this server does not serve")
            self._owners[id] = record.policy_name
            return record.policy_name
        return None

    def end(self, id: str, client: str | None = None) -> Session:
        """Close a session: later turns are refused; its turns stay (in the store: audited)."""
        session = self.session(id)
        with self._claimed(session):
            self._closed_of(session.engine).close(id, client)
        return session

    # -- turns ---------------------------------------------------------------------------

    def turn(self, id: str, message: str, client: str | None = None,
             key: str | None = None) -> tuple[Turn, bool]:
        """Take one turn (or, for a retried Idempotency-Key, return the turn it took): (turn, replayed)."""
        session = self.session(id)
        if key is not None and (earlier := self._earlier(session, key, message)) is not None:
            return earlier, True
        with self._claimed(session):
            if self.closed(session):
                raise ApiError(409, "session_ended", f"session {id!r} has ended; start a new session")
            meta = {name: value for name, value in ((CLIENT, client), (IDEMPOTENCY_KEY, key)) if value}
            policy = session.engine.policy.name
            self.metrics.add("dialogue_turns_in_flight", 1, policy=policy)
            try:
                turn, replayed = self._say(session, message, meta)
            finally:
                self.metrics.add("dialogue_turns_in_flight", -1, policy=policy)
        if not replayed:
            self.metrics.turn(policy, turn.trace.timings, turn.trace.fallback)
        return turn, replayed

    def _say(self, session: Session, message: str, meta: dict[str, str]) -> tuple[Turn, bool]:
        """The turn. When another process sharing the store advanced the session first, the
        engine drops its stale copy and the turn runs on the stored one (unless that one
        already took this Idempotency-Key)."""
        try:
            return session.say(message, meta=meta), False
        except SessionError:
            fresh = session.engine.session(session.id) if session.engine.store is not None else session
            if fresh is session:
                raise
        key = meta.get(IDEMPOTENCY_KEY)
        if key is not None and (earlier := self._earlier(fresh, key, message)) is not None:
            return earlier, True
        if self.closed(fresh):
            raise ApiError(409, "session_ended", f"session {session.id!r} has ended; start a new session")
        return fresh.say(message, meta=meta), False

    def _claimed(self, session: Session):
        """Hold the session for one turn; 409 when another request holds it."""
        return _Claim(self, session.id)

    def _earlier(self, session: Session, key: str, message: str) -> Turn | None:
        """The session's turn taken under Idempotency-Key `key`, if any (a turn read back from
        a store with a redaction hook holds the key as the hook left it)."""
        store = session.engine.store
        forms = {key, store.redact(key)} if store is not None and store.redact is not None else {key}
        for turn in reversed(session.turns):
            if turn.meta.get(IDEMPOTENCY_KEY) in forms:
                if _comparable(session) and turn.message != message:
                    raise ApiError(422, "idempotency_key_reused", f"Idempotency-Key {key!r} was used for "
                                   f"turn {turn.index} with another message; use a new key for a new message")
                return turn
        return None


class _Claim:
    def __init__(self, service: Service, id: str) -> None:
        self.service, self.id = service, id

    def __enter__(self) -> None:
        with self.service._lock:
            if self.id in self.service._busy:
                raise ApiError(409, "turn_in_progress", f"session {self.id!r} has a turn in progress; "
                               "send the next message when it is answered")
            self.service._busy.add(self.id)

    def __exit__(self, *exc: object) -> None:
        with self.service._lock:
            self.service._busy.discard(self.id)


def _stores(engines) -> list:
    """The engines' stores, each once (engines may share one)."""
    stores: list = []
    for engine in engines:
        if engine.store is not None and all(engine.store is not s for s in stores):
            stores.append(engine.store)
    return stores


def _comparable(session: Session) -> bool:
    """Whether the session's turns keep the message as sent (no redaction, no digest)."""
    store = session.engine.store
    return store is None or (store.store_messages and store.redact is None)


# -- views: what the JSON says ---------------------------------------------------------------

def turn_view(turn: Turn, trace: bool = False) -> dict[str, Any]:
    lines = [{"id": line["id"], "slots": _json(line.get("slots") or {}), "text": line["text"],
              "audio": line.get("audio")} for line in turn.lines]
    return {
        "session_id": turn.session_id, "index": turn.index, "reply_id": turn.reply.id,
        "slots": lines[-1]["slots"] if lines else {}, "lines": lines, "text": turn.text,
        "audio": [line["audio"] for line in lines], "locale": turn.locale,
        "state": turn.state.model_dump(mode="json"), "node": turn.reply.goto or turn.node,
        "ended": bool(turn.reply.end), "fallback": turn.trace.fallback,
        "trace": _finite(_json(dataclasses.asdict(turn.trace))) if trace else None,
    }


def session_view(session: Session, ended: bool) -> dict[str, Any]:
    return {
        "id": session.id, "policy": session.engine.policy.name, "state": session.state.model_dump(mode="json"),
        "node": session.node, "locale": session.locale, "ended": ended, "turns": len(session.turns),
        "history": [{"index": t.index, "message": t.message, "reply_id": t.reply.id, "text": t.text}
                    for t in session.turns],
    }


def policy_view(engine: Engine) -> dict[str, Any]:
    policy, catalog = engine.policy, engine.catalog
    return {
        "name": policy.name, "hash": policy.hash, "start": policy.start, "nodes": list(policy.nodes),
        "mode": engine.mode, "understanding": engine.understanding,
        "catalog": {"id": catalog.id, "version": catalog.version, "hash": catalog.hash,
                    "locale": engine.locale, "locales": list(catalog.locales)},
    }


def _json(value: Any) -> Any:
    """JSON values (Decimal slot values become text, as in the store's export)."""
    return to_jsonable_python(value, fallback=str)
