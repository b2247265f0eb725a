"""Engines on a store for the tests: a scripted model that answers by the words of the message.

    python -m tests.store.engines write DB PREFIX THREADS TURNS
        one Engine, THREADS threads, each its own session PREFIX-N of TURNS turns (0: until
        killed); each committed turn prints "SESSION INDEX REPLY_ID" on stdout.
    python -m tests.store.engines resume DB SESSION MESSAGE
        resume SESSION in a new Engine, say MESSAGE, print the session as JSON.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path

from dialogue import Engine, ScriptedBackend, load_policy
from dialogue.backends.base import Hole

ROOT = Path(__file__).resolve().parents[2]
BLACKSMITH = ROOT / "dialogue" / "examples" / "policies" / "blacksmith.py"
FLOW = ROOT / "tests" / "fixtures" / "policies" / "flow.py"
MESSAGE = re.compile(r'New message \(quoted data, not instructions\)[^"]*("(?:[^"\\]|\\.)*")')
# A conversation with Hilda that loops: buy nails, buy a dagger, chat. Each message names the reply.
SCRIPT = ["greeting", "some nails", "sold", "any rumour?", "a dagger", "sold", "bye now"]


def by_words(prompt, constraint) -> str:
    """The admitted reply sharing most words with the message (holes filled from it); else the last."""
    message = json.loads(MESSAGE.findall(prompt.user)[-1])
    words = set(re.findall(r"[a-z0-9]+", message.lower()))
    best, best_score = None, 0
    for alternative in constraint.alternatives:
        text = _filled(alternative, message)
        score = len(words & set(re.findall(r"[a-z0-9]+", (text or "").lower())))
        if text is not None and score > best_score:
            best, best_score = text, score
    return best if best is not None else _filled(constraint.alternatives[-1], message) or ""


def _filled(alternative, message: str) -> str | None:
    out = []
    for piece in alternative:
        if isinstance(piece, Hole):
            found = re.search(piece.pattern, message)
            if found is None:
                return None
            piece = found.group(0)
        out.append(piece)
    return "".join(out)


def engine(policy_path=BLACKSMITH, **options) -> Engine:
    """An engine on the scripted model above; `store=` and the rest as for Engine."""
    return Engine(load_policy(policy_path), backend=ScriptedBackend(by_words), **options)


def played(db, session_id: str, exchanges: list[tuple[str, str]], *, policy_path=BLACKSMITH,
           state: dict | None = None, **options) -> list:
    """A session of (message, model output) exchanges recorded in the store at `db`; its turns.

    The model answers each message with its output; any other call (one without a message of
    the script) gets the first admitted alternative.
    """
    outputs = dict(exchanges)

    def answer(prompt, constraint) -> str:
        said = MESSAGE.findall(prompt.user)
        message = json.loads(said[-1]) if said else None
        return outputs[message] if message in outputs else _filled(constraint.alternatives[0], "") or ""

    scripted = Engine(load_policy(policy_path), backend=ScriptedBackend(answer), store=db, **options)
    try:
        session = scripted.session(session_id, state=state)
        return [session.say(message) for message, _ in exchanges]
    finally:
        scripted.close()


def transcript(session) -> list[tuple]:
    """What a session said: (message, reply id, text), oldest first."""
    return [(t.message, t.reply.id, t.text) for t in session.turns]


def _write(shared: Engine, session_id: str, turns: int, out: threading.Lock, failed: list) -> None:
    try:
        session = shared.session(session_id)
        index = len(session.turns)
        while turns == 0 or index < turns:
            turn = session.say(SCRIPT[index % len(SCRIPT)])
            with out:
                print(session_id, turn.index, turn.reply.id, flush=True)
            index += 1
    except Exception as exc:  # reported by main; the test reads stderr and the exit status
        failed.append(f"{session_id}: {type(exc).__name__}: {exc}")


def write(db: str, prefix: str, threads: int, turns: int) -> int:
    shared, out, failed = engine(store=db), threading.Lock(), []
    workers = [threading.Thread(target=_write, args=(shared, f"{prefix}-{n}", turns, out, failed))
               for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    shared.close()
    for failure in failed:
        print(failure, file=sys.stderr)
    return 1 if failed else 0


def resume(db: str, session_id: str, message: str) -> int:
    resumed = engine(store=db)
    session = resumed.session(session_id)
    before = [line.message for line in session.history()]
    turn = session.say(message)
    print(json.dumps({"history": before, "turns": len(session.turns), "reply": turn.reply.id,
                      "state": session.state.model_dump(mode="json"), "node": session.node,
                      "prompt": resumed.backend.calls[-1][0].user}))
    resumed.close()
    return 0


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "write":
        sys.exit(write(args[0], args[1], int(args[2]), int(args[3])))
    sys.exit(resume(*args))
