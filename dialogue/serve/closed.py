"""Sessions a client ended with DELETE, kept by the server in a table of its own.

The store's turns and audit rows are append-only and a session ends there only by a reply
that ends it, so the server keeps its own record of sessions its clients closed: a table
`serve_closed_sessions` in the store's file (a restart, and every server process on that
file, honour it), or a set in memory without a store. The audit chain does not cover it.
"""

from __future__ import annotations

import datetime
import sqlite3
import threading
from pathlib import Path

from ..errors import StoreError

__all__ = ["ClosedSessions"]

TABLE = "serve_closed_sessions"
BUSY_TIMEOUT_S = 10.0


class ClosedSessions:
    """Which sessions are closed, in the store's file at `path` (None: in memory)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._closed: set[str] = set()  # seen closed by this process (a close is never undone)
        self._lock = threading.Lock()
        self._conn = None
        if path is not None:
            self._conn = self._guarded(lambda: sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                                               check_same_thread=False), "opening")
            self._execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (session_id TEXT PRIMARY KEY, "
                          "closed_at TEXT NOT NULL, closed_by TEXT)", "creating its table")

    def close(self, session_id: str, by: str | None = None) -> None:
        self._execute(f"INSERT OR IGNORE INTO {TABLE} (session_id, closed_at, closed_by) VALUES (?, ?, ?)",
                      "recording a closed session", (session_id, _now(), by))
        self._closed.add(session_id)

    def __contains__(self, session_id: str) -> bool:
        if session_id in self._closed:
            return True
        if self._conn is None:
            return False
        row = self._execute(f"SELECT 1 FROM {TABLE} WHERE session_id = ?", "reading closed sessions",
                            (session_id,)).fetchone()
        if row is not None:
            self._closed.add(session_id)
        return row is not None

    def shutdown(self) -> None:
        if self._conn is not None:
            with self._lock:
                self._conn.close()

    def _execute(self, sql: str, doing: str, params: tuple = ()):
        if self._conn is None:
            return _NoRows()
        with self._lock:
            return self._guarded(lambda: self._conn.execute(sql, params), doing)

    def _guarded(self, call, doing: str):
        try:
            return call()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {doing} failed: {exc}") from exc


class _NoRows:
    def fetchone(self) -> None:
        return None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")
