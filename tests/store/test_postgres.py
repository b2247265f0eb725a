"""What only the PostgreSQL store has: connecting (and clear errors when it cannot), a shared
database under concurrent writers, locks, restarts, roles and their privileges, schema
migrations and copying a store from SQLite and back. On a real server the tests start."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from dialogue.errors import MissingExtra, SessionError, StoreError
from dialogue.store import SCHEMA_VERSION, Store, copy_store

from . import postgres
from .helpers import execute, make_turn, new_session, open_store, query, say, tamper

KEY = b"k" * 32
CORRECTION = ("INSERT INTO corrections (session_id, turn, seq, reply_id, reviewer, note, created_at) "
              "VALUES ('s', 0, 1, 'OFFER', 'j.doe', '', '2026-05-09T07:35:25+00:00')")  # as correct() writes it


@pytest.fixture
def server(postgres_server):
    return postgres_server


@pytest.fixture
def url(server):
    return server.create_database()


def timed(call):
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        call()
    return str(info.value), time.monotonic() - start


# -- connecting: one clear line, in bounded time -------------------------------------------------


def test_nothing_listening_is_a_clear_error_at_once(server):
    message, seconds = timed(lambda: Store(f"postgresql://dialogue@127.0.0.1:{postgres.free_port()}/x"))
    assert "connection refused" in message and "is the server running" in message and seconds < 5


def test_a_wrong_password_is_a_clear_error_without_the_password(server):
    message, seconds = timed(lambda: Store(server.url("postgres", password="not-the-password")))
    assert "refused the user's password" in message and "not-the-password" not in message and seconds < 5
    assert message.startswith(f"postgresql://dialogue@127.0.0.1:{server.port}/postgres: ")


def test_a_missing_database_is_named(server):
    message, _ = timed(lambda: Store(server.url("nowhere")))
    assert 'database "nowhere" does not exist' in message


def test_a_bad_url_is_a_clear_error(server):
    message, _ = timed(lambda: Store(server.url("postgres") + "?no_such_option=1"))
    assert "not a PostgreSQL URL" in message and "postgresql://USER" in message


def test_an_unknown_scheme_is_refused():
    with pytest.raises(StoreError, match="mysql:// is not a store"):
        Store("mysql://root@localhost/db")


def test_an_unanswering_host_times_out_within_the_connect_timeout(server):
    """192.0.2.1 (TEST-NET-1) never answers: the connect gives up after connect_timeout."""
    message, seconds = timed(lambda: Store("postgresql://dialogue@192.0.2.1:5432/x", connect_timeout=2))
    assert seconds < 6 and ("no answer within" in message or "cannot connect" in message)


def test_the_cli_prints_one_line_and_never_the_password(server, capsys):
    from dialogue.cli import main

    assert main(["sessions", "--db", server.url("postgres", password="hunter2-secret")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hunter2" not in err and "refused the user's password" in err


def test_without_psycopg_the_extra_is_named(url, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtra, match=r"PostgreSQL store needs .*pip install 'dialogue\[postgres\]'"):
        Store(url)


# -- schema: created, versioned, refused when newer or foreign ------------------------------------


def test_an_empty_database_is_not_created_without_create(url):
    with pytest.raises(StoreError, match="has no dialogue tables"):
        Store(url, create=False)
    assert query(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_a_newer_schema_is_refused_and_left_as_it_was(url):
    open_store(url).close()
    tamper(url, "INSERT INTO schema_version (version, applied_at) VALUES (99, 'later')")
    with pytest.raises(StoreError, match=rf"schema version 99, newer than this dialogue reads \({SCHEMA_VERSION}\)"):
        Store(url)
    assert query(url, "SELECT max(version) FROM schema_version") == [(99,)]


def test_a_database_of_another_program_is_refused(url):
    tamper(url, "CREATE TABLE customers (id integer PRIMARY KEY)")
    with pytest.raises(StoreError, match="not a dialogue session store"):
        Store(url)


def test_migrate_creates_then_finds_nothing_to_do(url, capsys):
    from dialogue.cli import main

    assert main(["store", "migrate", "--db", url]) == 0
    assert capsys.readouterr().out.endswith(f"schema version 0 -> {SCHEMA_VERSION} (created)\n")
    assert main(["store", "migrate", "--db", url]) == 0
    assert capsys.readouterr().out.endswith(f"schema version {SCHEMA_VERSION}, nothing to upgrade\n")
    assert query(url, "SELECT version FROM schema_version ORDER BY version") == [(n,) for n in range(1, 6)]


def test_migrate_upgrades_an_older_schema(url, capsys):
    from dialogue.cli import main

    with open_store(url) as store:
        new_session(store, "s")
        say(store, "s", 0)
    tamper(url, "DROP TABLE serve_closed_sessions", "DELETE FROM schema_version WHERE version = 5")
    assert main(["store", "migrate", "--db", url]) == 0
    assert capsys.readouterr().out.endswith(f"schema version 4 -> {SCHEMA_VERSION}\n")
    with Store(url) as store:
        assert store.verify().ok and not store.is_marked_closed("s")


def test_truncate_is_refused_too(url):
    with open_store(url) as store:
        new_session(store, "s")
        say(store, "s", 0)
    for table in ("audit", "turns", "states", "corrections"):
        with pytest.raises(Exception, match="append-only"):
            execute(url, f"TRUNCATE {table} CASCADE")


# -- a serving role: privileges, not only triggers ---------------------------------------------------


def test_a_granted_role_serves_but_cannot_rewrite_history(server, url, capsys):
    from dialogue.cli import main

    server.sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN "
               "CREATE ROLE app LOGIN PASSWORD 'app-password'; END IF; END $$")
    assert main(["store", "migrate", "--db", url, "--grant", "app"]) == 0
    assert "granted 'app'" in capsys.readouterr().out
    app = url.replace(f"dialogue:{postgres._quoted(postgres.PASSWORD)}@", "app:app-password@")
    with open_store(app) as store:
        new_session(store, "s")
        say(store, "s", 0)
        store.mark_closed("s")
        assert store.verify().ok
    execute(app, CORRECTION)  # the corrections' id sequence is granted too
    for sql in ("UPDATE audit SET body = 'x'", "DELETE FROM turns", "TRUNCATE states", "DROP TRIGGER audit_no_update "
                "ON audit", "ALTER TABLE audit DISABLE TRIGGER ALL", "UPDATE corrections SET note = 'x'"):
        with pytest.raises(Exception, match="permission denied|must be owner"):
            execute(app, sql)


def test_a_role_that_may_only_read_opens_read_only(server, url):
    with open_store(url) as store:
        new_session(store, "s")
        say(store, "s", 0)
    server.sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'auditor') THEN "
               "CREATE ROLE auditor LOGIN PASSWORD 'auditor-password'; END IF; END $$")
    server.sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO auditor", database=url.rsplit("/", 1)[1])
    reader = url.replace(f"dialogue:{postgres._quoted(postgres.PASSWORD)}@", "auditor:auditor-password@")
    with pytest.raises(StoreError, match="cannot be written by this role"):
        Store(reader)
    with Store(reader, readonly=None) as store:
        assert store.readonly and store.verify().count == 1
        with pytest.raises(StoreError, match="open read-only"):
            say(store, "s", 1)


# -- concurrent writers ---------------------------------------------------------------------------


def test_two_stores_racing_for_one_turn_commit_it_once(url):
    """Two stores (two pools: as two hosts) record the same next turn at once, 20 times over: one
    wins each time, the other gets SessionError, and no half turn is left."""
    with open_store(url) as first, open_store(url) as second:
        new_session(first, "s")
        for index in range(20):
            barrier, outcomes = threading.Barrier(2), []

            def race(store, index=index, barrier=barrier, outcomes=outcomes):
                barrier.wait()
                try:
                    outcomes.append(say(store, "s", index))
                except SessionError as exc:
                    outcomes.append(str(exc))

            threads = [threading.Thread(target=race, args=(store,)) for store in (first, second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            won = [o for o in outcomes if isinstance(o, int)]
            lost = [o for o in outcomes if isinstance(o, str)]
            assert len(won) == 1 and len(lost) == 1 and "load the session again" in lost[0], outcomes
        assert first.verify().ok and first.verify().count == 20
    counts = query(url, "SELECT (SELECT count(*) FROM audit), (SELECT count(*) FROM turns), "
                        "(SELECT count(*) FROM states WHERE turn > 0), (SELECT turns FROM sessions)")
    assert counts == [(20, 20, 20, 20)]


def test_many_threads_share_one_pool(url):
    with open_store(url, pool_size=4) as store:
        def talk(session_id):
            new_session(store, session_id)
            for index in range(15):
                say(store, session_id, index)

        threads = [threading.Thread(target=talk, args=(f"t{n}",)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result = store.verify()
    assert result.ok and result.count == 120
    assert [seq for (seq,) in query(url, "SELECT seq FROM audit ORDER BY seq")] == list(range(1, 121))


def test_a_lock_held_past_the_lock_timeout_is_a_clear_error(url, monkeypatch):
    import psycopg

    from dialogue.store import postgres as module

    monkeypatch.setattr(module, "LOCK_TIMEOUT_S", 1.0)
    with open_store(url) as store:
        new_session(store, "s")
        holder = psycopg.connect(url)
        holder.execute("SELECT * FROM sessions WHERE id = 's' FOR UPDATE")
        try:
            message, seconds = timed(lambda: say(store, "s", 0))
        finally:
            holder.rollback()
            holder.close()
        assert "is busy: another process held a lock" in message and seconds < 5
        assert say(store, "s", 0) == 1 and store.verify().count == 1


def test_text_with_a_nul_character_is_a_clear_error_and_stores_nothing(url):
    with open_store(url) as store:
        new_session(store, "s")
        with pytest.raises(StoreError, match="NUL"):
            say(store, "s", 0, message="a\x00b")
        assert store.load_session("s").turns == [] and store.verify().ok


# -- the server restarted, or gone -----------------------------------------------------------------


def test_a_restarted_server_is_reconnected_to(server, url):
    with open_store(url) as store:
        new_session(store, "s")
        say(store, "s", 0)
        server.restart()  # every pooled connection is cut
        assert say(store, "s", 1) == 2
        assert store.load_session("s").turns[-1].index == 1 and store.verify().ok


def test_a_server_gone_mid_session_is_a_store_error_then_it_goes_on(server, url):
    with open_store(url, connect_timeout=2) as store:
        new_session(store, "s")
        say(store, "s", 0)
        server.kill()
        try:
            message, seconds = timed(lambda: say(store, "s", 1))
            assert seconds < 10 and ("lost" in message or "no database connection" in message)
        finally:
            server.start_again()
        assert say(store, "s", 1) == 2 and store.verify().count == 2


# -- copying: SQLite to PostgreSQL and back ---------------------------------------------------------


def filled(target, key=None):
    with open_store(target, audit_key=key) as store:
        new_session(store, "s")
        new_session(store, "t")
        for index in range(3):
            say(store, "s", index)
            say(store, "t", index)
        store.record_turn(make_turn("t", 3, reply_id="FAREWELL", text="Farewell."), {}, ended=True)
        store.mark_closed("s", "tester")
    tamper(target, CORRECTION)  # a correction needs a real catalog to be checked against: written as it is kept
    with Store(target, audit_key=key) as store:
        return store.verify().signed_head


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "keyed"])
def test_a_file_copied_to_postgresql_verifies_to_the_same_head_and_resumes(tmp_path, url, key):
    head = filled(tmp_path / "support.db", key)
    with Store(tmp_path / "support.db", audit_key=key) as source, Store(url, audit_key=key) as target:
        result = copy_store(source, target)
        assert (result.sessions, result.turns, result.corrections) == (2, 7, 1)
        assert result.verified.ok and result.verified.signed_head == head
    with open_store(url, audit_key=key) as store:
        assert store.verify().signed_head == head and store.is_marked_closed("s")
        assert [c.reply_id for c in store.corrections()] == ["OFFER"]
        assert store.load_session("t").ended and len(store.load_session("s").turns) == 3
        say(store, "s", 3)
    tamper(url, CORRECTION)  # the corrections' ids go on after the copied ones
    with open_store(url, audit_key=key) as store:
        assert len(store.corrections()) == 1 and store.verify().ok and store.verify().count == 8


def test_postgresql_copied_back_to_a_file_verifies(tmp_path, url, capsys):
    from dialogue.cli import main

    head = filled(url)
    assert main(["store", "copy", "--from", url, "--to", str(tmp_path / "backup.db")]) == 0
    out = capsys.readouterr().out
    assert "copied 2 sessions, 7 turns and 1 correction" in out and head in out
    assert postgres.PASSWORD not in out and postgres._quoted(postgres.PASSWORD) not in out
    with Store(tmp_path / "backup.db") as store:
        assert store.verify().signed_head == head


def test_a_copy_into_a_store_with_sessions_is_refused(tmp_path, url):
    filled(tmp_path / "a.db")
    filled(url)
    with Store(tmp_path / "a.db") as source, Store(url) as target, \
            pytest.raises(StoreError, match="holds 2 sessions and 7 audit rows already"):
        copy_store(source, target)


def test_a_broken_source_is_not_copied(tmp_path, url):
    filled(tmp_path / "a.db")
    tamper(tmp_path / "a.db", "UPDATE turns SET text = 'free' WHERE seq = 2")
    with Store(tmp_path / "a.db") as source, Store(url) as target:
        with pytest.raises(StoreError, match="broken at sequence 2.*not copied"):
            copy_store(source, target)
        assert target.sessions() == []
