"""Copying a store into another, row for row: from an SQLite file to PostgreSQL when a deployment
grows past one host (or back, for a backup one can hold), with the chain verified on the target
before the copy commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import StoreError
from .records import VerifyResult

if TYPE_CHECKING:
    from .core import Store

__all__ = ["CopyResult", "copy_store"]

# In the order foreign keys need; each copied with every column, as the source holds it.
TABLES = ("policies", "catalogs", "sessions", "audit", "turns", "states", "corrections", "serve_closed_sessions")
META_KEYS = ("salt", "created_at", "audit_keyed_from", "audit_key_check", "audit_head")
BATCH = 500


@dataclass(frozen=True)
class CopyResult:
    """What was copied, and the target's verification (its head equals the source's)."""

    sessions: int
    turns: int
    corrections: int
    verified: VerifyResult


def copy_store(source: Store, target: Store) -> CopyResult:
    """Copy every version, session, turn, state snapshot, audit row, correction and closed session
    of `source` into `target`, which holds no session yet, with the same sequence numbers, hashes,
    salt and chain head; verify the target in the same transaction (nothing is kept unless it
    verifies with the source's head). Both stores need the audit key of a keyed chain."""
    before = source.verify()
    if not before.ok:
        raise StoreError(f"{source.path}: its audit chain is broken at sequence {before.first_bad} "
                         f"({before.reason}); not copied (run `dialogue audit verify`)")
    with target._writing(f"copying {source.path} into {target.path}"):
        _require_empty(target)
        counts = {table: _copy_table(source, target, table) for table in TABLES}
        _copy_meta(source, target)
        target._db.after_copy()
        target._load_meta()
        after = target.verify()
        if not after.ok or after.signed_head != before.signed_head:
            raise StoreError(f"{target.path}: the copy does not verify ({after.reason or 'its head differs'}); "
                             "nothing was kept")
    return CopyResult(sessions=counts["sessions"], turns=counts["audit"], corrections=counts["corrections"],
                      verified=after)


def _require_empty(target: Store) -> None:
    found = target._execute("SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM audit)").fetchone()
    if found[0] or found[1]:
        raise StoreError(f"{target.path} holds {found[0]} sessions and {found[1]} audit rows already; copy into "
                         "an empty store (a new file or database)")


def _copy_table(source: Store, target: Store, table: str) -> int:
    with source._reading(f"reading {table}"):
        if table not in source._db.tables():
            return 0  # an older store, open read-only: it has no such table yet
        cursor = source._execute(f"SELECT * FROM {table}")
        columns = [d[0] for d in cursor.description]
        rows = [tuple(row) for row in cursor.fetchall()]
    insert = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
              + (" ON CONFLICT DO NOTHING" if table in ("policies", "catalogs") else ""))
    for start in range(0, len(rows), BATCH):
        target._db.executemany(insert, rows[start:start + BATCH])
    return len(rows)


def _copy_meta(source: Store, target: Store) -> None:
    with source._reading("reading the store's salt and head"):
        values = [(key, source._meta(key)) for key in META_KEYS]
    target._execute(f"DELETE FROM meta WHERE key IN ({', '.join('?' * len(META_KEYS))})", META_KEYS)
    target._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                           [(key, value) for key, value in values if value is not None])
