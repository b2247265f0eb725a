"""A backend that answers from a script: for testing policies without a model.

With no script it answers every call with the first output the constraint admits (the
first reachable reply; "yes" to a yes/no question), which is what `--backend scripted`
does on the command line and in the TUI. A scripted answer the constraint does not admit
is a `BackendError` that names it and lists what was admitted, so a wrong script is never
mistaken for a model's mistake (and never eats the retry meant for the next call).
"""

from __future__ import annotations

import re
import threading
import time
from re import _parser as _regex_parser  # the standard library's own regex parser
from typing import Callable, Iterable

from ..errors import BackendError, OutputInvalid
from ..grammar import display, reply_grammar
from .base import Capabilities, Completion, Constraint, Hole, Prompt

__all__ = ["FIRST_REACHABLE", "ScriptedBackend", "first_admitted"]

Answer = str | Callable[[Prompt, Constraint], str]

FIRST_REACHABLE = "first-reachable"  # the model name of a scripted backend without a script
SHOWN = 12  # admitted outputs listed in an error before "and N more"


class ScriptedBackend:
    """Answers each call with the next item of `answers`, verbatim.

    An item is the raw output (e.g. ``"OFFER(item=sword, price=50)"``, ``"yes"``) or a
    function of (prompt, constraint). `answers` may also be one function, used for every
    call, or None (the default): no script, every call answers the first admitted output.

    `strict` (default): an answer the call's constraint does not admit raises BackendError
    naming it and the admitted outputs. `strict=False` hands it to the engine like a
    model's output, to test what validation, retries and the fallback do with it.
    """

    name = "scripted"
    capabilities = Capabilities(choice=False, regex=False, grammar=False)

    def __init__(self, answers: Iterable[Answer] | Callable[[Prompt, Constraint], str] | None = None, *,
                 strict: bool = True, model: str | None = None) -> None:
        if answers is None:
            answers = _first_admitted_answer
        self.model = model or (FIRST_REACHABLE if answers is _first_admitted_answer else "script")
        self.strict = strict
        self._each = answers if callable(answers) else None
        self._answers = [] if callable(answers) else list(answers)
        self._given = len(self._answers)
        self._lock = threading.Lock()
        self.calls: list[tuple[Prompt, Constraint]] = []

    @classmethod
    def first(cls) -> "ScriptedBackend":
        """A backend that always answers the first admitted output (the same as no script)."""
        return cls()

    def generate(self, prompt: Prompt, constraint: Constraint) -> Completion:
        start = time.perf_counter()
        with self._lock:
            self.calls.append((prompt, constraint))
            call = len(self.calls)
            if self._each is not None:
                answer: Answer = self._each
            elif self._answers:
                answer = self._answers.pop(0)
            else:
                raise BackendError(f"the scripted backend has no answer for call {call}: its script "
                                   f"had {self._given}; admitted here: {admitted_list(constraint)}")
        text = answer(prompt, constraint) if callable(answer) else answer
        if isinstance(text, Exception):
            raise text
        if self.strict:
            _check_admitted(text, constraint, call)
        return Completion(text=text, seconds=time.perf_counter() - start)

    @property
    def remaining(self) -> int:
        return len(self._answers)


def _check_admitted(text: str, constraint: Constraint, call: int) -> None:
    try:
        reply_grammar(constraint).parse(text)
    except OutputInvalid:
        raise BackendError(f"scripted answer {text!r} (call {call}) is not reachable here; "
                           f"reachable: {admitted_list(constraint)} (ScriptedBackend(..., strict=False) "
                           "passes it to validation and the fallback instead)") from None


def admitted_list(constraint: Constraint) -> str:
    """The admitted outputs for people, holes as <regex>; long lists cut after SHOWN."""
    shown = [display(alt) for alt in constraint.alternatives]
    more = len(shown) - SHOWN
    return " | ".join(shown[:SHOWN]) + (f" | ... and {more} more" if more > 0 else "")


def _first_admitted_answer(prompt: Prompt, constraint: Constraint) -> str:
    return first_admitted(constraint)


def first_admitted(constraint: Constraint) -> str:
    """The first admitted output: its holes filled with the shortest text their pattern admits."""
    return "".join(p if isinstance(p, str) else sample(p) for p in constraint.alternatives[0])


def sample(hole: Hole) -> str:
    """A short text matching the hole's pattern ('' when the pattern is beyond this sketch)."""
    try:
        text = _sample(_regex_parser.parse(hole.pattern))
    except (re.error, KeyError, IndexError, TypeError, ValueError):
        return ""
    return text if re.fullmatch(hole.pattern, text) and len(text) <= hole.max_length else ""


def _sample(items) -> str:
    return "".join(_sample_item(op, av) for op, av in items)


_CATEGORY = {"CATEGORY_DIGIT": "0", "CATEGORY_WORD": "a", "CATEGORY_SPACE": " ",
             "CATEGORY_NOT_DIGIT": "a", "CATEGORY_NOT_WORD": "-", "CATEGORY_NOT_SPACE": "a"}


def _sample_item(op, av) -> str:
    kind = str(op)
    if kind == "LITERAL":
        return chr(av)
    if kind == "ANY":
        return "a"
    if kind == "IN":
        return _sample_class(av)
    if kind in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _, body = av
        return _sample(body) * max(low, 0)
    if kind == "SUBPATTERN":
        return _sample(av[-1])
    if kind == "ATOMIC_GROUP":
        return _sample(av)
    if kind == "BRANCH":
        return _sample(av[1][0])
    if kind in ("AT", "ASSERT", "ASSERT_NOT"):
        return ""
    raise ValueError(kind)


def _sample_class(items) -> str:
    op, av = items[0]
    kind = str(op)
    if kind == "LITERAL":
        return chr(av)
    if kind == "RANGE":
        return chr(av[0])
    if kind == "CATEGORY":
        return _CATEGORY[str(av)]
    raise ValueError(kind)
