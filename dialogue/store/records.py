"""What the store hands out (turns, sessions, corrections, a verification), and how a turn maps
onto the rows of the `turns` table and onto its audit document."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..errors import StoreError

__all__ = ["CorrectionRecord", "SessionRecord", "TurnRecord", "VerifyResult", "canonical_json",
           "is_message_digest"]

# What `store_messages=False` keeps of a message: a salted hash, or an HMAC under the audit key.
_DIGEST = re.compile(r"(?:sha256|hmac-sha256):[0-9a-f]{64}")


def is_message_digest(message: str) -> bool:
    """Whether a stored message is the hash `store_messages=False` keeps, not the text."""
    return _DIGEST.fullmatch(message) is not None


@dataclass(kw_only=True)
class TurnRecord:
    """One turn as stored: what came in, what was allowed, what the model chose, what was sent."""

    session_id: str
    index: int  # turn number within the session, from 0
    message: str
    reply_id: str
    text: str
    locale: str
    mode: str
    policy_hash: str
    catalog_hash: str
    slots: dict = field(default_factory=dict)
    reachable: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    retries: int = 0
    fallback: bool = False
    fallback_reason: str | None = None
    backend: str = ""
    model: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    created_at: str = ""  # ISO 8601, UTC; set by the store when empty
    trace: dict = field(default_factory=dict)
    node: str = ""  # the node the turn ran in
    seq: int | None = None  # the audit sequence number, set when read back
    state_after: dict | None = None  # the state snapshot after the turn, set when read back
    node_after: str | None = None  # the session's node after the turn, set when read back
    ended_after: bool = False  # whether the turn ended the session, set when read back
    # The session's earlier messages, never stored: with `store_messages=False` they are hashed
    # too wherever this turn's model output or trace repeats one.
    earlier_messages: tuple[str, ...] = ()


@dataclass
class SessionRecord:
    """A stored session: its versions, latest state snapshot and turns, oldest first."""

    id: str
    policy_name: str
    policy_hash: str
    catalog_hash: str
    state: dict
    locale: str
    mode: str
    ended: bool
    node: str | None
    turns: list[TurnRecord]
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True, kw_only=True)
class CorrectionRecord:
    """A reviewer's correction of a stored turn, with what learning from it needs.

    `message` is None when the store kept only a salted hash of it (`store_messages=False`);
    `state` is the state before the turn; `chosen` the reply id the engine sent.
    """

    session_id: str
    turn: int
    seq: int  # the audit sequence number of the turn
    reply_id: str  # the reply the turn should have had
    chosen: str
    by: str
    note: str
    at: str  # when the correction was recorded (ISO 8601, UTC)
    policy_name: str
    message: str | None
    node: str
    state: dict
    supersedes: str | None = None  # the reply id of the earlier correction of this turn, if any


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of walking the audit chain; `head` is the last row's hash, to keep elsewhere.

    `signed_head` is "COUNT:HASH" (":MAC" added with a key): what `dialogue audit head` prints.
    `first_bad` is None for a fault no row is to blame for (an unused version's text).
    """

    ok: bool
    count: int
    first_bad: int | None = None
    reason: str | None = None
    head: str | None = None
    signed_head: str | None = None
    keyed: bool = False


# -- how a turn maps onto the turns table: (field in the audit JSON, column, kind) ----------

TURN_COLUMNS = (
    ("session_id", "session_id", "text"), ("index", "turn", "int"), ("node", "node", "text"),
    ("message", "message", "text"), ("reply_id", "reply_id", "text"), ("slots", "slots", "json"),
    ("text", "text", "text"), ("locale", "locale", "text"), ("mode", "mode", "text"),
    ("reachable", "reachable", "json"), ("raw", "raw", "json"), ("retries", "retries", "int"),
    ("fallback", "fallback", "bool"), ("fallback_reason", "fallback_reason", "text"),
    ("backend", "backend", "text"), ("model", "model", "text"), ("timings", "timings", "json"),
    ("policy_hash", "policy_hash", "text"), ("catalog_hash", "catalog_hash", "text"),
    ("created_at", "created_at", "text"), ("trace", "trace", "json"),
)


def canonical_json(value: Any) -> str:
    """The one JSON text of a value: sorted keys, no spaces, UTF-8; what the chain hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def turn_doc(record: TurnRecord, message: str, new_state: dict, ended: bool, node: str | None) -> dict:
    """The turn as a JSON-only dict (Decimal, dates, models turned into JSON values)."""
    doc = {name: getattr(record, name) for name, _, _ in TURN_COLUMNS}
    doc.update(message=message, created_at=record.created_at or now(),
               after={"state": new_state, "node": node, "ended": bool(ended)})
    return json.loads(to_json(doc, f"turn {record.index} of session {record.session_id!r}"))


def doc_from_row(row: dict) -> dict:
    """The audit document rebuilt from a turns row joined with its state and versions."""
    doc = {name: from_column(row[column], kind) for name, column, kind in TURN_COLUMNS}
    after_state = row["after_state"]
    doc["after"] = {"state": json.loads(after_state) if after_state is not None else None,
                    "node": row["after_node"], "ended": bool(row["after_ended"])}
    doc.update(seq=row["seq"], policy_source_sha256=row["policy_sha"], catalog_text_sha256=row["catalog_sha"])
    return doc


def joined_turns(extra: str = "") -> str:
    """Turns with the state after each and the digests of their versions: all the audit JSON holds."""
    return (f"SELECT {extra}t.*, s.state AS after_state, s.node AS after_node, s.ended AS after_ended, "
            "p.source_sha256 AS policy_sha, c.text_sha256 AS catalog_sha FROM turns t "
            "LEFT JOIN states s ON s.session_id = t.session_id AND s.turn = t.turn + 1 "
            "LEFT JOIN policies p ON p.hash = t.policy_hash "
            "LEFT JOIN catalogs c ON c.hash = t.catalog_hash ")


def audited_record(body: dict, seq: int) -> TurnRecord:
    """A turn as its audit row holds it."""
    after = body.get("after") or {}
    values = {name: body.get(name) for name, _, _ in TURN_COLUMNS if name in body}
    return TurnRecord(**values, seq=seq, state_after=after.get("state"), node_after=after.get("node"),
                      ended_after=bool(after.get("ended")))


def correction_record(row: dict, supersedes: str | None) -> CorrectionRecord:
    state = row["state_before"]
    return CorrectionRecord(
        session_id=row["session_id"], turn=row["turn"], seq=row["seq"], reply_id=row["reply_id"],
        chosen=row["chosen"], by=row["reviewer"], note=row["note"], at=row["created_at"],
        policy_name=row["policy_name"], node=row["node"] or "",
        message=None if is_message_digest(row["message"]) else row["message"],
        state=json.loads(state) if state is not None else {}, supersedes=supersedes)


def first_difference(audited: dict, stored: dict) -> str | None:
    for key in sorted(audited.keys() | stored.keys()):
        if audited.get(key, _MISSING) != stored.get(key, _MISSING):
            return key
    return None


_MISSING = object()


def to_column(value: Any, kind: str) -> Any:
    if kind == "json":
        return to_json(value)
    return int(value) if kind == "bool" else value


def from_column(value: Any, kind: str) -> Any:
    if kind == "json":
        return json.loads(value) if value is not None else None
    return bool(value) if kind == "bool" else value


def _jsonable(value: Any) -> Any:
    """JSON for what `json` cannot write: Decimal and dates as strings, models as dicts."""
    if isinstance(value, (Decimal, datetime.date, datetime.time)):
        return value.isoformat() if not isinstance(value, Decimal) else str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def to_json(value: Any, what: str = "a value") -> str:
    try:
        return json.dumps(value, default=_jsonable, ensure_ascii=False, allow_nan=False, sort_keys=True)
    except ValueError as exc:  # NaN or infinity, or a circular reference
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from exc


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
