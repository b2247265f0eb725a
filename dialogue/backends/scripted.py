"""A backend that answers from a script: for testing policies without a model."""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from ..errors import BackendError
from .base import Capabilities, Completion, Constraint, Prompt

__all__ = ["ScriptedBackend"]

Answer = str | Callable[[Prompt, Constraint], str]


class ScriptedBackend:
    """Answers each call with the next item of `answers`, verbatim (no constraint applied).

    An item is the raw output (e.g. ``"OFFER(item=sword, price=50)"``, ``"yes"``) or a
    function of (prompt, constraint). `answers` may also be one function, used for every
    call. Output is not constrained, so a script can test what validation does with
    off-grammar text; the engine validates it like any model output.
    """

    name = "scripted"
    capabilities = Capabilities(choice=False, regex=False, grammar=False)

    def __init__(self, answers: Iterable[Answer] | Callable[[Prompt, Constraint], str] = (), *,
                 model: str = "script") -> None:
        self.model = model
        self._each = answers if callable(answers) else None
        self._answers = [] if callable(answers) else list(answers)
        self._lock = threading.Lock()
        self.calls: list[tuple[Prompt, Constraint]] = []

    @classmethod
    def first(cls) -> "ScriptedBackend":
        """A backend that always picks the first admitted alternative (holes not filled)."""
        return cls(lambda prompt, constraint: "".join(
            p if isinstance(p, str) else "" for p in constraint.alternatives[0]))

    def generate(self, prompt: Prompt, constraint: Constraint) -> Completion:
        start = time.perf_counter()
        with self._lock:
            self.calls.append((prompt, constraint))
            if self._each is not None:
                answer: Answer = self._each
            elif self._answers:
                answer = self._answers.pop(0)
            else:
                raise BackendError(
                    f"the scripted backend ran out of answers after {len(self.calls) - 1} calls")
        text = answer(prompt, constraint) if callable(answer) else answer
        if isinstance(text, Exception):
            raise text
        return Completion(text=text, seconds=time.perf_counter() - start)

    @property
    def remaining(self) -> int:
        return len(self._answers)
