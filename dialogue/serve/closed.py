"""Sessions a client ended with DELETE, kept by the server in a table of its own.

The store's turns and audit rows are append-only and a session ends there only by a reply
that ends it, so the server keeps its own record of sessions its clients closed: the table
`serve_closed_sessions` of the store (a restart, and every server process on that store, on
one host or many, honour it), or a set in memory without a store. The audit chain does not
cover it.
"""

from __future__ import annotations

import threading

from ..store import Store

__all__ = ["ClosedSessions"]


class ClosedSessions:
    """Which sessions are closed, in `store` (None: in memory)."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self._closed: set[str] = set()  # seen closed by this process (a close is never undone)
        self._lock = threading.Lock()

    def close(self, session_id: str, by: str | None = None) -> None:
        if self.store is not None:
            self.store.mark_closed(session_id, by)
        with self._lock:
            self._closed.add(session_id)

    def __contains__(self, session_id: str) -> bool:
        if session_id in self._closed:
            return True
        if self.store is None or not self.store.is_marked_closed(session_id):
            return False
        with self._lock:
            self._closed.add(session_id)
        return True

    def shutdown(self) -> None:
        """Nothing to release: the table is the store's, which the service closes."""
