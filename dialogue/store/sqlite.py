"""The store's SQLite database: one file in WAL mode, shared by the threads of a process (one
connection behind a lock) and by processes on one host; its schema migrations.

Writes take the write lock first (`BEGIN IMMEDIATE`), so two writers never share a sequence
number; a lock held by another process is waited for up to BUSY_TIMEOUT_S.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreError
from .chain import sha256_hex
from .database import Conflict, ReadOnlyStore
from .records import TURN_COLUMNS, now

if TYPE_CHECKING:
    from sqlite_utils import Database

__all__ = ["MIGRATIONS", "SQLiteDatabase"]

BUSY_TIMEOUT_S = 10.0


class SQLiteDatabase:
    """One SQLite file; `execute` runs inside `transaction`, on the one connection."""

    kind = "sqlite"
    for_update = ""  # BEGIN IMMEDIATE already holds the write lock
    sha256_sql = "dialogue_sha256({})"

    def __init__(self, path: str | Path, *, readonly: bool, may_create: bool, durable: bool) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        check_path(self.path, may_create)
        target = f"{self.path.resolve().as_uri()}?mode=ro" if readonly else str(self.path)
        try:
            self._conn = sqlite3.connect(target, uri=readonly, timeout=BUSY_TIMEOUT_S,
                                         isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise store_error(exc, self.path, "opening") from exc
        try:
            with self.errors("opening"):
                self._configure(durable)
        except BaseException:
            self._conn.close()
            raise

    def _configure(self, durable: bool) -> None:
        self._conn.create_function("dialogue_sha256", 1, sha256_hex, deterministic=True)
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        self._conn.execute("PRAGMA foreign_keys = ON")
        if self.readonly:
            self._conn.execute("PRAGMA query_only = ON")
        else:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")

    def empty_message(self) -> str:
        return (f"{self.path} is empty, not a session store (left as it is); name the store's file "
                "with --db FILE or DIALOGUE_DB")

    def not_a_store_message(self) -> str:
        return (f"{self.path} is an SQLite file but not a dialogue session store (it has no schema_version "
                "table); name another file")

    # -- transactions and statements ------------------------------------------------------

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn sqlite errors into a StoreError that names the file and what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            raise store_error(exc, self.path, doing) from exc
        except UnicodeEncodeError as exc:
            raise StoreError(f"{self.path}: {doing} failed: text that is not valid Unicode ({exc})") from exc

    @contextmanager
    def transaction(self, write: bool, doing: str) -> Iterator[None]:
        """A write (`BEGIN IMMEDIATE`: take the write lock first) or a consistent read."""
        with self._lock, self.errors(doing):
            if self._conn.in_transaction:  # nested in one of this thread's transactions
                yield
                return
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        self._conn.executemany(sql, rows)

    def lock_chain(self) -> None:
        """Appends are already serialized: the transaction holds the file's write lock."""

    def batch(self):
        return nullcontext()

    def after_copy(self) -> None:
        """Nothing to do: SQLite's rowids follow the largest id copied."""

    def tables(self) -> set[str]:
        return {row[0] for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def migrate(self, version: int, record: Callable[[int], None]) -> None:
        """Apply the migrations after `version` in the open transaction; `record(number)` notes each."""
        from sqlite_utils import Database  # imported here: `import dialogue.store` stays fast

        db = Database(self._conn, recursive_triggers=False, execute_plugins=False)
        for number, migration in MIGRATIONS:
            if number > version:
                migration(db)
                record(number)

    def close(self) -> None:
        """Close the file; WAL content is checkpointed when the last connection goes."""
        with self._lock:
            self._conn.close()


def check_path(path: Path, may_create: bool) -> None:
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a session store; name a file")
    if not path.exists() and not may_create:
        raise StoreError(f"{path}: no such file; pass --db FILE or set DIALOGUE_DB")
    if not may_create and path.is_file() and path.stat().st_size == 0:
        raise StoreError(f"{path} is empty, not a session store (left as it is); name the store's file "
                         "with --db FILE or DIALOGUE_DB")
    if not path.exists() and not path.parent.is_dir():
        raise StoreError(f"{path}: the folder {path.parent} does not exist; create it first")


# -- errors ---------------------------------------------------------------------------------

_EXPLAINED = {
    "SQLITE_NOTADB": "is not an SQLite database (garbage, encrypted or another format); "
                     "check the path, or restore the file from a backup",
    "SQLITE_CORRUPT": "is damaged (truncated or overwritten); restore it from a backup",
    "SQLITE_BUSY": "is busy: another process held its write lock for over {busy:.0f} s; try again",
    "SQLITE_LOCKED": "is locked by another connection; try again",
    "SQLITE_FULL": "cannot grow: the disk is full; free some space",
    "SQLITE_CANTOPEN": "cannot be opened; check that it and its folder exist and are readable",
    "SQLITE_IOERR": "could not be read or written (an I/O error); check the disk",
    "SQLITE_PERM": "cannot be accessed: permission denied; check its permissions",
    "SQLITE_AUTH": "cannot be accessed: permission denied; check its permissions",
}


def store_error(exc: sqlite3.Error, path: Path, doing: str) -> StoreError:
    """A one-line StoreError saying which file, what failed and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_READONLY"):
        return ReadOnlyStore(f"{path} is read-only ({doing} failed); give this process write access to "
                             "the file and its folder")
    if name.startswith("SQLITE_CONSTRAINT") and "UNIQUE" in str(exc):
        return Conflict(f"{path}: {doing} failed: {exc}")
    explained = next((text for key, text in _EXPLAINED.items() if name.startswith(key)), None)
    if explained is None and "malformed" in str(exc):
        explained = _EXPLAINED["SQLITE_CORRUPT"]
    if explained is not None:
        explained = explained.format(busy=BUSY_TIMEOUT_S)
    return StoreError(f"{path} {explained or f'failed: {exc}'} ({doing})")


# -- schema migrations: (version, function), applied in order, each in the open transaction ------

def _schema_1(db: Database) -> None:
    """Versions, sessions, turns, state snapshots and the audit chain."""
    db["schema_version"].create({"version": int, "applied_at": str}, pk="version")
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["meta"].insert_all([{"key": "salt", "value": secrets.token_hex(16)},
                           {"key": "created_at", "value": now()}])
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
    columns = {"seq": int} | {column: kinds[kind] for _, column, kind in TURN_COLUMNS}
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


def _schema_5(db: Database) -> None:
    """The sessions a server's clients closed (`DELETE /v1/sessions/{id}`), kept in the store so that
    every server on it honours them; outside the audit chain. Earlier servers made the same table
    themselves, hence IF NOT EXISTS."""
    db.execute("CREATE TABLE IF NOT EXISTS serve_closed_sessions (session_id TEXT PRIMARY KEY, "
               "closed_at TEXT NOT NULL, closed_by TEXT)")


MIGRATIONS: list[tuple[int, Callable[[Database], None]]] = [(1, _schema_1), (2, _schema_2), (3, _schema_3),
                                                            (4, _schema_4), (5, _schema_5)]
