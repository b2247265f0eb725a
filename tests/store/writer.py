"""A writer process for the store tests: threads that each record turns of their own session.

    python -m tests.store.writer DB PREFIX THREADS TURNS [PAYLOAD]

TURNS 0 writes until killed. Each committed turn prints "SESSION INDEX SEQ" on stdout.
PAYLOAD pads every turn's trace with that many characters (a longer transaction).
"""

from __future__ import annotations

import sys
import threading

from .helpers import new_session, open_store, say


def write(db: str, session_id: str, turns: int, payload: int, out: threading.Lock, failed: list) -> None:
    try:
        with open_store(db) as store:
            new_session(store, session_id)
            index = 0
            while turns == 0 or index < turns:
                seq = say(store, session_id, index, trace={"padding": "x" * payload})
                with out:
                    print(session_id, index, seq, flush=True)
                index += 1
    except Exception as exc:  # reported by main; the test reads stderr and the exit status
        failed.append(f"{session_id}: {type(exc).__name__}: {exc}")


def main(argv: list[str]) -> int:
    db, prefix, threads, turns = argv[0], argv[1], int(argv[2]), int(argv[3])
    payload = int(argv[4]) if len(argv) > 4 else 0
    out, failed = threading.Lock(), []
    workers = [threading.Thread(target=write, args=(db, f"{prefix}-{n}", turns, payload, out, failed))
               for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for failure in failed:
        print(failure, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
