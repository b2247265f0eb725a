"""Sessions, turns, state snapshots, versions, a hash-chained audit log and reviewers'
corrections of turns in one SQLite file.

A turn is one transaction: its row, the state after it, the session's counters and its
audit row commit together or not at all. Audit rows form one chain across all sessions:
row N holds the turn's canonical JSON, the hash of row N-1 and SHA-256(prev_hash + body),
or with an audit key (never kept in the file) HMAC-SHA-256 under it, so that the chain
cannot be recomputed without the key. `meta.audit_head` holds the last row's number and
hash (signed with the key); a head kept elsewhere proves later that nothing was cut off.
Everything resuming a session relies on (state, node, ended, versions, lines said) is read
from its audit rows, never from the unaudited `sessions` row, and `verify` checks that row,
the policy source and catalog text (rehashed) and the salt against the chain.
Appends take the write lock first (`BEGIN IMMEDIATE`), so two writers never share a
sequence number. The file is in WAL mode with a 10 s busy timeout, so several processes
can serve sessions from it. Turns, states, audit rows and corrections are append-only
(database triggers refuse UPDATE and DELETE); a later correction of a turn supersedes an
earlier one without removing it.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import Catalog
from .errors import CatalogError, SessionError, StoreError

if TYPE_CHECKING:
    from sqlite_utils import Database

__all__ = ["KEY_ENV", "KEY_FILE_ENV", "SCHEMA_VERSION", "CorrectionRecord", "SessionRecord", "Store",
           "TurnRecord", "VerifyResult", "canonical_json", "is_message_digest", "read_key"]

SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 10.0
GENESIS = "0" * 64  # the "previous hash" of audit row 1
# A read-only open reads a file of this version or later as it is: later versions only add
# tables (version 3: corrections) or audit fields (version 4), so its sessions, turns and
# audit chain read the same.
READ_AS_IS_FROM = 2
# What `store_messages=False` keeps of a message: a salted hash, or an HMAC under the audit key.
_DIGEST = re.compile(r"(?:sha256|hmac-sha256):[0-9a-f]{64}")
KEY_ENV = "DIALOGUE_AUDIT_KEY"  # the audit key itself
KEY_FILE_ENV = "DIALOGUE_AUDIT_KEY_FILE"  # a file holding it


def is_message_digest(message: str) -> bool:
    """Whether a stored message is the hash `store_messages=False` keeps, not the text."""
    return _DIGEST.fullmatch(message) is not None


def read_key(key: bytes | str | os.PathLike | None = None) -> bytes | None:
    """The audit key: `key` (bytes or text, or a path to a key file), else $DIALOGUE_AUDIT_KEY_FILE,
    else $DIALOGUE_AUDIT_KEY, else None (no key: a plain SHA-256 chain)."""
    if key is None and os.environ.get(KEY_FILE_ENV):
        key = Path(os.environ[KEY_FILE_ENV])
    if key is None and os.environ.get(KEY_ENV):
        key = os.environ[KEY_ENV]
    if isinstance(key, os.PathLike):
        try:
            key = Path(key).read_bytes().strip()
        except OSError as exc:
            raise StoreError(f"{key}: the audit key file cannot be read ({exc.strerror or exc})") from exc
    if isinstance(key, str):
        key = key.encode("utf-8")
    if key is not None and not isinstance(key, bytes):
        raise TypeError(f"audit_key is bytes, text or a key file path, not {type(key).__name__}")
    if key is not None and len(key) < 16:
        raise StoreError("the audit key is shorter than 16 bytes; use a long random one "
                         "(for example `python -c 'import secrets; print(secrets.token_hex(32))'`)")
    return key


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

_TURN_COLUMNS = (
    ("session_id", "session_id", "text"), ("index", "turn", "int"), ("node", "node", "text"),
    ("message", "message", "text"), ("reply_id", "reply_id", "text"), ("slots", "slots", "json"),
    ("text", "text", "text"), ("locale", "locale", "text"), ("mode", "mode", "text"),
    ("reachable", "reachable", "json"), ("raw", "raw", "json"), ("retries", "retries", "int"),
    ("fallback", "fallback", "bool"), ("fallback_reason", "fallback_reason", "text"),
    ("backend", "backend", "text"), ("model", "model", "text"), ("timings", "timings", "json"),
    ("policy_hash", "policy_hash", "text"), ("catalog_hash", "catalog_hash", "text"),
    ("created_at", "created_at", "text"), ("trace", "trace", "json"),
)


class Store:
    """One SQLite file of sessions and their audited turns; safe to share between threads.

    `store_messages=False` keeps a hash of the message instead of its text, and its digest
    wherever the model's output or the trace repeated it; `redact` (str -> str) masks the
    message, the raw model output, the trace and the slot values before anything is kept.
    `audit_key` (bytes, text or a key file; default $DIALOGUE_AUDIT_KEY_FILE or
    $DIALOGUE_AUDIT_KEY) makes the chain and the message hash HMACs under a key that is not
    in the file. `readonly=None` opens read-write when the file allows it, read-only
    otherwise. `durable=False` trades the last commits on power loss (never on a crash) for speed.
    """

    def __init__(self, path: str | Path, *, store_messages: bool = True,
                 redact: Callable[[str], str] | None = None, create: bool = True,
                 readonly: bool | None = False, durable: bool = True,
                 audit_key: bytes | str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        self.store_messages = store_messages
        self.redact = redact
        self.durable = durable
        self._key = read_key(audit_key)
        self._lock = threading.RLock()
        self._may_create = create and readonly is not True
        self._check_path(self._may_create)
        try:
            self._open(readonly=bool(readonly))
        except _ReadOnlyFile:
            if readonly is not None:
                raise
            self._open(readonly=True)
        self.readonly = self._readonly

    # -- opening ---------------------------------------------------------------------

    def _check_path(self, may_create: bool) -> None:
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a session store; name a file")
        if not self.path.exists() and not may_create:
            raise StoreError(f"{self.path}: no such file; pass --db FILE or set DIALOGUE_DB")
        if not may_create and self.path.is_file() and self.path.stat().st_size == 0:
            raise StoreError(self._empty_message())
        if not self.path.exists() and not self.path.parent.is_dir():
            raise StoreError(f"{self.path}: the folder {self.path.parent} does not exist; create it first")

    def _empty_message(self) -> str:
        return (f"{self.path} is empty, not a session store (left as it is); name the store's file "
                "with --db FILE or DIALOGUE_DB")

    def _open(self, readonly: bool) -> None:
        from sqlite_utils import Database  # imported here: `import dialogue.store` stays fast

        self._readonly = readonly
        target = f"{self.path.resolve().as_uri()}?mode=ro" if readonly else str(self.path)
        try:
            self._conn = sqlite3.connect(target, uri=readonly, timeout=BUSY_TIMEOUT_S,
                                         isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _store_error(exc, self.path, "opening") from exc
        self.db = Database(self._conn, recursive_triggers=False, execute_plugins=False)
        try:
            with self._guard("opening"):
                self._prepare()
        except BaseException:
            self._conn.close()
            raise

    def _prepare(self) -> None:
        self._execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        self._execute("PRAGMA foreign_keys = ON")
        if self._readonly:
            self._execute("PRAGMA query_only = ON")
        else:
            self._execute("PRAGMA journal_mode = WAL")
            self._execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
        version = self._schema_version()
        created = version == 0
        if created and not self._may_create:
            raise StoreError(self._empty_message())
        if version < SCHEMA_VERSION and not (self._readonly and version >= READ_AS_IS_FROM):
            self._upgrade(version)
            version = SCHEMA_VERSION
        self.schema_version = version
        if not self._readonly:
            self._check_writable()
        self._salt = self._meta("salt")
        self.keyed_from = int(self._meta("audit_keyed_from") or 0) or None  # the first HMAC row
        if self._key is not None and created:
            self.key_chain()  # a new file with a key: keyed from its first row
        self._check_key()

    def _check_key(self) -> None:
        if self._key is not None and self.keyed_from is not None:
            if self._meta("audit_key_check") != _key_check(self._key):
                raise StoreError(f"{self.path}: the audit key does not match the one its chain is keyed "
                                 "with; give the right key (or none, to read it without verifying)")

    def key_chain(self) -> int:
        """Key a chain started without a key: rows from the next one on are HMACs under this
        store's key (the earlier ones stay SHA-256, linked to them); returns that row's number.

        Done once, on purpose: a store given a key that its chain was not keyed with is
        otherwise refused for writing, since a chain stripped of its key looks the same.
        """
        if self._key is None:
            raise StoreError("key_chain() needs a store opened with audit_key=...")
        with self._lock, self._guard("keying the audit chain"), self._transaction():
            if self._meta("audit_keyed_from") is None:  # another process may have keyed it meanwhile
                seq, digest = self._head()
                self._set_meta("audit_keyed_from", str(seq))
                self._set_meta("audit_key_check", _key_check(self._key))
                self.keyed_from = seq
                self._set_meta("audit_head", self._head_text(seq - 1, digest))
            self.keyed_from = int(self._meta("audit_keyed_from"))
        self._check_key()
        return self.keyed_from

    def _schema_version(self) -> int:
        """The file's schema version (0 for an empty file); refuses other and newer files."""
        tables = set(self.db.table_names())
        if not tables:
            return 0
        if "schema_version" not in tables:
            raise StoreError(f"{self.path} is an SQLite file but not a dialogue session store "
                             "(it has no schema_version table); name another file")
        version = self._execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {version}, newer than this dialogue "
                             f"reads ({SCHEMA_VERSION}); upgrade dialogue to open it")
        return version

    def _upgrade(self, version: int) -> None:
        if self._readonly and version == 0:
            raise StoreError(f"{self.path} is empty, not a session store yet; open it once with write access")
        if self._readonly:
            raise StoreError(f"{self.path} has schema version {version} and must be upgraded to "
                             f"{SCHEMA_VERSION}, but it is read-only; open it once with write access")
        with self._transaction():
            version = self._schema_version()  # another process may have upgraded it meanwhile
            for number, migrate in MIGRATIONS[version:]:
                migrate(self.db)
                self._execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                              (number, _now()))

    def _check_writable(self) -> None:
        """Fail at open, not at the first turn, when the file cannot be written."""
        with self._transaction():
            self._execute("UPDATE meta SET value = value WHERE key = 'salt'")

    # -- the plumbing: errors, transactions, rows -----------------------------------------

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn sqlite errors into a StoreError that names the file and what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            raise _store_error(exc, self.path, doing) from exc
        except UnicodeEncodeError as exc:
            raise StoreError(f"{self.path}: {doing} failed: text that is not valid Unicode ({exc})") from exc

    @contextmanager
    def _transaction(self, immediate: bool = True) -> Iterator[None]:
        """A write (`BEGIN IMMEDIATE`: take the write lock first) or a consistent read."""
        self._execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield
            self._execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _writing(self, doing: str) -> Iterator[None]:
        if self._readonly:
            raise StoreError(f"{self.path} is open read-only; {doing} needs write access")
        with self._lock, self._guard(doing), self._transaction():
            yield

    @contextmanager
    def _reading(self, doing: str) -> Iterator[None]:
        with self._lock, self._guard(doing), self._transaction(immediate=False):
            yield

    def _execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def _rows(self, sql: str, params: tuple = ()) -> list[dict]:
        cursor = self._execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _row(self, sql: str, params: tuple = ()) -> dict | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _meta(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- the chain's hashes: SHA-256, or HMAC-SHA-256 under the key from row `keyed_from` on ----

    def _link(self, seq: int, prev_hash: str, body: str) -> str | None:
        """Row `seq`'s hash; None when it is an HMAC and this store has no key."""
        if self.keyed_from is None or seq < self.keyed_from:
            return _sha256(prev_hash + body)
        if self._key is None:
            return None
        return hmac.new(_derived(self._key, "chain"), (prev_hash + body).encode("utf-8"), "sha256").hexdigest()

    def _head_text(self, seq: int, digest: str) -> str:
        """ "COUNT:HASH", with ":MAC" (the count and hash signed with the key) on a keyed chain."""
        head = f"{seq}:{digest}"
        if self._key is not None and self.keyed_from is not None:
            head += ":" + hmac.new(_derived(self._key, "head"), head.encode(), "sha256").hexdigest()
        return head

    def _require_key(self, doing: str) -> None:
        """A keyed chain takes rows only with its key; a key is not silently applied to a plain one."""
        if self.keyed_from is not None and self._key is None:
            raise StoreError(f"{self.path}: its audit chain is keyed, so {doing} needs the audit key: pass "
                             f"audit_key=..., or set {KEY_ENV} or {KEY_FILE_ENV}")
        if self.keyed_from is None and self._key is not None:
            raise StoreError(f"{self.path}: its audit chain was started without a key (or stripped of it), so "
                             f"{doing} with a key is refused; to key it from its next row on, call "
                             "Store(path, audit_key=...).key_chain() once (check it with `dialogue audit verify` "
                             "first)")

    def close(self) -> None:
        """Close the file; WAL content is checkpointed when the last connection goes."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {str(self.path)!r}{' read-only' if self.readonly else ''}>"

    # -- versions and sessions ---------------------------------------------------------

    def save_versions(self, policy_name: str, policy_hash: str, policy_source: str,
                      catalog_id: str, catalog_hash: str, catalog_text: str) -> None:
        """Keep a policy's source and a catalog's text under their hashes (idempotent)."""
        now = _now()
        with self._writing("saving policy and catalog versions"):
            self._require_key("saving versions")
            self._execute("INSERT OR IGNORE INTO policies (hash, name, source, source_sha256, first_seen) "
                          "VALUES (?, ?, ?, ?, ?)",
                          (policy_hash, policy_name, policy_source, _sha256(policy_source), now))
            self._execute("INSERT OR IGNORE INTO catalogs (hash, catalog_id, text, text_sha256, first_seen) "
                          "VALUES (?, ?, ?, ?, ?)",
                          (catalog_hash, catalog_id, catalog_text, _sha256(catalog_text), now))

    def create_session(self, session_id: str, *, policy_name: str, policy_hash: str, catalog_hash: str,
                       state: dict, locale: str, mode: str, node: str | None = None) -> None:
        """A new session with its initial state snapshot (turn 0); SessionError if the id exists."""
        state_json, now = _json(state, f"the state of session {session_id!r}"), _now()
        with self._writing(f"creating session {session_id!r}"):
            self._require_key(f"creating a session in {self.path}")
            if self._session_row(session_id) is not None:
                raise SessionError(f"session {session_id!r} exists already in {self.path}; "
                                   "resume it or choose another id")
            self._require_versions(policy_hash, catalog_hash)
            self._execute("INSERT INTO sessions (id, policy_name, policy_hash, catalog_hash, locale, mode, "
                          "node, ended, turns, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)",
                          (session_id, policy_name, policy_hash, catalog_hash, locale, mode, node, now, now))
            self._execute("INSERT INTO states (session_id, turn, state, node, ended, seq, created_at) "
                          "VALUES (?, 0, ?, ?, 0, NULL, ?)", (session_id, state_json, node, now))

    def load_session(self, session_id: str) -> SessionRecord | None:
        """A session with its latest state and all its turns, or None when the id is unknown.

        Turns, state, node, ended and versions are read from the session's audit rows (each
        checked against its own hash), not from the `sessions` row, which no hash covers.
        """
        with self._reading(f"loading session {session_id!r}"):
            row = self._session_row(session_id)
            if row is None:
                return None
            start = self._row("SELECT state, node FROM states WHERE session_id = ? AND turn = 0", (session_id,))
            turns = self._audited_turns(session_id)
        last = turns[-1] if turns else None
        state = last.state_after if last else json.loads(start["state"]) if start else {}
        return SessionRecord(
            id=row["id"], policy_name=row["policy_name"],
            policy_hash=last.policy_hash if last else row["policy_hash"],
            catalog_hash=last.catalog_hash if last else row["catalog_hash"], state=state or {},
            locale=last.locale if last else row["locale"], mode=row["mode"],
            ended=bool(last and last.ended_after), node=last.node_after if last else (start or row)["node"],
            turns=turns, created_at=row["created_at"], updated_at=row["updated_at"])

    def turn_count(self, session_id: str) -> int:
        """How many turns session `id` has in the audit log (0 for an unknown id): a cheap check
        of whether another process sharing the store has advanced a session held in memory."""
        with self._reading(f"counting the turns of session {session_id!r}"):
            row = self._row("SELECT COUNT(*) AS n FROM audit WHERE session_id = ?", (session_id,))
        return int(row["n"]) if row else 0

    def _audited_turns(self, session_id: str) -> list[TurnRecord]:
        """The session's turns as their audit rows hold them, oldest first."""
        records = []
        for row in self._rows("SELECT seq, body, prev_hash, hash FROM audit WHERE session_id = ? ORDER BY seq",
                              (session_id,)):
            link = self._link(row["seq"], row["prev_hash"], row["body"])
            if link is not None and not hmac.compare_digest(link, row["hash"]):
                raise StoreError(f"{self.path}: audit row {row['seq']} of session {session_id!r} does not "
                                 "match its hash (it was edited); run `dialogue audit verify`")
            records.append(_audited_record(json.loads(row["body"]), row["seq"]))
        if [r.index for r in records] != list(range(len(records))):
            raise StoreError(f"{self.path}: the audit rows of session {session_id!r} are not its turns 0 "
                             f"to {len(records) - 1}; run `dialogue audit verify`")
        return records

    def sessions(self) -> list[dict]:
        """Every session, most recently active first: id, policy, hashes, turns, activity, ended."""
        with self._reading("listing sessions"):
            rows = self._rows("SELECT id, policy_name AS policy, policy_hash, catalog_hash, turns, "
                              "updated_at AS last_activity, ended, created_at, locale, mode "
                              "FROM sessions ORDER BY updated_at DESC, id")
        return [row | {"ended": bool(row["ended"])} for row in rows]

    def _session_row(self, session_id: str) -> dict | None:
        return self._row("SELECT * FROM sessions WHERE id = ?", (session_id,))

    def _require_versions(self, policy_hash: str, catalog_hash: str) -> None:
        for table, what, value in (("policies", "policy", policy_hash), ("catalogs", "catalog", catalog_hash)):
            if self._execute(f"SELECT 1 FROM {table} WHERE hash = ?", (value,)).fetchone() is None:
                raise StoreError(f"{self.path} has no {what} version {value}; "
                                 "call save_versions() with it first")

    # -- turns ---------------------------------------------------------------------------

    def message_digest(self, message: str) -> str:
        """What `store_messages=False` keeps of a message: "hmac-sha256:" + HMAC under the audit
        key, or without a key "sha256:" + hex(salt + message), which anyone holding the file
        can test guesses against (the salt is in it)."""
        if self._key is not None:
            digest = hmac.new(_derived(self._key, "message"), message.encode("utf-8"), "sha256")
            return "hmac-sha256:" + digest.hexdigest()
        return "sha256:" + _sha256(self._salt + message)

    def _stored_message(self, message: str) -> str:
        if self.redact is not None:
            message = self._redacted(message)
        return message if self.store_messages else self.message_digest(message)

    def _redacted(self, message: str) -> str:
        try:
            redacted = self.redact(message)
        except Exception as exc:
            raise StoreError(f"the redaction hook raised {type(exc).__name__}: {exc}; the turn was not "
                             "stored") from exc
        if not isinstance(redacted, str):
            raise StoreError(f"the redaction hook returned {type(redacted).__name__}, not text; "
                             "the turn was not stored")
        return redacted

    def _private(self, doc: dict, messages: tuple[str, ...]) -> None:
        """Apply the privacy switches to every stored copy of user text in a turn's document:
        the raw model output, the trace, slot values, the text and the fallback reason.
        `messages` are this turn's message and the session's earlier ones."""
        if self.store_messages and self.redact is None:
            return
        digests = {}
        if not self.store_messages:
            for message in messages:
                redacted = self._redacted(message).strip() if self.redact else ""
                for variant in {message.strip(), redacted} - {""}:
                    digests.setdefault(variant.casefold(), self._stored_message(message))
        longest_first = sorted(digests, key=len, reverse=True)
        pattern = re.compile("|".join(rf"(?<!\w){re.escape(v)}(?!\w)" for v in longest_first),
                             re.IGNORECASE) if digests else None

        def digest_of(found: re.Match) -> str:
            text = found.group(0)
            return digests.get(text.casefold()) or next(
                digests[v] for v in longest_first if re.fullmatch(re.escape(v), text, re.IGNORECASE))

        def scrub(value: Any) -> Any:
            if isinstance(value, str):
                if self.redact is not None:
                    value = self._redacted(value)
                return pattern.sub(digest_of, value) if pattern else value
            if isinstance(value, list):
                return [scrub(v) for v in value]
            if isinstance(value, dict):
                return {k: scrub(v) for k, v in value.items()}
            return value

        for name in _PRIVATE_FIELDS:
            doc[name] = scrub(doc[name])

    def record_turn(self, record: TurnRecord, new_state: dict, *, ended: bool = False,
                    node: str | None = None) -> int:
        """Store a turn, the state after it and its audit row in one transaction; returns its seq.

        `node` is the session's node after the turn (None: unchanged).
        """
        doc = _turn_doc(record, self._stored_message(record.message), new_state, ended, node)
        self._private(doc, (record.message, *record.earlier_messages))
        with self._writing(f"recording turn {record.index} of session {record.session_id!r}"):
            self.keyed_from = int(self._meta("audit_keyed_from") or 0) or None  # another process may have keyed it
            self._require_key(f"recording a turn in {self.path}")
            session, last = self._turn_session(record)
            if node is None:
                doc["after"]["node"] = last["after"]["node"] if last else session["node"]
            if record.index == 0:
                doc["start"] = self._start_facts(session)
            seq, prev_hash = self._head()
            doc.update(self._version_digests(record.policy_hash, record.catalog_hash), seq=seq,
                       salt_sha256=_sha256(self._salt))
            body = canonical_json(doc)
            digest = self._link(seq, prev_hash, body)
            self._append(seq, doc, body, prev_hash, digest)
        return seq

    def _start_facts(self, session: dict) -> dict:
        """What a session started from, audited with its first turn: the state, node and names."""
        start = self._row("SELECT state, node FROM states WHERE session_id = ? AND turn = 0", (session["id"],))
        return {"state": json.loads(start["state"]) if start else None, "node": start["node"] if start else None,
                "policy_name": session["policy_name"], "locale": session["locale"], "mode": session["mode"]}

    def _turn_session(self, record: TurnRecord) -> tuple[dict, dict | None]:
        """The session row and its last audited turn, checked: it has not ended and this is its
        next turn (both read from the audit rows, not from the session row)."""
        session = self._session_row(record.session_id)
        if session is None:
            raise SessionError(f"no session {record.session_id!r} in {self.path}; create it first")
        last = self._execute("SELECT body FROM audit WHERE session_id = ? ORDER BY seq DESC LIMIT 1",
                             (record.session_id,)).fetchone()
        last = json.loads(last[0]) if last else None
        turns = last["index"] + 1 if last else 0
        if last and last["after"]["ended"]:
            raise SessionError(f"session {record.session_id!r} has ended; start a new session")
        if record.index != turns:
            raise SessionError(f"session {record.session_id!r} has {turns} turns in {self.path}, "
                               f"so its next turn is {turns}, not {record.index}: another "
                               "process advanced it; load the session again")
        return session, last

    def _head(self) -> tuple[int, str]:
        """The next sequence number and the hash it must chain to."""
        last = self._execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (last[0] + 1, last[1]) if last else (1, GENESIS)

    def _version_digests(self, policy_hash: str, catalog_hash: str) -> dict:
        """SHA-256 of the policy source and catalog text, so the chain vouches for them too;
        the texts are hashed again, so an edited text is refused, not vouched for."""
        self._require_versions(policy_hash, catalog_hash)
        policy = self._execute("SELECT source, source_sha256 FROM policies WHERE hash = ?", (policy_hash,)).fetchone()
        catalog = self._execute("SELECT text, text_sha256 FROM catalogs WHERE hash = ?", (catalog_hash,)).fetchone()
        for what, value, (text, digest) in (("policy", policy_hash, policy), ("catalog", catalog_hash, catalog)):
            if _sha256(text) != digest:
                raise StoreError(f"{self.path}: the stored {what} version {value[:8]} was edited (its text no "
                                 "longer matches its digest); run `dialogue audit verify`")
        return {"policy_source_sha256": policy[1], "catalog_text_sha256": catalog[1]}

    def _append(self, seq: int, doc: dict, body: str, prev_hash: str, digest: str) -> None:
        after = doc["after"]
        self._execute("INSERT INTO audit (seq, session_id, turn, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                      (seq, doc["session_id"], doc["index"], body, prev_hash, digest))
        columns = ["seq"] + [column for _, column, _ in _TURN_COLUMNS]
        values = [seq] + [_to_column(doc[name], kind) for name, _, kind in _TURN_COLUMNS]
        self._execute(f"INSERT INTO turns ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                      tuple(values))
        self._execute("INSERT INTO states (session_id, turn, state, node, ended, seq, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (doc["session_id"], doc["index"] + 1, _json(after["state"]), after["node"],
                       int(after["ended"]), seq, doc["created_at"]))
        self._execute("UPDATE sessions SET turns = ?, node = ?, ended = ?, policy_hash = ?, catalog_hash = ?, "
                      "updated_at = ? WHERE id = ?",
                      (doc["index"] + 1, after["node"], int(after["ended"]), doc["policy_hash"],
                       doc["catalog_hash"], _now(), doc["session_id"]))
        self._set_meta("audit_head", self._head_text(seq, digest))

    # -- corrections: a reviewer's right reply for a stored turn ---------------------------

    def correct(self, session_id: str, turn_index: int, reply_id: str, *, by: str,
                note: str = "") -> CorrectionRecord:
        """Record that turn `turn_index` of a session should have had `reply_id`; returns it.

        The id is checked against the catalog version the turn ran with (kept in this file);
        a later correction of the same turn supersedes this one.
        """
        if not isinstance(by, str) or not by.strip():
            raise ValueError("a correction names its reviewer: by=\"j.doe\"")
        with self._writing(f"correcting turn {turn_index} of session {session_id!r}"):
            turn = self._corrected_turn(session_id, turn_index)
            self._check_reply_id(reply_id, turn)
            self._execute("INSERT INTO corrections (session_id, turn, seq, reply_id, reviewer, note, created_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (session_id, turn_index, turn["seq"], reply_id, by.strip(), note, _now()))
            rows = self._correction_rows("WHERE c.session_id = ? AND c.turn = ?", (session_id, turn_index))
        return rows[-1]

    def corrections(self, policy_name: str | None = None) -> list[CorrectionRecord]:
        """The standing correction of every corrected turn (of sessions of `policy_name`), by session and turn."""
        if self.schema_version < 3:  # an older file open read-only: it has no corrections table yet
            return []
        where, params = ("WHERE s.policy_name = ?", (policy_name,)) if policy_name is not None else ("", ())
        with self._reading("reading corrections"):
            rows = self._correction_rows(where, params)
        latest = {(r.session_id, r.turn): r for r in rows}  # rows come oldest first: the last one stands
        return sorted(latest.values(), key=lambda r: (r.session_id, r.turn))

    def _corrected_turn(self, session_id: str, turn_index: int) -> dict:
        session = self._session_row(session_id)
        if session is None:
            raise SessionError(f"no session {session_id!r} in {self.path}; see `dialogue sessions`")
        turn = self._row("SELECT seq, reply_id, catalog_hash FROM turns WHERE session_id = ? AND turn = ?",
                         (session_id, turn_index))
        if turn is None:
            count = session["turns"]
            have = f"turns 0 to {count - 1}" if count > 1 else "only turn 0" if count else "no turns yet"
            raise SessionError(f"session {session_id!r} has no turn {turn_index}: it has {have} "
                               f"(see `dialogue log {session_id}`)")
        return turn

    def _check_reply_id(self, reply_id: str, turn: dict) -> None:
        """The id names a line, not retired, of the catalog version the turn ran with."""
        text = self._execute("SELECT text FROM catalogs WHERE hash = ?", (turn["catalog_hash"],)).fetchone()[0]
        try:
            # A name in <>: the text has no folder, so audio paths are not looked up.
            catalog = Catalog.from_text(text, path=f"<catalog {turn['catalog_hash'][:8]} in {self.path}>")
        except CatalogError as exc:
            raise StoreError(f"{self.path}: the catalog version {turn['catalog_hash'][:8]} kept for this turn "
                             f"cannot be read, so {reply_id} cannot be checked: {exc}") from exc
        if reply_id not in catalog:
            ids = [r.id for r in catalog if r.status != "retired"]
            close = difflib.get_close_matches(reply_id.upper(), ids, n=1, cutoff=0.6)  # "repaird" too
            raise CatalogError(f"{reply_id} is not a reply of catalog {catalog.id!r} (the version "
                               f"{turn['catalog_hash'][:8]} this turn ran with)", entry=reply_id,
                               hint=f"did you mean {close[0]!r}?" if close else f"its ids: {', '.join(ids)}")
        response = catalog[reply_id]
        if response.status == "retired":
            raise CatalogError(f"{reply_id} is retired in catalog {catalog.id!r}: the engine can no longer "
                               "say it", entry=reply_id, hint="correct the turn to a line the engine may say")

    def _correction_rows(self, where: str, params: tuple) -> list[CorrectionRecord]:
        rows = self._rows("SELECT c.*, t.message, t.node, t.reply_id AS chosen, s.policy_name, "
                          "b.state AS state_before FROM corrections c JOIN turns t ON t.seq = c.seq "
                          "JOIN sessions s ON s.id = c.session_id LEFT JOIN states b "
                          f"ON b.session_id = c.session_id AND b.turn = c.turn {where} ORDER BY c.id", params)
        records, earlier = [], {}
        for row in rows:
            key = (row["session_id"], row["turn"])
            records.append(_correction_record(row, earlier.get(key)))
            earlier[key] = row["reply_id"]
        return records

    # -- reading turns back: export and verify --------------------------------------------

    def export(self, session_id: str) -> Iterator[dict]:
        """One JSON-able dict per turn, oldest first: the audited record (the row's body, which
        its hash covers, not the editable turns table) and its audit hash."""
        with self._reading(f"exporting session {session_id!r}"):
            if self._session_row(session_id) is None:
                raise SessionError(f"no session {session_id!r} in {self.path}")
            rows = self._rows("SELECT body, hash FROM audit WHERE session_id = ? ORDER BY seq", (session_id,))
        return iter([json.loads(row["body"]) | {"audit_hash": row["hash"]} for row in rows])

    def verify(self, head: str | None = None) -> VerifyResult:
        """Walk the audit chain and check every turn, state, session, version text and the salt
        against it. `head` ("COUNT:HASH[:MAC]", from `audit head` and kept elsewhere) must name
        a row of the chain as it is now: nothing was cut off or replaced since it was taken."""
        external = _parse_head(head, "the head given") if head is not None else None
        if self.keyed_from is not None and self._key is None:
            raise StoreError(f"{self.path}: its audit chain is keyed (an HMAC from row {self.keyed_from} on); "
                             f"give the key to verify it (--key-file FILE, {KEY_FILE_ENV} or {KEY_ENV})")
        with self._reading("verifying the audit chain"):
            walk = _ChainWalk(self, external)
            cursor = self._execute("SELECT a.seq AS a_seq, a.body AS a_body, a.prev_hash AS a_prev, "
                                   "a.hash AS a_hash, a.session_id AS a_session, a.turn AS a_turn, j.* "
                                   "FROM audit a LEFT JOIN (" + _joined_turns() + ") j ON j.seq = a.seq "
                                   "ORDER BY a.seq")
            names = [d[0] for d in cursor.description]
            for row in cursor:
                if not walk.step(dict(zip(names, row))):
                    break
            ends = self._head_problems(walk, self._meta("audit_head"))
            problems = walk.problems() + self._orphans() + self._version_problems() + ends
            if not ends:  # a cut or added tail explains session rows that disagree with it
                problems += self._session_problems(walk)
            if walk.bad is None and self._key is not None and self.keyed_from is None:
                problems.append((1, "the chain is not keyed, but a key was given: it was started without "
                                    "the key, or stripped of it and recomputed"))
        return walk.result(problems, self._head_text(walk.count, walk.prev))

    def _orphans(self) -> list[tuple[int | None, str]]:
        orphan = self._execute("SELECT min(t.seq) FROM turns t LEFT JOIN audit a ON a.seq = t.seq "
                               "WHERE a.seq IS NULL").fetchone()[0]
        return [(orphan, f"turn with seq {orphan} has no audit row (a row was inserted)")] if orphan else []

    def _session_problems(self, walk: _ChainWalk) -> list[tuple[int | None, str]]:
        """Each session row agrees with its audited turns: count, node, ended, versions, names."""
        if walk.bad is not None:
            return []  # the walk stopped: later turns were not read
        rows = {r["id"]: r for r in self._rows("SELECT * FROM sessions")}
        problems = [(None, f"session {id!r} has {row['turns']} turns in the sessions table, but the "
                                "chain has none of them") for id, row in rows.items()
                    if id not in walk.sessions and (row["turns"] or row["ended"])]
        for session_id, last in walk.sessions.items():
            row = rows.get(session_id)
            if row is None:
                problems.append((last["seq"], f"session {session_id!r} of audit row {last['seq']} is missing "
                                              "from the sessions table"))
                continue
            expected = {"turns": last["index"] + 1, "node": last["after"]["node"],
                        "ended": int(bool(last["after"]["ended"]))}
            if "salt_sha256" in last:  # written by a store that keeps the session's versions with its turns
                expected.update(policy_hash=last["policy_hash"], catalog_hash=last["catalog_hash"])
            start = walk.starts.get(session_id)
            if start is not None:
                expected.update({k: start[k] for k in ("policy_name", "locale", "mode")})
            for column, value in expected.items():
                if row[column] != value:
                    problems.append((last["seq"], f"session {session_id!r} has {column} {row[column]!r} in the "
                                                  f"sessions table, but its audited turns say {value!r}"))
                    break
        return problems

    def _version_problems(self) -> list[tuple[int | None, str]]:
        """Every policy source and catalog text still hashes to its digest (the texts are rehashed)."""
        problems = []
        for table, text, what in (("policies", "source", "policy"), ("catalogs", "text", "catalog")):
            column = "policy_hash" if what == "policy" else "catalog_hash"
            for row in self._rows(f"SELECT hash, {text} AS text, {text}_sha256 AS digest FROM {table}"):
                if _sha256(row["text"]) == row["digest"]:
                    continue
                first = self._execute(f"SELECT min(seq) FROM turns WHERE {column} = ?", (row["hash"],)).fetchone()[0]
                problems.append((first, f"the stored {what} {text} of version {row['hash'][:8]} was edited: "
                                        "it no longer hashes to its digest"))
        return problems

    def _head_problems(self, walk: _ChainWalk, stored: str | None) -> list[tuple[int | None, str]]:
        """The chain ends where the last commit said (a signed head when keyed); and it holds the
        row that an external head names."""
        if walk.bad is not None:
            return []
        problems = []
        if self.keyed_from is not None and self._key is not None:
            if stored is None:
                return [(walk.count + 1, "the store's signed head is missing: rows (or the head) were deleted")]
            if not hmac.compare_digest(stored, _signed(self, stored)):
                return [(_parse_head(stored, "the stored head")[0] or 1, "the store's head is not signed with "
                                                                          "this key (it was rewritten)")]
        problems += walk.head_problems(_parse_head(stored or "0:" + GENESIS, "the stored head"), "the last commit")
        if walk.external is not None:
            problems += walk.head_problems(walk.external, "the head given", external=True)
            mac = walk.external[2]
            if mac is not None and self._key is not None and self.keyed_from is not None:
                text = f"{walk.external[0]}:{walk.external[1]}"
                if not hmac.compare_digest(self._head_text(walk.external[0], walk.external[1]), f"{text}:{mac}"):
                    problems.append((walk.external[0], "the head given is not signed with this key"))
        return problems


def _signed(store: Store, head: str) -> str:
    """`head` as this store signs it (compared with the stored one: a forged MAC differs)."""
    seq, digest, _ = _parse_head(head, "the stored head")
    return store._head_text(seq, digest)


def _parse_head(text: str, what: str) -> tuple[int, str, str | None]:
    """ "COUNT:HASH[:MAC]" as (count, hash, mac or None); a StoreError when it is not one."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not parts[0].isdigit() or not re.fullmatch(r"[0-9a-f]{64}", parts[1]):
        raise StoreError(f"{what} is not a head of an audit chain (COUNT:HASH or COUNT:HASH:MAC, "
                         f"as `dialogue audit head` prints): {text.strip()[:80]!r}")
    return int(parts[0]), parts[1], parts[2] if len(parts) == 3 else None


class _ChainWalk:
    """Walks audit rows in order, stopping at the first one that does not hold."""

    def __init__(self, store: Store, external: tuple[int, str, str | None] | None) -> None:
        self.store, self.external = store, external
        self.expected, self.prev, self.count = 1, GENESIS, 0
        self.bad: tuple[int, str] | None = None
        self.hashes: dict[int, str] = {}  # the hashes heads are checked against
        self.sessions: dict[str, dict] = {}  # each session's last audited turn
        self.starts: dict[str, dict] = {}  # each session's audited start

    def step(self, row: dict) -> bool:
        problem = self._problem(row)
        if problem is not None:
            self.bad = problem
            return False
        body = row["a_doc"]
        self.expected, self.prev, self.count = row["a_seq"] + 1, row["a_hash"], self.count + 1
        if self.external is not None and row["a_seq"] == self.external[0]:
            self.hashes[row["a_seq"]] = row["a_hash"]
        self.sessions[body["session_id"]] = body
        if "start" in body:
            self.starts[body["session_id"]] = body["start"]
        return True

    def _problem(self, row: dict) -> tuple[int, str] | None:
        seq = row["a_seq"]
        if seq > self.expected:
            return self.expected, f"audit row {self.expected} is missing"
        if seq < self.expected:
            return seq, f"audit row {seq} is out of sequence (expected {self.expected})"
        if row["a_prev"] != self.prev:
            return seq, f"audit row {seq} does not chain to row {seq - 1} (a row was removed or replaced)"
        if not hmac.compare_digest(self.store._link(seq, row["a_prev"], row["a_body"]), row["a_hash"]):
            return seq, f"audit row {seq} was edited: its hash does not match its content"
        if row["seq"] is None:
            return seq, f"the turn of audit row {seq} is missing from the turns table"
        audited = row["a_doc"] = json.loads(row["a_body"])
        if (row["a_session"], row["a_turn"]) != (audited.get("session_id"), audited.get("index")):
            return seq, f"audit row {seq} was moved to another session or turn"
        differs = _first_difference(audited, self._rebuilt(row, audited))
        if differs:
            return seq, f"the stored turn differs from audit row {seq} in {differs!r}"
        return None

    def _rebuilt(self, row: dict, audited: dict) -> dict:
        """The audit document as the tables hold it now, with what this row's version audited."""
        doc = _doc_from_row(row) | {"seq": row["a_seq"]}
        if "salt_sha256" in audited:
            doc["salt_sha256"] = _sha256(self.store._salt or "")
        if "start" in audited:
            start = self.store._row("SELECT s.state, s.node, x.policy_name, x.locale, x.mode FROM states s "
                                    "LEFT JOIN sessions x ON x.id = s.session_id WHERE s.session_id = ? "
                                    "AND s.turn = 0", (row["session_id"],))
            doc["start"] = None if start is None else start | {"state": json.loads(start["state"])}
        return doc

    def problems(self) -> list[tuple[int | None, str]]:
        return [self.bad] if self.bad else []

    def head_problems(self, head: tuple[int, str, str | None], what: str,
                      external: bool = False) -> list[tuple[int, str]]:
        """The chain holds the row `head` names: it ends there (the last commit's head) or goes on
        from it (an external head: turns recorded since are fine)."""
        last = self.expected - 1
        seq, digest, _ = head
        if seq > last:
            missing = f"row {seq}" if seq == last + 1 else f"rows {last + 1} to {seq}"
            return [(last + 1, f"audit {missing} {'is' if seq == last + 1 else 'are'} missing: {what} names "
                               f"{seq} rows (the chain was cut)")]
        if seq < last and not external:
            return [(seq + 1, f"audit row {seq + 1} was added after {what}")]
        found = self.prev if seq == last else self.hashes.get(seq)
        if seq and found != digest:
            return [(seq, f"audit row {seq} is not the row {what} names (the chain was rewritten)")]
        if seq == 0 and digest != GENESIS:
            return [(1, f"{what} is not of this chain")]
        return []

    def result(self, problems: list[tuple[int | None, str]], signed: str | None) -> VerifyResult:
        keyed = self.store.keyed_from is not None
        if not problems:
            return VerifyResult(True, self.count, head=self.prev if self.count else None,
                                signed_head=signed, keyed=keyed)
        seq, reason = min(problems, key=lambda p: (p[0] is None, p[0] or 0))
        return VerifyResult(False, self.count, first_bad=seq, reason=reason, keyed=keyed)


# -- the audit document ---------------------------------------------------------------------

def canonical_json(value: Any) -> str:
    """The one JSON text of a value: sorted keys, no spaces, UTF-8; what the chain hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_PRIVATE_FIELDS = ("raw", "trace", "slots", "text", "fallback_reason")  # where user text can be repeated


def _turn_doc(record: TurnRecord, message: str, new_state: dict, ended: bool, node: str | None) -> dict:
    """The turn as a JSON-only dict (Decimal, dates, models turned into JSON values)."""
    doc = {name: getattr(record, name) for name, _, _ in _TURN_COLUMNS}
    doc.update(message=message, created_at=record.created_at or _now(),
               after={"state": new_state, "node": node, "ended": bool(ended)})
    return json.loads(_json(doc, f"turn {record.index} of session {record.session_id!r}"))


def _doc_from_row(row: dict) -> dict:
    """The audit document rebuilt from a turns row joined with its state and versions."""
    doc = {name: _from_column(row[column], kind) for name, column, kind in _TURN_COLUMNS}
    after_state = row["after_state"]
    doc["after"] = {"state": json.loads(after_state) if after_state is not None else None,
                    "node": row["after_node"], "ended": bool(row["after_ended"])}
    doc.update(seq=row["seq"], policy_source_sha256=row["policy_sha"], catalog_text_sha256=row["catalog_sha"])
    return doc


def _joined_turns(extra: str = "") -> str:
    """Turns with the state after each and the digests of their versions: all the audit JSON holds."""
    return (f"SELECT {extra}t.*, s.state AS after_state, s.node AS after_node, s.ended AS after_ended, "
            "p.source_sha256 AS policy_sha, c.text_sha256 AS catalog_sha FROM turns t "
            "LEFT JOIN states s ON s.session_id = t.session_id AND s.turn = t.turn + 1 "
            "LEFT JOIN policies p ON p.hash = t.policy_hash "
            "LEFT JOIN catalogs c ON c.hash = t.catalog_hash ")


def _audited_record(body: dict, seq: int) -> TurnRecord:
    """A turn as its audit row holds it."""
    after = body.get("after") or {}
    values = {name: body.get(name) for name, _, _ in _TURN_COLUMNS if name in body}
    return TurnRecord(**values, seq=seq, state_after=after.get("state"), node_after=after.get("node"),
                      ended_after=bool(after.get("ended")))


def _correction_record(row: dict, supersedes: str | None) -> CorrectionRecord:
    state = row["state_before"]
    return CorrectionRecord(
        session_id=row["session_id"], turn=row["turn"], seq=row["seq"], reply_id=row["reply_id"],
        chosen=row["chosen"], by=row["reviewer"], note=row["note"], at=row["created_at"],
        policy_name=row["policy_name"], node=row["node"] or "",
        message=None if is_message_digest(row["message"]) else row["message"],
        state=json.loads(state) if state is not None else {}, supersedes=supersedes)


def _first_difference(audited: dict, stored: dict) -> str | None:
    for key in sorted(audited.keys() | stored.keys()):
        if audited.get(key, _MISSING) != stored.get(key, _MISSING):
            return key
    return None


_MISSING = object()


def _to_column(value: Any, kind: str) -> Any:
    if kind == "json":
        return _json(value)
    return int(value) if kind == "bool" else value


def _from_column(value: Any, kind: str) -> Any:
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


def _json(value: Any, what: str = "a value") -> str:
    try:
        return json.dumps(value, default=_jsonable, ensure_ascii=False, allow_nan=False, sort_keys=True)
    except ValueError as exc:  # NaN or infinity, or a circular reference
        raise StoreError(f"{what} cannot be stored as JSON: {exc}") from exc


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _derived(key: bytes, purpose: str) -> bytes:
    """One key per use of the audit key: the chain, the head, message digests."""
    return hmac.new(key, f"dialogue audit {purpose}".encode(), "sha256").digest()


def _key_check(key: bytes) -> str:
    """What the file keeps to tell a wrong key from tampering (says nothing about the key)."""
    return hmac.new(_derived(key, "check"), b"check", "sha256").hexdigest()[:16]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


# -- errors ---------------------------------------------------------------------------------

class _ReadOnlyFile(StoreError):
    """The file (or its folder) cannot be written; the CLI retries read-only."""


_EXPLAINED = {
    "SQLITE_NOTADB": "is not an SQLite database (garbage, encrypted or another format); "
                     "check the path, or restore the file from a backup",
    "SQLITE_CORRUPT": "is damaged (truncated or overwritten); restore it from a backup",
    "SQLITE_BUSY": f"is busy: another process held its write lock for over {BUSY_TIMEOUT_S:.0f} s; try again",
    "SQLITE_LOCKED": "is locked by another connection; try again",
    "SQLITE_FULL": "cannot grow: the disk is full; free some space",
    "SQLITE_CANTOPEN": "cannot be opened; check that it and its folder exist and are readable",
    "SQLITE_IOERR": "could not be read or written (an I/O error); check the disk",
    "SQLITE_PERM": "cannot be accessed: permission denied; check its permissions",
    "SQLITE_AUTH": "cannot be accessed: permission denied; check its permissions",
}


def _store_error(exc: sqlite3.Error, path: Path, doing: str) -> StoreError:
    """A one-line StoreError saying which file, what failed and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_READONLY"):
        return _ReadOnlyFile(f"{path} is read-only ({doing} failed); give this process write access to "
                             "the file and its folder")
    explained = next((text for key, text in _EXPLAINED.items() if name.startswith(key)), None)
    if explained is None and "malformed" in str(exc):
        explained = _EXPLAINED["SQLITE_CORRUPT"]
    return StoreError(f"{path} {explained or f'failed: {exc}'} ({doing})")


# -- schema migrations: (version, function), applied in order, each in the open transaction ------

def _schema_1(db: Database) -> None:
    """Versions, sessions, turns, state snapshots and the audit chain."""
    db["schema_version"].create({"version": int, "applied_at": str}, pk="version")
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["meta"].insert_all([{"key": "salt", "value": secrets.token_hex(16)},
                           {"key": "created_at", "value": _now()}])
    db["policies"].create({"hash": str, "name": str, "source": str, "source_sha256": str,
                           "first_seen": str}, pk="hash", not_null={"name", "source", "source_sha256"})
    db["catalogs"].create({"hash": str, "catalog_id": str, "text": str, "text_sha256": str,
                           "first_seen": str}, pk="hash", not_null={"catalog_id", "text", "text_sha256"})
    db["sessions"].create(
        {"id": str, "policy_name": str, "policy_hash": str, "catalog_hash": str, "locale": str,
         "mode": str, "node": str, "ended": int, "turns": int, "created_at": str, "updated_at": str},
        pk="id", not_null={"policy_name", "policy_hash", "catalog_hash", "ended", "turns"},
        foreign_keys=[("policy_hash", "policies", "hash"), ("catalog_hash", "catalogs", "hash")])
    db["audit"].create({"seq": int, "session_id": str, "turn": int, "body": str, "prev_hash": str,
                        "hash": str}, pk="seq", not_null={"session_id", "turn", "body", "prev_hash", "hash"})
    _create_turns(db)
    db["states"].create({"session_id": str, "turn": int, "state": str, "node": str, "ended": int,
                         "seq": int, "created_at": str}, pk=("session_id", "turn"),
                        not_null={"state", "ended"},
                        foreign_keys=[("session_id", "sessions", "id"), ("seq", "audit", "seq")])


def _create_turns(db: Database) -> None:
    kinds = {"text": str, "int": int, "bool": int, "json": str}
    columns = {"seq": int} | {column: kinds[kind] for _, column, kind in _TURN_COLUMNS}
    db["turns"].create(columns, pk="seq",
                       not_null={"session_id", "turn", "message", "reply_id", "text", "policy_hash",
                                 "catalog_hash", "created_at"},
                       foreign_keys=[("seq", "audit", "seq"), ("session_id", "sessions", "id"),
                                     ("policy_hash", "policies", "hash"),
                                     ("catalog_hash", "catalogs", "hash")])
    db["turns"].create_index(["session_id", "turn"], unique=True)


def _schema_2(db: Database) -> None:
    """Indexes for listing sessions by activity; audit, turns and states become append-only."""
    db["sessions"].create_index(["updated_at"])
    db["audit"].create_index(["session_id", "turn"])
    for table in ("audit", "turns", "states"):
        _append_only(db, table)


def _schema_3(db: Database) -> None:
    """Reviewers' corrections of turns, append-only: a later one of a turn supersedes the earlier."""
    db["corrections"].create(
        {"id": int, "session_id": str, "turn": int, "seq": int, "reply_id": str, "reviewer": str,
         "note": str, "created_at": str}, pk="id",
        not_null={"session_id", "turn", "seq", "reply_id", "reviewer", "note", "created_at"},
        foreign_keys=[("session_id", "sessions", "id"), ("seq", "turns", "seq")])
    db["corrections"].create_index(["session_id", "turn"])
    _append_only(db, "corrections")


def _append_only(db: Database, table: str) -> None:
    for action in ("UPDATE", "DELETE"):
        db.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, '{table} rows are append-only'); END")


def _schema_4(db: Database) -> None:
    """No table changes: from version 4 a turn's audit row also holds the session's start (first
    turn) and the salt's digest, and the chain may be keyed (meta `audit_keyed_from`). The version
    is raised so that an older dialogue, which would report those rows as edited, refuses the file."""


MIGRATIONS: list[tuple[int, Callable[[Database], None]]] = [(1, _schema_1), (2, _schema_2), (3, _schema_3),
                                                            (4, _schema_4)]
