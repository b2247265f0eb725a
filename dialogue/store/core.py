"""The Store: sessions, turns, state snapshots, versions and the audit chain, on SQLite or PostgreSQL."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import SessionError, StoreError
from .chain import GENESIS, KEY_ENV, KEY_FILE_ENV, head_text, key_check, link, read_key, same
from .corrections import Correcting
from .database import Conflict, Database, ReadOnlyStore, open_database
from .privacy import Private
from .records import (TURN_COLUMNS, SessionRecord, TurnRecord, audited_record, canonical_json, now, sha256,
                      to_column, to_json, turn_doc)
from .verify import Verifying

__all__ = ["READ_AS_IS_FROM", "SCHEMA_VERSION", "Store"]

SCHEMA_VERSION = 5
# A read-only open reads a store of this version or later as it is: later versions only add
# tables (version 3: corrections; 5: closed sessions) or audit fields (version 4), so its
# sessions, turns and audit chain read the same.
READ_AS_IS_FROM = 2
CONNECT_TIMEOUT_S = 10.0
POOL_SIZE = 10


class Store(Private, Correcting, Verifying):
    """Sessions and their audited turns in one SQLite file or one PostgreSQL database; safe to
    share between threads (and, through the database, between processes and hosts).

    `target` is a file path, or a `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE` URL (the
    `postgres` extra; `pool_size` connections at most, each connect waiting `connect_timeout` s).
    `store_messages=False` keeps a hash of the message instead of its text, and its digest
    wherever the model's output or the trace repeated it; `redact` (str -> str) masks the
    message, the raw model output, the trace and the slot values before anything is kept.
    `audit_key` (bytes, text or a key file; default $DIALOGUE_AUDIT_KEY_FILE or
    $DIALOGUE_AUDIT_KEY) makes the chain and the message hash HMACs under a key that is not
    in the store. `readonly=None` opens read-write when the store allows it, read-only
    otherwise. `durable=False` trades the last commits on power loss (never on a crash of this
    process) for speed. `path` names the store in messages: the file, or the URL without its password.
    """

    def __init__(self, target: str | os.PathLike, *, store_messages: bool = True,
                 redact: Callable[[str], str] | None = None, create: bool = True,
                 readonly: bool | None = False, durable: bool = True,
                 audit_key: bytes | str | os.PathLike | None = None, pool_size: int = POOL_SIZE,
                 connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        self.store_messages = store_messages
        self.redact = redact
        self.durable = durable
        self._key = read_key(audit_key)
        self._lock = threading.RLock()  # keying the chain: one thread of this process at a time
        self._may_create = create and readonly is not True
        self._options = dict(durable=durable, pool_size=pool_size, connect_timeout=connect_timeout)
        try:
            self._open(target, readonly=bool(readonly))
        except ReadOnlyStore:
            if readonly is not None:
                raise
            self._open(target, readonly=True)
        self.readonly = self._db.readonly

    # -- opening ---------------------------------------------------------------------

    def _open(self, target: str | os.PathLike, readonly: bool) -> None:
        self._db: Database = open_database(target, readonly=readonly, may_create=self._may_create,
                                           **self._options)
        self.path: Path | str = self._db.path
        self.kind = self._db.kind
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        version = self.upgraded_from = self._schema_version()  # the version found, before any upgrade
        created = version == 0
        if created and not self._may_create:
            raise StoreError(self._db.empty_message())
        if version < SCHEMA_VERSION and not (self._db.readonly and version >= READ_AS_IS_FROM):
            self._upgrade(version)
            version = SCHEMA_VERSION
        self.schema_version = version
        if not self._db.readonly:
            self._check_writable()
        self._load_meta()
        if self._key is not None and created:
            self.key_chain()  # a new store with a key: keyed from its first row
        self._check_key()

    def _load_meta(self) -> None:
        with self._reading("opening"):
            self._salt = self._meta("salt")
            self.keyed_from = int(self._meta("audit_keyed_from") or 0) or None  # the first HMAC row

    def _check_key(self) -> None:
        if self._key is not None and self.keyed_from is not None:
            with self._reading("reading the audit key's check"):
                check = self._meta("audit_key_check")
            if check != key_check(self._key):
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
        with self._lock, self._writing("keying the audit chain"):
            self._db.lock_chain()
            if self._meta("audit_keyed_from") is None:  # another process may have keyed it meanwhile
                seq, digest = self._head()
                self._set_meta("audit_keyed_from", str(seq))
                self._set_meta("audit_key_check", key_check(self._key))
                self.keyed_from = seq
                self._set_meta("audit_head", self._head_text(seq - 1, digest))
            self.keyed_from = int(self._meta("audit_keyed_from"))
        self._check_key()
        return self.keyed_from

    def _schema_version(self) -> int:
        """The store's schema version (0 when empty); refuses other and newer stores."""
        with self._reading("opening"):
            tables = self._db.tables()
            if not tables:
                return 0
            if "schema_version" not in tables:
                raise StoreError(self._db.not_a_store_message())
            version = self._execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {version}, newer than this dialogue "
                             f"reads ({SCHEMA_VERSION}); upgrade dialogue to open it")
        return version

    def _upgrade(self, version: int) -> None:
        if self._db.readonly and version == 0:
            raise StoreError(f"{self.path} is empty, not a session store yet; open it once with write access")
        if self._db.readonly:
            raise StoreError(f"{self.path} has schema version {version} and must be upgraded to "
                             f"{SCHEMA_VERSION}, but it is read-only; open it once with write access")
        with self._db.transaction(write=True, doing="upgrading the schema"):
            getattr(self._db, "lock_schema", lambda: None)()
            version = self._schema_version()  # another process may have upgraded it meanwhile
            self._db.migrate(version, lambda number: self._execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (number, now())))

    def grant(self, role: str) -> None:
        """PostgreSQL: give `role` what serving needs and no more (see `dialogue store migrate --grant`)."""
        if self.kind != "postgresql":
            raise StoreError(f"{self.path}: granting a role is for a PostgreSQL store; an SQLite file's "
                             "access is its file permissions")
        with self._writing(f"granting role {role!r} access"):
            self._db.grant(role)

    def _check_writable(self) -> None:
        """Fail at open, not at the first turn, when the store cannot be written."""
        with self._db.transaction(write=True, doing="checking write access"):
            self._execute("UPDATE meta SET value = value WHERE key = 'salt'")

    # -- the plumbing: transactions, rows ----------------------------------------------------

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn database errors into a StoreError that names the store and what to do."""
        with self._db.errors(doing):
            yield

    @contextmanager
    def _writing(self, doing: str) -> Iterator[None]:
        if self._db.readonly:
            raise StoreError(f"{self.path} is open read-only; {doing} needs write access")
        with self._db.transaction(write=True, doing=doing):
            yield

    @contextmanager
    def _reading(self, doing: str) -> Iterator[None]:
        with self._db.transaction(write=False, doing=doing):
            yield

    def _execute(self, sql: str, params: tuple | dict = ()) -> Any:
        return self._db.execute(sql, params)

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
        self._execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                      "excluded.value", (key, value))

    # -- the chain's hashes: SHA-256, or HMAC-SHA-256 under the key from row `keyed_from` on ----

    def _link(self, seq: int, prev_hash: str, body: str) -> str | None:
        """Row `seq`'s hash; None when it is an HMAC and this store has no key."""
        return link(self._key, self.keyed_from, seq, prev_hash, body)

    def _head_text(self, seq: int, digest: str) -> str:
        """ "COUNT:HASH", with ":MAC" (the count and hash signed with the key) on a keyed chain."""
        return head_text(self._key, self.keyed_from is not None, seq, digest)

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
        """Close the file (WAL content is checkpointed when the last connection goes), or the pool."""
        self._db.close()

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
        stamp = now()
        with self._writing("saving policy and catalog versions"):
            self._require_key("saving versions")
            self._execute("INSERT INTO policies (hash, name, source, source_sha256, first_seen) "
                          "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                          (policy_hash, policy_name, policy_source, sha256(policy_source), stamp))
            self._execute("INSERT INTO catalogs (hash, catalog_id, text, text_sha256, first_seen) "
                          "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                          (catalog_hash, catalog_id, catalog_text, sha256(catalog_text), stamp))

    def create_session(self, session_id: str, *, policy_name: str, policy_hash: str, catalog_hash: str,
                       state: dict, locale: str, mode: str, node: str | None = None) -> None:
        """A new session with its initial state snapshot (turn 0); SessionError if the id exists."""
        state_json, stamp = to_json(state, f"the state of session {session_id!r}"), now()
        exists = SessionError(f"session {session_id!r} exists already in {self.path}; resume it or choose another id")
        try:
            with self._writing(f"creating session {session_id!r}"):
                self._require_key(f"creating a session in {self.path}")
                if self._session_row(session_id) is not None:
                    raise exists
                self._require_versions(policy_hash, catalog_hash)
                self._execute("INSERT INTO sessions (id, policy_name, policy_hash, catalog_hash, locale, mode, "
                              "node, ended, turns, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)",
                              (session_id, policy_name, policy_hash, catalog_hash, locale, mode, node, stamp, stamp))
                self._execute("INSERT INTO states (session_id, turn, state, node, ended, seq, created_at) "
                              "VALUES (?, 0, ?, ?, 0, NULL, ?)", (session_id, state_json, node, stamp))
        except Conflict as exc:  # another process created it between the check and the insert
            raise exists from exc

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
            digest = self._link(row["seq"], row["prev_hash"], row["body"])
            if digest is not None and not same(digest, row["hash"]):
                raise StoreError(f"{self.path}: audit row {row['seq']} of session {session_id!r} does not "
                                 "match its hash (it was edited); run `dialogue audit verify`")
            records.append(audited_record(json.loads(row["body"]), row["seq"]))
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

    def _session_row(self, session_id: str, lock: bool = False) -> dict | None:
        return self._row("SELECT * FROM sessions WHERE id = ?" + (self._db.for_update if lock else ""),
                         (session_id,))

    def _require_versions(self, policy_hash: str, catalog_hash: str) -> None:
        for table, what, value in (("policies", "policy", policy_hash), ("catalogs", "catalog", catalog_hash)):
            if self._execute(f"SELECT 1 FROM {table} WHERE hash = ?", (value,)).fetchone() is None:
                raise StoreError(f"{self.path} has no {what} version {value}; "
                                 "call save_versions() with it first")

    # -- closed sessions: a server's record of sessions its clients ended (not audited) -----------

    def mark_closed(self, session_id: str, by: str | None = None) -> None:
        """Record that a client closed the session (the server refuses its later turns)."""
        with self._writing(f"recording that session {session_id!r} was closed"):
            self._execute("INSERT INTO serve_closed_sessions (session_id, closed_at, closed_by) VALUES (?, ?, ?) "
                          "ON CONFLICT DO NOTHING", (session_id, now(), by))

    def is_marked_closed(self, session_id: str) -> bool:
        if self.schema_version < 5:  # an older store open read-only: no server closed a session in it
            return False
        with self._reading("reading closed sessions"):
            return self._execute("SELECT 1 FROM serve_closed_sessions WHERE session_id = ?",
                                 (session_id,)).fetchone() is not None

    # -- turns ---------------------------------------------------------------------------

    def record_turn(self, record: TurnRecord, new_state: dict, *, ended: bool = False,
                    node: str | None = None) -> int:
        """Store a turn, the state after it and its audit row in one transaction; returns its seq.

        `node` is the session's node after the turn (None: unchanged). When another writer
        recorded this turn of the session first, SessionError, and nothing of this one is kept.
        """
        doc = turn_doc(record, self._stored_message(record.message), new_state, ended, node)
        self._private(doc, (record.message, *record.earlier_messages))
        try:
            with self._writing(f"recording turn {record.index} of session {record.session_id!r}"):
                return self._append_turn(record, doc, node)
        except Conflict as exc:
            raise SessionError(f"session {record.session_id!r}: another process recorded its turn {record.index} "
                               "first; load the session again") from exc

    def _append_turn(self, record: TurnRecord, doc: dict, node: str | None) -> int:
        session, last = self._turn_session(record)
        if node is None:
            doc["after"]["node"] = last["after"]["node"] if last else session["node"]
        if record.index == 0:
            doc["start"] = self._start_facts(session)
        digests = self._version_digests(record.policy_hash, record.catalog_hash)
        self._db.lock_chain()
        keyed_from, last_seq, prev_hash = self._execute(
            "SELECT (SELECT value FROM meta WHERE key = 'audit_keyed_from'), (SELECT seq FROM audit ORDER BY seq "
            "DESC LIMIT 1), (SELECT hash FROM audit ORDER BY seq DESC LIMIT 1)").fetchone()
        self.keyed_from = int(keyed_from or 0) or None  # another process may have keyed the chain
        self._require_key(f"recording a turn in {self.path}")
        seq, prev_hash = (last_seq + 1, prev_hash) if last_seq is not None else (1, GENESIS)
        doc.update(digests, seq=seq, salt_sha256=sha256(self._salt))
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
        """The session row (locked until the turn commits) and its last audited turn, checked: it has
        not ended and this is its next turn (both read from the audit rows, not from the session row)."""
        session = self._session_row(record.session_id, lock=True)
        if session is None:
            raise SessionError(f"no session {record.session_id!r} in {self.path}; create it first")
        last = self._execute("SELECT body FROM audit WHERE session_id = ? ORDER BY turn DESC, seq DESC LIMIT 1",
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
        the texts are hashed again (by the database), so an edited text is refused, not vouched for."""
        sha = self._db.sha256_sql
        row = self._execute(f"SELECT p.source_sha256, {sha.format('p.source')}, c.text_sha256, "
                            f"{sha.format('c.text')} FROM policies p, catalogs c WHERE p.hash = ? AND c.hash = ?",
                            (policy_hash, catalog_hash)).fetchone()
        if row is None:
            self._require_versions(policy_hash, catalog_hash)
        for what, value, kept, rehashed in (("policy", policy_hash, row[0], row[1]),
                                            ("catalog", catalog_hash, row[2], row[3])):
            if kept != rehashed:
                raise StoreError(f"{self.path}: the stored {what} version {value[:8]} was edited (its text no "
                                 "longer matches its digest); run `dialogue audit verify`")
        return {"policy_source_sha256": row[0], "catalog_text_sha256": row[2]}

    def _append(self, seq: int, doc: dict, body: str, prev_hash: str, digest: str) -> None:
        after = doc["after"]
        columns = ["seq"] + [column for _, column, _ in TURN_COLUMNS]
        values = [seq] + [to_column(doc[name], kind) for name, _, kind in TURN_COLUMNS]
        with self._db.batch():
            self._execute("INSERT INTO audit (seq, session_id, turn, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                          (seq, doc["session_id"], doc["index"], body, prev_hash, digest))
            self._execute(f"INSERT INTO turns ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                          tuple(values))
            self._execute("INSERT INTO states (session_id, turn, state, node, ended, seq, created_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (doc["session_id"], doc["index"] + 1, to_json(after["state"]), after["node"],
                           int(after["ended"]), seq, doc["created_at"]))
            self._execute("UPDATE sessions SET turns = ?, node = ?, ended = ?, policy_hash = ?, catalog_hash = ?, "
                          "updated_at = ? WHERE id = ?",
                          (doc["index"] + 1, after["node"], int(after["ended"]), doc["policy_hash"],
                           doc["catalog_hash"], now(), doc["session_id"]))
            self._set_meta("audit_head", self._head_text(seq, digest))
