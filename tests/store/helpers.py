"""Shared helpers for the store tests: a store with versions saved, turns, tampering by hand, on
either backend: `db` is an SQLite file's path or a PostgreSQL URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dialogue.store import Store, TurnRecord, is_url  # noqa: F401 - is_url is for the tests too

# A test about SQLite files (their bytes, pragmas, WAL, permissions): it runs on that backend only.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

POLICY = ("shop", "p" * 64, "policy = Policy('shop')\n")
CATALOG = ("shop", "c" * 64, "[catalog]\nid = 'shop'\n")
POLICY_HASH, CATALOG_HASH = POLICY[1], CATALOG[1]


def open_store(path: Path | str, **options) -> Store:
    """A store with the test policy and catalog versions saved."""
    store = Store(path, **options)
    store.save_versions(POLICY[0], POLICY[1], POLICY[2], CATALOG[0], CATALOG[1], CATALOG[2])
    return store


def new_session(store: Store, session_id: str, state: dict | None = None) -> None:
    store.create_session(session_id, policy_name="shop", policy_hash=POLICY_HASH, catalog_hash=CATALOG_HASH,
                         state=state if state is not None else {"gold": 10}, locale="en", mode="prompted",
                         node="start")


def make_turn(session_id: str, index: int, **fields) -> TurnRecord:
    """A realistic turn record; keyword arguments override its fields."""
    values = dict(
        session_id=session_id, index=index, message=f"message {index} of {session_id}", reply_id="OFFER",
        slots={"item": "sword", "price": "50"}, text="The sword costs 50 gold.", locale="en", mode="prompted",
        reachable=["OFFER(item=sword, price=50)", "GREETING"], raw=["OFFER(item=sword, price=50)"],
        retries=0, fallback=False, fallback_reason=None, backend="scripted", model="script",
        timings={"generate_s": 0.01, "total_s": 0.012}, policy_hash=POLICY_HASH, catalog_hash=CATALOG_HASH,
        trace={"path": ["wants to buy? -> yes"]}, node="start")
    values.update(fields)
    return TurnRecord(**values)


def say(store: Store, session_id: str, index: int, **fields) -> int:
    """Record turn `index` of a session; the state after it counts the turns."""
    return store.record_turn(make_turn(session_id, index, **fields), {"gold": 10, "turns": index + 1})


def tamper(path: Path | str, *statements: str, params: tuple = ()) -> None:
    """Edit the store by hand, as someone with a sqlite shell (or psql as the owner) would: the
    append-only triggers dropped (on PostgreSQL: triggers and foreign keys switched off)."""
    if is_url(path):
        return _pg(path, statements, params, replica=True)
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        triggers = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
        for name in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        for sql in statements:
            conn.execute(sql, params) if "?" in sql else conn.execute(sql)
    finally:
        conn.close()


def downgrade(path: Path | str, version: int) -> None:
    """Turn a current file into one of schema `version`, as that dialogue wrote it: each migration
    only adds, so its tables, indexes and triggers are dropped (tests check the schema matches)."""
    statements = ["DROP TABLE IF EXISTS serve_closed_sessions", f"DELETE FROM schema_version WHERE version > {version}"]
    if version < 3:
        statements.insert(1, "DROP TABLE corrections")
    if version < 2:
        statements[:0] = ["DROP INDEX idx_sessions_updated_at", "DROP INDEX idx_audit_session_id_turn"]
    tamper(path, *statements)  # drops every trigger: put back those of version 2
    if version >= 2:
        conn = sqlite3.connect(str(path), isolation_level=None)
        try:
            for table in ("audit", "turns", "states"):
                for action in ("UPDATE", "DELETE"):
                    conn.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                                 f"BEGIN SELECT RAISE(ABORT, '{table} rows are append-only'); END")
        finally:
            conn.close()


def schema(path: Path | str) -> set[tuple]:
    """The file's tables, indexes and triggers with their SQL."""
    return set(query(path, "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))


def query(path: Path | str, sql: str, params: tuple = ()) -> list[tuple]:
    if is_url(path):
        return _pg(path, [sql], params)
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def build_parser_with_store(build_parser):
    """`build_parser` with the store commands added, for as long as the CLI does not add them itself."""
    from dialogue.cli import store as store_commands

    def build():
        parser = build_parser()
        commands = next(a for a in parser._actions if a.dest == "command")
        if "audit" not in commands.choices:
            store_commands.add(commands)
        return parser

    return build


def execute(path: Path | str, sql: str) -> None:
    """One statement with the triggers in place (they should refuse it)."""
    if is_url(path):
        _pg(path, [sql], ())
        return
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute(sql)
    finally:
        conn.close()


def stored_bytes(path: Path | str) -> bytes:
    """Everything the store keeps: the file and its WAL, or the whole database as pg_dump writes it."""
    if is_url(path):
        from . import postgres

        return postgres.CURRENT.dump(path.rsplit("/", 1)[1]).encode()
    path = Path(path)
    files = [path, path.with_name(path.name + "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def _pg(url: str, statements, params: tuple, replica: bool = False) -> list[tuple] | None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if replica:  # what the owner can do: no trigger fires (nor a foreign key check)
            conn.execute("SET session_replication_role = replica")
        rows = None
        for sql in statements:
            cursor = conn.execute(sql.replace("%", "%%").replace("?", "%s"), params if "?" in sql else ())
            rows = cursor.fetchall() if cursor.description else None
        return rows


def shown(path: Path | str) -> str:
    """How messages name the store: the file, or the URL without its password."""
    if is_url(path):
        from dialogue.store.postgres import display_url

        return display_url(path)
    return str(path)
