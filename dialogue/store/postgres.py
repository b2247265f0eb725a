"""The store's PostgreSQL database (psycopg 3 and its connection pool): one database shared by
many processes on many hosts; its schema migrations and the privileges of a serving role.

Each store transaction takes a pooled connection for its thread. Reads run in REPEATABLE READ
(one snapshot: a verify sees one state of the chain); writes in READ COMMITTED behind locks:
a turn locks its session's row (`SELECT ... FOR UPDATE`: two writers of one session queue, and
the second finds the turn taken), then the chain (a transaction-scoped advisory lock: one
append at a time, so the chain stays one sequence); unique keys on (session, turn) and on the
sequence number back both locks up. Connecting waits at most `connect_timeout` seconds, a lock
at most LOCK_TIMEOUT_S, and a transaction left idle by a hung client is ended by the server.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import MissingExtra, StoreError
from .database import Conflict, ReadOnlyStore
from .records import TURN_COLUMNS, now

__all__ = ["MIGRATIONS", "PostgresDatabase", "display_url"]

LOCK_TIMEOUT_S = 10.0  # as long as SQLite's busy timeout
IDLE_IN_TRANSACTION_S = 60.0  # the server ends a transaction a vanished client left open
CHAIN_LOCK = 0x6469616C6F677565  # "dialogue": the advisory lock every append takes
SCHEMA_LOCK = CHAIN_LOCK + 1  # taken by a migration


def _driver():
    try:
        import psycopg
        import psycopg_pool
    except ModuleNotFoundError as exc:
        raise MissingExtra("the PostgreSQL store", "postgres", exc.name) from None
    return psycopg, psycopg_pool


def display_url(url: str) -> str:
    """The URL as messages show it: without its password."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    if len(netloc) == 2:
        netloc[0] = netloc[0].split(":", 1)[0]
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit((parts.scheme, "@".join(netloc), parts.path, query, ""))


class PostgresDatabase:
    """A PostgreSQL database; `execute` runs on the connection of this thread's open transaction."""

    kind = "postgresql"
    for_update = " FOR UPDATE"
    sha256_sql = "encode(sha256(convert_to({}, 'UTF8')), 'hex')"

    def __init__(self, url: str, *, readonly: bool, durable: bool, pool_size: int, connect_timeout: float) -> None:
        psycopg, psycopg_pool = _driver()
        self.path = display_url(url)
        self.readonly, self.durable = readonly, durable
        self.connect_timeout = connect_timeout
        self._local = threading.local()
        self._conninfo = self._checked_conninfo(url)
        self._probe()
        self._pool = psycopg_pool.ConnectionPool(
            self._conninfo, min_size=1, max_size=max(1, pool_size), open=False, name="dialogue-store",
            kwargs={"autocommit": True}, configure=self._configure,
            timeout=connect_timeout, reconnect_timeout=max(60.0, connect_timeout))
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise StoreError(f"{self.path}: no connection within {connect_timeout:.0f} s; is the server up?") from exc

    def _checked_conninfo(self, url: str) -> str:
        psycopg, _ = _driver()
        try:
            given = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            reason = _first_line(exc)
            password = urlsplit(url).password
            if password:
                reason = reason.replace(password, "***")
            raise StoreError(f"{self.path} is not a PostgreSQL URL this driver reads ({reason}); write "
                             "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE") from None
        if "connect_timeout" in given:
            self.connect_timeout = float(given["connect_timeout"])
            return url
        return psycopg.conninfo.make_conninfo(url, connect_timeout=str(max(2, round(self.connect_timeout))))

    def _probe(self) -> None:
        """Connect once, so that a bad address, a wrong password or a missing database is one clear line."""
        psycopg, _ = _driver()
        try:
            psycopg.connect(self._conninfo, autocommit=True).close()
        except psycopg.Error as exc:
            raise StoreError(connect_message(self.path, exc, self.connect_timeout)) from exc

    def _configure(self, conn: Any) -> None:
        settings = {"lock_timeout": f"{LOCK_TIMEOUT_S:.0f}s",
                    "idle_in_transaction_session_timeout": f"{IDLE_IN_TRANSACTION_S:.0f}s"}
        if not self.durable:
            settings["synchronous_commit"] = "off"
        if self.readonly:
            settings["default_transaction_read_only"] = "on"
        for name, value in settings.items():
            conn.execute(f"SET {name} = '{value}'")

    def empty_message(self) -> str:
        return (f"{self.path} has no dialogue tables (an empty database, left as it is); open it once with "
                "write access, or run `dialogue store migrate --db URL`")

    def not_a_store_message(self) -> str:
        return (f"{self.path} holds tables but no schema_version table: not a dialogue session store; name "
                "another database (or another schema, with ?options=-csearch_path%3DNAME)")

    # -- transactions and statements ------------------------------------------------------

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        psycopg, psycopg_pool = _driver()
        try:
            yield
        except psycopg_pool.PoolTimeout as exc:
            raise StoreError(f"{self.path}: no database connection within {self.connect_timeout:.0f} s while "
                             f"{doing}; is the server up? ({_first_line(exc)})") from exc
        except psycopg.Error as exc:
            raise store_error(exc, self.path, doing) from exc

    @contextmanager
    def transaction(self, write: bool, doing: str) -> Iterator[None]:
        """A write (READ COMMITTED; its locks make it see what the writers before it committed) or
        a read of one snapshot (REPEATABLE READ)."""
        if getattr(self._local, "conn", None) is not None:  # nested in one of this thread's transactions
            yield
            return
        with self.errors(doing):
            conn = self._begin(write)
            try:
                self._local.conn = conn
                try:
                    yield
                except BaseException:
                    _rollback(conn)
                    raise
                conn.execute("COMMIT")
            finally:
                self._local.conn = None
                self._pool.putconn(conn)

    def _begin(self, write: bool) -> Any:
        """A pooled connection in a new transaction. A connection the server closed meanwhile (a
        restart, an idle timeout) fails at BEGIN, before anything was sent: the pool drops it and
        the next one is tried, up to a whole pool of them."""
        psycopg, _ = _driver()
        for attempt in range(self._pool.max_size + 1):
            conn = self._pool.getconn()
            try:
                conn.execute("BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                return conn
            except psycopg.OperationalError:
                self._pool.putconn(conn)  # broken: the pool discards it
                if attempt == self._pool.max_size:
                    raise
        raise AssertionError("unreachable")

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            raise RuntimeError("a store statement outside a transaction")
        return conn

    def execute(self, sql: str, params: tuple = ()) -> Any:
        return self._conn().execute(_pg(sql), params)

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        with self._conn().cursor() as cursor:
            cursor.executemany(_pg(sql), rows)

    def lock_chain(self) -> None:
        """One append at a time across every process and host: held until this transaction ends."""
        self.execute("SELECT pg_advisory_xact_lock(?)", (CHAIN_LOCK,))

    def lock_schema(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))

    def batch(self):
        """Statements sent together, without waiting for each answer (psycopg's pipeline mode)."""
        return self._conn().pipeline()

    def tables(self) -> set[str]:
        rows = self.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()
        return {row[0] for row in rows}

    def migrate(self, version: int, record: Callable[[int], None]) -> None:
        for number, statements in MIGRATIONS:
            if number > version:
                for statement in statements():
                    self._conn().execute(statement) if isinstance(statement, str) else \
                        self._conn().execute(*statement)
                record(number)

    def grant(self, role: str) -> None:
        """What a serving role needs, and no more: read, add rows, move its sessions' counters and the
        chain's head. No UPDATE or DELETE of turns, states, audit rows or corrections, no TRUNCATE, and
        not the owner, so it cannot drop the append-only triggers either."""
        psycopg, _ = _driver()
        schema = self.execute("SELECT current_schema()").fetchone()[0]
        names = {"role": psycopg.sql.Identifier(role), "schema": psycopg.sql.Identifier(schema)}
        for template in GRANTS:
            self._conn().execute(psycopg.sql.SQL(template).format(**names))

    def after_copy(self) -> None:
        """Move the corrections' id sequence past the ids copied in."""
        self.execute("SELECT setval(pg_get_serial_sequence('corrections', 'id'), COALESCE(max(id), 1), "
                     "max(id) IS NOT NULL) FROM corrections")

    def close(self) -> None:
        self._pool.close()


@lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """The store's SQL (qmark placeholders) in psycopg's placeholders."""
    return sql.replace("%", "%%").replace("?", "%s")


def _rollback(conn: Any) -> None:
    psycopg, _ = _driver()
    if conn.closed or conn.broken:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error:
        pass  # the connection went with the error that ended the transaction; the pool discards it


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- errors ---------------------------------------------------------------------------------

_CONNECT_HINTS = (  # (what the server or libpq said, what to tell the user)
    ("password authentication failed", "the server refused the user's password; check the user and password "
                                       "in the URL (or PGPASSWORD, ~/.pgpass)"),
    ("no password supplied", "the server asks for a password; give it in the URL (or PGPASSWORD, ~/.pgpass)"),
    ("does not exist", None),  # database or role: the server's words say which
    ("connection refused", "nothing listens there (connection refused); is the server running, on that host "
                           "and port?"),
    ("timeout expired", "no answer within {timeout:.0f} s; check the host, the port and any firewall"),
    ("could not translate host name", "the host name is unknown; check the URL"),
    ("no such file or directory", "no server socket there; is the server running?"),
)


def connect_message(where: str, exc: BaseException, timeout: float) -> str:
    text = str(exc)
    reason = next((line.strip() for line in text.splitlines() if "FATAL:" in line), _first_line(exc))
    reason = reason.split("FATAL:", 1)[-1].strip()
    for needle, hint in _CONNECT_HINTS:
        if needle in text.lower():
            if hint is None:
                return f"{where}: cannot connect: {reason}; create it, or check the URL"
            return f"{where}: cannot connect: {hint.format(timeout=timeout)}"
    return f"{where}: cannot connect: {reason}"


def store_error(exc: BaseException, where: str, doing: str) -> StoreError:
    """A one-line StoreError saying which database, what failed and what to do."""
    psycopg, _ = _driver()
    state = getattr(exc, "sqlstate", None) or ""
    reason = _first_line(exc)
    if state == "23505":
        return Conflict(f"{where}: {doing} failed: {reason}")
    if state in ("42501", "25006"):
        return ReadOnlyStore(f"{where} cannot be written by this role ({doing} failed: {reason}); grant it write "
                             "access (`dialogue store migrate --db URL --grant ROLE`), or open it read-only")
    if state in ("55P03", "57014"):
        return StoreError(f"{where} is busy: another process held a lock for over {LOCK_TIMEOUT_S:.0f} s "
                          f"({doing}); try again")
    if isinstance(exc, psycopg.DataError) and "NUL" in reason:
        return StoreError(f"{where}: {doing} failed: PostgreSQL cannot store text with a NUL character (\\x00)")
    if isinstance(exc, psycopg.OperationalError) or state.startswith(("08", "57P")):
        return StoreError(f"{where}: the connection to the database was lost while {doing} ({reason}); if it was "
                          "a write, it may or may not have committed: load the session again")
    return StoreError(f"{where}: {doing} failed: {reason}")


# -- schema migrations: the same versions as the SQLite store's, in PostgreSQL's words ----------

def _append_only(table: str) -> list[str]:
    return [f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION dialogue_append_only()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION dialogue_append_only()"]


def _turns_table() -> str:
    kinds = {"text": "text", "int": "integer", "bool": "integer", "json": "text"}
    required = {"session_id", "turn", "message", "reply_id", "text", "policy_hash", "catalog_hash", "created_at"}
    references = {"session_id": "sessions(id)", "policy_hash": "policies(hash)", "catalog_hash": "catalogs(hash)"}
    columns = ["seq bigint PRIMARY KEY REFERENCES audit(seq)"]
    for _, column, kind in TURN_COLUMNS:
        definition = f"{column} {kinds[kind]}" + (" NOT NULL" if column in required else "")
        columns.append(definition + (f" REFERENCES {references[column]}" if column in references else ""))
    return f"CREATE TABLE turns ({', '.join(columns)})"


def _schema_1() -> list:
    """Versions, sessions, turns, state snapshots and the audit chain."""
    return [
        "CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at text)",
        "CREATE TABLE meta (key text PRIMARY KEY, value text)",
        ("INSERT INTO meta (key, value) VALUES ('salt', %s), ('created_at', %s)", (secrets.token_hex(16), now())),
        "CREATE TABLE policies (hash text PRIMARY KEY, name text NOT NULL, source text NOT NULL, "
        "source_sha256 text NOT NULL, first_seen text)",
        "CREATE TABLE catalogs (hash text PRIMARY KEY, catalog_id text NOT NULL, text text NOT NULL, "
        "text_sha256 text NOT NULL, first_seen text)",
        "CREATE TABLE sessions (id text PRIMARY KEY, policy_name text NOT NULL, "
        "policy_hash text NOT NULL REFERENCES policies(hash), catalog_hash text NOT NULL REFERENCES catalogs(hash), "
        "locale text, mode text, node text, ended integer NOT NULL, turns integer NOT NULL, created_at text, "
        "updated_at text)",
        "CREATE TABLE audit (seq bigint PRIMARY KEY, session_id text NOT NULL, turn integer NOT NULL, "
        "body text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL)",
        _turns_table(),
        "CREATE UNIQUE INDEX idx_turns_session_id_turn ON turns (session_id, turn)",
        "CREATE TABLE states (session_id text REFERENCES sessions(id), turn integer, state text NOT NULL, "
        "node text, ended integer NOT NULL, seq bigint REFERENCES audit(seq), created_at text, "
        "PRIMARY KEY (session_id, turn))",
    ]


def _schema_2() -> list:
    """Indexes for listing sessions by activity; audit, turns and states become append-only."""
    return [
        "CREATE INDEX idx_sessions_updated_at ON sessions (updated_at)",
        "CREATE INDEX idx_audit_session_id_turn ON audit (session_id, turn)",
        "CREATE OR REPLACE FUNCTION dialogue_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME; END $$",
        *_append_only("audit"), *_append_only("turns"), *_append_only("states"),
    ]


def _schema_3() -> list:
    """Reviewers' corrections of turns, append-only: a later one of a turn supersedes the earlier."""
    return [
        "CREATE TABLE corrections (id bigserial PRIMARY KEY, session_id text NOT NULL REFERENCES sessions(id), "
        "turn integer NOT NULL, seq bigint NOT NULL REFERENCES turns(seq), reply_id text NOT NULL, "
        "reviewer text NOT NULL, note text NOT NULL, created_at text NOT NULL)",
        "CREATE INDEX idx_corrections_session_id_turn ON corrections (session_id, turn)",
        *_append_only("corrections"),
    ]


def _schema_4() -> list:
    """No table changes (audit rows hold the session's start and the salt's digest; keyed chains)."""
    return []


def _schema_5() -> list:
    """The sessions a server's clients closed, kept so that every server on the store honours them."""
    return ["CREATE TABLE IF NOT EXISTS serve_closed_sessions (session_id text PRIMARY KEY, "
            "closed_at text NOT NULL, closed_by text)"]


MIGRATIONS: list[tuple[int, Callable[[], list]]] = [(1, _schema_1), (2, _schema_2), (3, _schema_3),
                                                   (4, _schema_4), (5, _schema_5)]

# What `dialogue store migrate --grant ROLE` gives a serving role.
GRANTS = [
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT SELECT ON schema_version TO {role}",
    "GRANT SELECT, INSERT ON policies, catalogs, audit, turns, states, corrections, serve_closed_sessions "
    "TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON sessions, meta TO {role}",
    "GRANT USAGE ON SEQUENCE corrections_id_seq TO {role}",
]
