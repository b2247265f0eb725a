"""Turns per second with the session store on and off, SQLite against PostgreSQL at 1, 4 and
16 concurrent sessions, the milliseconds the store adds to a turn, and bytes per 1,000 turns.

    python benchmarks/bench_store.py [--quick]

The scripted backend answers instantly, so what is measured is the engine's own work
(exploration, validation, rendering, effects) and, with the store on, the transaction that
records each turn: its row, the state after it and its hash-chained audit row. N concurrent
sessions are N threads on one engine and one store (as `dialogue serve` runs turns), each
talking in its own sessions; the same sessions in two processes on one store show what the
interpreter lock of one process costs. PostgreSQL is a throwaway server started here (initdb, fsync on,
127.0.0.1 over TCP, as tests/store/postgres.py starts it); where PostgreSQL or psycopg is
missing its rows say so and the rest runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dialogue import Engine, ScriptedBackend, load_policy  # noqa: E402
from dialogue.store import Store  # noqa: E402

POLICY = ROOT / "dialogue" / "examples" / "policies" / "blacksmith.py"
MESSAGES = ["hello", "how much for a sword?", "deal", "any rumours?", "can you fix my sword?", "bye"]
TURNS_PER_SESSION = 20
CONCURRENCY = (1, 4, 16)
PROCESSES = 2  # processes on one store, each with CONCURRENCY[-1] // PROCESSES sessions
PG_TARGET_MS = 3.0  # what PostgreSQL may add to a turn on loopback


def rotating_answers():
    """A scripted model that takes each admitted reply in turn (every call a different one)."""
    counter = itertools.count()

    def answer(prompt, constraint) -> str:
        plain = [a[0] for a in constraint.alternatives if len(a) == 1 and isinstance(a[0], str)]
        return plain[next(counter) % len(plain)] if plain else ""

    return ScriptedBackend(answer, strict=False)  # "" (no plain reply) is the engine's to refuse


def converse(engine: Engine, turns: int, prefix: str = "bench") -> None:
    """`turns` turns, in sessions of TURNS_PER_SESSION."""
    for n in range(turns):
        session = engine.session(f"{prefix}-{n // TURNS_PER_SESSION}")
        session.say(MESSAGES[n % len(MESSAGES)])


def measure(turns: int, store: Store | None, sessions: int = 1) -> float:
    """Turns per second on a fresh engine with `sessions` threads talking at once, after one
    warm-up session (imports, caches)."""
    engine = Engine(load_policy(POLICY), backend=rotating_answers(), store=store)
    converse(engine, TURNS_PER_SESSION, prefix="warm-up")
    each = max(TURNS_PER_SESSION, turns // sessions)
    threads = [threading.Thread(target=converse, args=(engine, each, f"bench-{n}")) for n in range(sessions)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return each * sessions / (time.perf_counter() - start)


def measure_processes(target: str, turns: int, processes: int, sessions: int, folder: Path) -> float:
    """Turns per second of `processes` processes on one store, each with `sessions` threads:
    each warms up, then all start together; total turns over the slowest one's time."""
    go = folder / f"go-{time.monotonic_ns()}"
    Store(target).close()  # the schema, made once before the processes open it
    each = max(TURNS_PER_SESSION, turns // (processes * sessions))
    workers = [subprocess.Popen([sys.executable, __file__, "--worker", str(target), str(sessions), str(each),
                                 f"p{n}", str(go)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                env=os.environ | {"PYTHONPATH": str(ROOT)})
               for n in range(processes)]
    try:
        for worker in workers:
            if worker.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a store benchmark worker failed to start (exit {worker.wait()})")
        go.touch()
        results = [json.loads(worker.stdout.readline()) for worker in workers]
    finally:
        for worker in workers:
            if worker.wait(timeout=600) != 0:
                raise RuntimeError(f"a store benchmark worker exited with {worker.returncode}")
    return sum(r["turns"] for r in results) / max(r["seconds"] for r in results)


def _worker(target: str, sessions: int, each: int, prefix: str, go: str) -> None:
    store = Store(target)
    engine = Engine(load_policy(POLICY), backend=rotating_answers(), store=store)
    converse(engine, TURNS_PER_SESSION, prefix=f"warm-up-{prefix}")
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    threads = [threading.Thread(target=converse, args=(engine, each, f"{prefix}-{n}")) for n in range(sessions)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"turns": each * sessions, "seconds": time.perf_counter() - start}), flush=True)
    store.close()


def sqlite_size_per_1000(folder: Path, turns: int) -> int:
    """Bytes on disk per 1,000 turns, from a file of `turns` turns checkpointed and closed."""
    path = folder / "size.db"
    with Store(path, durable=False) as store:
        Engine(load_policy(POLICY), backend=rotating_answers(), store=store)
        empty = path.stat().st_size
    with Store(path, durable=False) as store:
        converse(Engine(load_policy(POLICY), backend=rotating_answers(), store=store), turns)
    files = [path, path.with_name(path.name + "-wal")]
    grown = sum(f.stat().st_size for f in files if f.exists()) - empty
    return round(grown * 1000 / turns)


TABLES_SIZE = ("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = "
               "c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'")


def postgres_size_per_1000(url: str, turns: int) -> int:
    """Bytes per 1,000 turns: the growth of the store's tables with their indexes and TOAST."""
    import psycopg

    with Store(url) as store:
        Engine(load_policy(POLICY), backend=rotating_answers(), store=store)
        with psycopg.connect(url) as conn:
            empty = conn.execute(TABLES_SIZE).fetchone()[0]
        converse(Engine(load_policy(POLICY), backend=rotating_answers(), store=store), turns)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM")  # the visibility maps and free space maps as a settled table has them
            grown = conn.execute(TABLES_SIZE).fetchone()[0] - empty
    return round(grown * 1000 / turns)


def postgres_unavailable() -> str | None:
    from tests.store import postgres

    return postgres.unavailable()  # psycopg missing, PostgreSQL missing, or root without a postgres user


def backends(folder: Path):
    """(name, a new empty store's target each call, size per 1,000 turns) per backend, or a reason."""
    counter = itertools.count()
    yield "SQLite", lambda: folder / f"bench-{next(counter)}.db", sqlite_size_per_1000, None
    reason = postgres_unavailable()
    if reason is not None:
        yield "PostgreSQL", None, None, reason
        return
    from tests.store.postgres import PostgresServer

    server = PostgresServer(fsync=True).start()
    try:
        yield "PostgreSQL", server.create_database, postgres_size_per_1000, None
    finally:
        server.stop()


def backend_rows(name: str, new: Callable, size: Callable, turns: int, off: float, folder: Path) -> tuple[list, dict]:
    rows, figures = [], {}
    for sessions in CONCURRENCY:
        with Store(new()) as store:
            tps = figures[f"{name}_{sessions}"] = measure(turns, store, sessions)
        label = f"{sessions} session{'s' * (sessions > 1)}"
        rows.append(dict(measure=f"turns/s, {name} store, {label}", value=round(tps, 1), unit="turns/s",
                         baseline="store off, 1 session", ratio=round(tps / off, 3)))
    with Store(new(), durable=False) as store:
        tps = figures[f"{name}_16_not_durable"] = measure(turns, store, CONCURRENCY[-1])
    rows.append(dict(measure=f"turns/s, {name} store durable=False, {CONCURRENCY[-1]} sessions", value=round(tps, 1),
                     unit="turns/s", baseline="store off, 1 session", ratio=round(tps / off, 3),
                     note="a commit returns before its flush to disk" + (
                         ": the chain's lock is not held through an fsync" if name == "PostgreSQL" else "")))
    per = CONCURRENCY[-1] // PROCESSES
    tps = figures[f"{name}_{PROCESSES}_processes"] = measure_processes(new(), turns, PROCESSES, per, folder)
    rows.append(dict(measure=f"turns/s, {name} store, {PROCESSES} processes x {per} sessions", value=round(tps, 1),
                     unit="turns/s", baseline=f"1 process, {CONCURRENCY[-1]} sessions",
                     ratio=round(tps / figures[f"{name}_{CONCURRENCY[-1]}"], 3),
                     note=f"the same sessions in total, in {PROCESSES} processes of their own (as `--workers` "
                          f"or several hosts run them), on this machine's {os.cpu_count()} cores, which the "
                          "database shares"))
    added = 1000 / figures[f"{name}_1"] - 1000 / off
    is_pg = name == "PostgreSQL"
    rows.append(dict(measure=f"ms added per turn, {name} store", value=round(added, 3), unit="ms",
                     baseline="store off", target=f"<= {PG_TARGET_MS:g} ms on loopback" if is_pg else "",
                     met=added <= PG_TARGET_MS if is_pg else None))
    curve = ", ".join(f"{n}: {figures[f'{name}_{n}']:,.0f}" for n in CONCURRENCY)
    rows[len(CONCURRENCY) - 1]["note"] = f"turns/s by sessions {curve}"
    figures[f"{name}_bytes"] = size(folder if name == "SQLite" else new(), turns)
    rows.append(dict(measure=f"bytes per 1,000 turns, {name} store", value=figures[f"{name}_bytes"], unit="bytes"))
    return rows, figures


def run(quick: bool = False) -> dict:
    """The rows of the table (run.py folds them in) and every figure."""
    turns = 200 if quick else 2000
    result: dict = {"turns": turns, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        off = result["store_off_turns_per_s"] = round(measure(turns, None), 1)
        result["rows"].append(dict(measure="turns/s, store off, 1 session", value=off, unit="turns/s"))
        for name, new, size, reason in backends(folder):
            if reason is not None:
                result["rows"].append(dict(measure=f"{name} store", value=math.nan, unit="",
                                           note=f"skipped: {reason}"))
                result[f"{name}_skipped"] = reason
                continue
            rows, figures = backend_rows(name, new, size, turns, off, folder)
            result["rows"] += rows
            result.update({key: round(value, 1) for key, value in figures.items()})
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        _worker(argv[1], int(argv[2]), int(argv[3]), argv[4], argv[5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 turns a measure instead of 2,000")
    args = parser.parse_args(argv)
    print(json.dumps(run(quick=args.quick), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
