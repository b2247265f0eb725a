"""`said`: the only door to language inside a decision function.

A decision function receives a `Said` and asks it questions about the user's latest
message. Who answers depends on how the policy runs: exploration answers every
way in turn, a replay answers as a chosen path did, execution asks the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from . import deadline, patterns
from .errors import ExplorationError, PolicyError

__all__ = ["Extracted", "Said", "Step"]

ASK, PICK, EXTRACT = "ask", "pick", "extract"
MAX_OPTIONS = 10_000  # options of one said.pick


@dataclass(frozen=True)
class Step:
    """One `said` call on a path: its kind, question, options and the answer given."""

    kind: str  # "ask" | "pick" | "extract"
    question: str
    options: tuple = ()
    answer: Any = None
    pattern: str | None = None
    max_length: int | None = None
    line: int | None = None
    detail: dict = field(default_factory=dict, compare=False)
    # What the author wrote with the call: messages for `said`/`extract`, for `pick` a tuple
    # of (option, messages) pairs. Recorded when the call runs, so a question or examples
    # held in a module constant or asked in a helper function are known too.
    examples: tuple = field(default=(), compare=False)

    def describe(self) -> str:
        answer = "yes" if self.answer is True else "no" if self.answer is False else self.answer
        return f"{self.question!r} -> {answer}"


class Said:
    """The object a decision function calls: `said(q)`, `said.pick(...)`, `said.extract(...)`.

    Subclasses implement `_answer(step)`; this class checks arguments and records steps.
    """

    max_calls = 64
    answers_off_the_clock = False  # True: time spent answering (a model call) is not policy time

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def __call__(self, question: str, *, examples: Sequence[str] = ()) -> bool:
        """Whether the user's latest message means `question` (a yes/no question)."""
        _check_question(question, "said")
        _check_examples(examples, "said")
        return self._record(Step(ASK, question, (True, False), examples=tuple(examples)))

    def pick(self, question: str, options: Sequence[str], *, examples: dict | None = None) -> str:
        """Which one of `options` the user's latest message means."""
        _check_question(question, "said.pick")
        options = tuple(options)
        if len(options) > MAX_OPTIONS:
            raise ExplorationError(f"said.pick({question!r}) has {len(options)} options, more than {MAX_OPTIONS}",
                                   hint="a pick chooses among a few named things; narrow the options with "
                                        "the state first, or ask in two steps (a category, then an item)")
        if not options or not all(isinstance(o, str) and o for o in options):
            raise PolicyError(f"said.pick({question!r}) needs a non-empty list of non-empty strings",
                              hint="pass the options as a list of strings, e.g. list(PRICES)")
        options, pairs = _pick_examples(question, options, examples)
        return self._record(Step(PICK, question, options, examples=pairs))

    def extract(self, what: str, pattern: str, *, examples: Sequence[str] = (),
                max_length: int = 64) -> str:
        """A span of the user's message matching the regex `pattern`, e.g. an order number."""
        _check_question(what, "said.extract")
        _check_examples(examples, "said.extract")
        _check_pattern(what, pattern)
        return self._record(Step(EXTRACT, what, (), pattern=pattern, max_length=max_length,
                                 examples=tuple(examples)))

    def _record(self, step: Step) -> Any:
        if len(self.steps) >= self.max_calls:
            raise ExplorationError(
                f"more than {self.max_calls} said calls on one path",
                hint="a decision function must be a finite tree of questions; "
                     "raise the bound with explore(..., max_calls=N) if this is intended")
        earlier = self._asked_before(step)
        if earlier is not None:  # one message: the same question means the same on a path
            answer = earlier.answer
            self._repeated(step, len(self.steps))
        elif self.answers_off_the_clock:
            with deadline.paused():
                answer = self._answer(step, len(self.steps))
        else:
            answer = self._answer(step, len(self.steps))
        self.steps.append(_with_answer(step, answer))
        return answer

    def _asked_before(self, step: Step) -> Step | None:
        """The earlier step of this path that asked the same yes/no question or the same pick."""
        if step.kind == EXTRACT:
            return None
        return next((s for s in self.steps if s.kind == step.kind and s.question == step.question
                     and s.options == step.options), None)

    def _answer(self, step: Step, index: int) -> Any:
        raise NotImplementedError

    def _repeated(self, step: Step, index: int) -> None:
        """A question asked again on the path was answered as before (no new branch)."""


_PICKS: dict[tuple, tuple] = {}  # (question, options, id(examples)) -> (examples, pairs)


def _pick_examples(question: str, options: tuple, examples: dict | None) -> tuple[tuple, tuple]:
    """A pick's options and its examples as (option, messages) pairs, checked once per
    examples object: an exploration calls the same pick once per path, and a pick can have
    a thousand options. The options come back as the tuple first seen, so the steps of
    every path share one."""
    key = (question, options, id(examples))
    known = _PICKS.get(key)
    if known is not None and known[0] is examples:
        return known[2], known[1]
    if len(set(options)) != len(options):
        raise PolicyError(f"said.pick({question!r}) has duplicate options: {list(options)}")
    for option in (examples or {}):
        if option not in options:
            raise PolicyError(f"said.pick({question!r}) has examples for {option!r}, not an option")
        _check_examples(examples[option], "said.pick")
    pairs = tuple((option, tuple((examples or {}).get(option, ()))) for option in options)
    if len(_PICKS) >= 256:
        _PICKS.clear()
    _PICKS[key] = (examples, pairs, options)  # holds the examples, so their id is not reused meanwhile
    return options, pairs


def _with_answer(step: Step, answer: Any) -> Step:
    return Step(step.kind, step.question, step.options, answer, step.pattern, step.max_length,
                step.line, step.detail, step.examples)


def _check_question(question: Any, where: str) -> None:
    if not isinstance(question, str) or not question.strip():
        raise PolicyError(f"{where}() needs a question as a non-empty string, got {question!r}")


def _check_examples(examples: Any, where: str) -> None:
    if isinstance(examples, str) or not all(isinstance(e, str) for e in examples):
        raise PolicyError(f"{where}(examples=...) takes a list of strings",
                          hint='write examples=["first message", "second message"]')


def _check_pattern(what: str, pattern: Any) -> None:
    if not isinstance(pattern, str):
        raise PolicyError(f"said.extract({what!r}) needs a regex string as its pattern")
    problem = patterns.check(pattern)
    if problem is not None:
        raise PolicyError(f"said.extract({what!r}) has a bad pattern {pattern!r}: {problem}",
                          hint="write a Python regular expression (re module) that RE2 also runs: no "
                               "back-references or lookaround")


class Extracted:
    """The value of a `said.extract` during exploration: symbolic, not yet known.

    It may be passed to a reply slot; any computation on it is an author error,
    because the decision function would branch on text the model has not read yet.
    """

    __slots__ = ("index", "what", "pattern", "max_length")

    def __init__(self, index: int, what: str, pattern: str, max_length: int) -> None:
        self.index, self.what, self.pattern, self.max_length = index, what, pattern, max_length

    def _dialogue_marker(self) -> tuple:
        return ("extract", self.index, self.pattern)

    def __repr__(self) -> str:
        return f"<extracted {self.what!r} ~ /{self.pattern}/>"

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise ExplorationError(
            f"the extracted value {self.what!r} is used in a computation",
            hint="an extracted value is only known after the model reads the message; pass it "
                 "straight into a reply slot (reply('ID', slot=value)) and decide with said() instead")

    __str__ = __format__ = __bool__ = __len__ = __iter__ = __contains__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __add__ = __radd__ = __mul__ = __rmul__ = __mod__ = __getitem__ = _refuse
    __int__ = __float__ = __index__ = _refuse
    __hash__ = object.__hash__

    def __getattr__(self, name: str) -> Any:
        self._refuse()
