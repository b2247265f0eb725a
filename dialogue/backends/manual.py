"""A backend where a person is the model: for designers testing state logic without one.

Every call lists what the constraint admits (the reachable replies, numbered, with the
text each would say when the caller can tell; or the answers to a question in executed
mode) and reads the person's pick by number. A slot the model would extract is typed in and checked
against its pattern. `dialogue chat POLICY --backend manual` uses it.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any, Callable

from ..errors import BackendError
from ..grammar import _literal, display
from .base import Capabilities, Completion, Constraint, Hole, Prompt

__all__ = ["ManualBackend"]

QUESTIONS = ("Question: ", "Copy from the message: ")  # how an executed-mode prompt asks


class ManualBackend:
    """Asks a person to choose each output among the admitted ones.

    `read(prompt)` returns one line (default: `input`, echoing the line when stdin is not
    a terminal so a piped transcript reads as a conversation; end of input is a
    BackendError). `write(text)` shows a line (default: print to stdout). `describe(shown)`
    says what a listed output means (the text a reply would say), shown beside it.
    """

    name = "manual"
    capabilities = Capabilities(choice=True, regex=True, grammar=True)
    interactive = True  # it reads the terminal: no spinner over its questions

    def __init__(self, *, describe: Callable[[str], str] | None = None,
                 read: Callable[[str], str] | None = None, write: Callable[[str], Any] | None = None,
                 model: str = "person") -> None:
        self.describe, self.model = describe, model
        self._read = read or _read_line
        self._write = write or print

    def generate(self, prompt: Prompt, constraint: Constraint) -> Completion:
        start = time.perf_counter()
        alternatives = constraint.alternatives
        question = prompt.user.split("\n", 1)[0]
        if question.startswith(QUESTIONS):  # executed mode: one said question per call
            self._write(f"  {question}")
        if len(alternatives) == 1:
            chosen = alternatives[0]
            if all(isinstance(p, str) for p in chosen):
                self._write(f"  (the one reachable: {self._label(chosen)})")
        else:
            for n, alternative in enumerate(alternatives, 1):
                self._write(f"  {n:>2}  {self._label(alternative)}")
            chosen = alternatives[self._pick(len(alternatives)) - 1]
        text = "".join(p if isinstance(p, str) else self._fill(p) for p in chosen)
        return Completion(text=text, seconds=time.perf_counter() - start)

    def _pick(self, count: int) -> int:
        while True:
            answer = self._ask(f"pick 1-{count}> ").strip()
            if answer.isdigit() and 1 <= int(answer) <= count:
                return int(answer)
            self._write(f"  type a number from 1 to {count}")

    def _fill(self, hole: Hole) -> str:
        spans = _literals(hole.pattern)  # a hole narrowed to what the message holds
        if spans is not None and len(spans) == 1:
            self._write(f"  (the one value the message holds: {spans[0]})")
            return spans[0]
        ask = f"one of {', '.join(spans)}" if spans else f"matching {hole.pattern}"
        while True:
            value = self._ask(f"  value {ask}> ").strip()
            if re.fullmatch(hole.pattern, value) and len(value) <= hole.max_length:
                return value
            self._write(f"  {value!r} is not a value {ask} (of at most {hole.max_length} characters)")

    def _ask(self, prompt: str) -> str:
        try:
            return self._read(prompt)
        except EOFError:
            raise BackendError("the manual backend's input ended before a reply was chosen") from None

    def _label(self, alternative: tuple) -> str:
        shown = display(alternative)
        text = self.describe(shown) if self.describe is not None else ""
        return f"{shown:<32}  {text}" if text else shown


def _literals(pattern: str) -> list[str] | None:
    """The strings of a pattern that is only literals joined by | (a hole narrowed to the spans
    the message holds), else None."""
    parts = [re.sub(r"\\(.)", r"\1", part) for part in re.split(r"(?<!\\)\|", pattern)]
    return parts if "|".join(map(_literal, parts)) == pattern else None


def _read_line(prompt: str) -> str:
    line = input(prompt)
    if not sys.stdin.isatty():
        print(line)
    elif line.strip() and "readline" in sys.modules:  # a pick is no line to recall: keep it out of the history
        readline = sys.modules["readline"]
        readline.remove_history_item(readline.get_current_history_length() - 1)
    return line
