"""Turns per second with the session store on and off, and the store's size per 1,000 turns.

    python benchmarks/bench_store.py [--quick]

The scripted backend answers instantly, so what is measured is the engine's own work
(exploration, validation, rendering, effects) and, with the store on, the transaction that
records each turn: its row, the state after it and its hash-chained audit row.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dialogue import Engine, ScriptedBackend, load_policy  # noqa: E402
from dialogue.store import Store  # noqa: E402

POLICY = ROOT / "dialogue" / "examples" / "policies" / "blacksmith.py"
MESSAGES = ["hello", "how much for a sword?", "deal", "any rumours?", "can you fix my sword?", "bye"]
TURNS_PER_SESSION = 20


def rotating_answers():
    """A scripted model that takes each admitted reply in turn (every call a different one)."""
    counter = itertools.count()

    def answer(prompt, constraint) -> str:
        plain = [a[0] for a in constraint.alternatives if len(a) == 1 and isinstance(a[0], str)]
        return plain[next(counter) % len(plain)] if plain else ""

    return ScriptedBackend(answer, strict=False)  # "" (no plain reply) is the engine's to refuse


def converse(engine: Engine, turns: int, prefix: str = "bench") -> float:
    """Seconds to serve `turns` turns, in sessions of TURNS_PER_SESSION."""
    start = time.perf_counter()
    for n in range(turns):
        session = engine.session(f"{prefix}-{n // TURNS_PER_SESSION}")
        session.say(MESSAGES[n % len(MESSAGES)])
    return time.perf_counter() - start


def measure(turns: int, store: Store | None) -> float:
    """Turns per second on a fresh engine, after one warm-up session (imports, caches)."""
    engine = Engine(load_policy(POLICY), backend=rotating_answers(), store=store)
    converse(engine, TURNS_PER_SESSION, prefix="warm-up")
    return turns / converse(engine, turns)


def size_per_1000(folder: Path, turns: int) -> int:
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


def run(quick: bool = False) -> dict:
    """The numbers: turns/s without a store, with a durable store, with durable=False; bytes/1,000 turns."""
    turns = 200 if quick else 2000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        off = measure(turns, None)
        with Store(folder / "durable.db") as store:
            durable = measure(turns, store)
        with Store(folder / "fast.db", durable=False) as store:
            fast = measure(turns, store)
        size = size_per_1000(folder, turns)
    return {
        "turns": turns,
        "store_off_turns_per_s": round(off, 1),
        "store_on_turns_per_s": round(durable, 1),
        "store_on_not_durable_turns_per_s": round(fast, 1),
        "store_ms_per_turn": round(1000 / durable - 1000 / off, 3),
        "bytes_per_1000_turns": size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 turns instead of 2,000")
    args = parser.parse_args(argv)
    print(json.dumps(run(quick=args.quick), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
