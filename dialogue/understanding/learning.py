"""Reviewed turns into examples: corrections from the session store, turns of conversation tests.

Nothing is learned silently: each source returns the examples it made and, one line each,
what it could not use and why; `dialogue learn` prints both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Iterable, Sequence

from ..backends.base import Constraint, Hole, Prompt
from ..backends.scripted import ScriptedBackend
from ..engine import Engine, Turn
from ..errors import RunError
from ..grammar import hole_spans
from ..policy import Policy
from ..store import CorrectionRecord
from ..testing.cases import Case, Expected, TestFile, parse_reply
from ..testing.runner import _reply_matches, check_turn
from .examples import Example

__all__ = ["Gathered", "conflicts", "correction_example", "from_corrections", "from_tests"]


@dataclass
class Gathered:
    """Examples from one source, and what it could not use."""

    examples: list[Example] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per unusable correction or turn
    hashed: list[CorrectionRecord] = field(default_factory=list)  # only a salted hash of the message kept
    without_reply: int = 0  # test turns that expect no particular reply: nothing to learn from them


# -- corrections ----------------------------------------------------------------------------

def from_corrections(records: Iterable[CorrectionRecord], policy: Policy) -> Gathered:
    """An example per correction whose message the store kept and the policy can still say."""
    out = Gathered()
    for record in records:
        if record.message is None:
            out.hashed.append(record)
            continue
        problem = _unusable(record, policy)
        if problem:
            out.skipped.append(f"correction of turn {record.turn} of {record.session_id} not used: {problem}")
            continue
        out.examples.append(Example(record.message, record.reply_id, node=record.node or None,
                                    state=record.state, source="correction", session=record.session_id,
                                    turn=record.turn, by=record.by, at=record.at))
    return out


def _unusable(record: CorrectionRecord, policy: Policy) -> str | None:
    catalog = policy.catalog
    if not record.message.strip():
        return "the message is empty"
    if record.reply_id not in catalog:
        return f"{record.reply_id} is no longer in catalog {catalog.id!r}"
    if catalog[record.reply_id].status == "retired":
        return f"{record.reply_id} is retired in catalog {catalog.id!r}"
    if record.node and record.node not in policy.nodes:
        return f"policy {policy.name!r} no longer has node {record.node!r}"
    return None


def correction_example(turn: Turn, reply_id: str, state_before: dict, *, by: str | None,
                       at: str, session: str | None = None) -> Example:
    """A reviewer's correction of a turn seen live (the TUI), as an example."""
    return Example(turn.message, reply_id, node=turn.node or None, state=state_before, source="correction",
                   session=session, turn=turn.index, by=by, at=at)


def conflicts(existing: Iterable[Example], new: Iterable[Example]) -> list[str]:
    """Lines naming earlier corrections of the same turns with another reply: the file keeps both."""
    by_turn = {(e.session, e.turn): e for e in existing
               if e.source == "correction" and e.session is not None and e.turn is not None}
    found = []
    for example in new:
        old = by_turn.get((example.session, example.turn))
        if example.source == "correction" and old is not None and old.reply != example.reply:
            found.append(f"turn {example.turn} of {example.session} is now corrected to {example.reply}; the "
                         f"file still has {old.reply} from an earlier correction: remove that one by hand")
    return found


# -- conversation tests ---------------------------------------------------------------------

def from_tests(test_file: TestFile, policy: Policy) -> Gathered:
    """An example per test turn with an expected reply, in the node and state it runs in.

    Each case is played on the engine with a script that answers each turn's expected
    reply, so node and state come from the engine's own effects and moves. Once a turn
    does not go as expected (no expected reply, not reachable, another state), the
    case's later turns are not used: their state is not known. Provenance is
    `session = "FILE: case name"` and `turn` counted from 1, as `dialogue test` counts.
    """
    out = Gathered()
    script = _Script()
    engine = Engine(policy, backend=ScriptedBackend(script.answer, strict=False), retries=0)
    for n, case in enumerate(test_file.cases):
        _play(engine.session(f"learn-{n}", state=case.state, node=case.node), case, test_file, script, out)
    return out


def _play(session, case: Case, test_file: TestFile, script: _Script, out: Gathered) -> None:
    for index, expected in enumerate(case.turns):
        where = f"{test_file.path.name}: case {case.name!r}, turn {index + 1}"
        later = len(case.turns) - index - 1
        if not expected.reply:
            out.without_reply += 1
            return _stop(out, f"{where} expects no particular reply", later)
        node, before = session.node, session.state.model_dump(mode="json")
        script.expect(expected, [e.user for e in case.turns[:index + 1]])
        try:
            turn = session.say(expected.user)
        except RunError as exc:
            return _stop(out, f"{where}: {exc}", later, this_turn=True)
        if not _reply_matches(expected, turn.reply.lines):
            wanted = expected.describe().split("; ")[0]
            return _stop(out, f"{where}: the engine cannot say {wanted} there", later, this_turn=True)
        out.examples.append(Example(expected.user, expected.reply[-1].id, node=node, state=before,
                                    source="test", session=f"{test_file.path.name}: {case.name}", turn=index + 1))
        problem = check_turn(expected, turn, session.engine.catalog)
        if problem is not None:
            return _stop(out, f"{where}: {problem}", later)


def _stop(out: Gathered, why: str, later: int, *, this_turn: bool = False) -> None:
    """Record why a case's turns stop being used: this one (when `this_turn`) and the `later` ones."""
    if not this_turn and not later:
        return
    parts = ["not used"] if this_turn else []
    if later:
        parts.append(f"{'nor' if this_turn else 'not used:'} the {later} later turn{'s' * (later != 1)} "
                     "(their state is not known)")
    out.skipped.append(f"{why}: {', '.join(parts)}")


class _Script:
    """The scripted model's answer: the admitted reply that is the turn's expected one."""

    def __init__(self) -> None:
        self.expected: Expected | None = None
        self.messages: list[str] = []

    def expect(self, expected: Expected, messages: Sequence[str]) -> None:
        self.expected, self.messages = expected, list(reversed(messages))  # newest first

    def answer(self, prompt: Prompt, constraint: Constraint) -> str:
        for alternative in constraint.alternatives:
            text = _filled(alternative, self.messages)
            if text is not None and _reply_matches(self.expected, _lines(text)):
                return text
        return ""  # none is: the turn falls back, and the case stops being learned from


def _filled(alternative: tuple, messages: list[str]) -> str | None:
    """The alternative with each hole filled by what the person typed (newest first), or None."""
    out = []
    for piece in alternative:
        if isinstance(piece, Hole):
            piece = _span(piece, messages)
            if piece is None:
                return None
        out.append(piece)
    return "".join(out)


def _span(hole: Hole, messages: list[str]) -> str | None:
    spans = hole_spans(hole, messages)
    if spans is not None:
        return spans[0] if spans else None
    found = (re.search(hole.pattern, message) for message in messages)  # a pattern that may match spaces
    return next((m.group(0) for m in found if m and m.group(0)), None)


def _lines(text: str) -> list[Any]:
    try:
        return [SimpleNamespace(id=line.id, slots=line.slots or {}) for line in parse_reply(text)]
    except ValueError:
        return []
