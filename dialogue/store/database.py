"""The database under a store: what the store asks of it, and which one a target names.

A target is a file path (SQLite) or a `postgresql://` URL (PostgreSQL, the `postgres` extra).
Both hold the same tables under the same schema versions; each module writes its own SQL
for the parts where the two differ (locks, migrations, errors).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from ..errors import StoreError

__all__ = ["Conflict", "Database", "ReadOnlyStore", "is_url", "open_database"]

URL_SCHEMES = ("postgresql://", "postgres://")


class ReadOnlyStore(StoreError):
    """The store cannot be written (a read-only file or folder, a role without write rights,
    a read-only replica); an open with readonly=None retries read-only."""


class Conflict(StoreError):
    """A unique key refused a row: another writer recorded it first."""


class Database(Protocol):
    """What the store runs on. `execute` works only inside `transaction`."""

    kind: str  # "sqlite" or "postgresql"
    path: Any  # what messages name: the file, or the URL without its password
    readonly: bool
    for_update: str  # the suffix that locks a row read in a write transaction ("" where the whole store is)
    sha256_sql: str  # SQL for the hex SHA-256 of a text column, with {} for the column

    def transaction(self, write: bool, doing: str) -> AbstractContextManager[None]: ...
    def execute(self, sql: str, params: tuple = ()) -> Any: ...
    def executemany(self, sql: str, rows: list[tuple]) -> None: ...
    def errors(self, doing: str) -> AbstractContextManager[None]: ...
    def lock_chain(self) -> None: ...
    def batch(self) -> AbstractContextManager[Any]: ...
    def tables(self) -> set[str]: ...
    def migrate(self, version: int, record: Callable[[int], None]) -> None: ...
    def after_copy(self) -> None: ...
    def empty_message(self) -> str: ...
    def not_a_store_message(self) -> str: ...
    def close(self) -> None: ...


def is_url(target: object) -> bool:
    """Whether a store target names a PostgreSQL database rather than a file."""
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def open_database(target: str | os.PathLike, *, readonly: bool, may_create: bool, durable: bool,
                  pool_size: int, connect_timeout: float) -> Database:
    if is_url(target):
        from .postgres import PostgresDatabase

        return PostgresDatabase(str(target), readonly=readonly, durable=durable, pool_size=pool_size,
                                connect_timeout=connect_timeout)
    other = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", target) if isinstance(target, str) else None
    if other is not None:
        scheme = other.group(1)
        raise StoreError(f"{scheme}:// is not a store this dialogue opens; name an SQLite file or a "
                         "postgresql://USER@HOST/DATABASE URL")
    from .sqlite import SQLiteDatabase

    return SQLiteDatabase(Path(target), readonly=readonly, may_create=may_create, durable=durable)
