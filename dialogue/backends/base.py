"""The backend protocol: what every model adapter offers the engine.

A backend answers one question: given a prompt and a constraint (the outputs it may
produce), which admitted output does the model choose? It states what it can enforce
through `Capabilities`; the engine validates every output again regardless.
"""

from __future__ import annotations

import hashlib
import re
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator, Protocol, runtime_checkable

__all__ = [
    "Backend",
    "Capabilities",
    "Completion",
    "Constraint",
    "Hole",
    "Prompt",
    "turn_deadline",
    "turn_time_left",
]

# When the turn being served must end (time.monotonic()), or None: a backend that can
# shorten its calls (the server backends) keeps within it.
_TURN_UNTIL: ContextVar[float | None] = ContextVar("dialogue_turn_until", default=None)


@contextmanager
def turn_deadline(seconds: float | None) -> Iterator[None]:
    """The block is one turn that must end within `seconds` (None: no deadline)."""
    if seconds is None:
        yield
        return
    token = _TURN_UNTIL.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _TURN_UNTIL.reset(token)


def turn_time_left() -> float | None:
    """Seconds left to the turn being served, or None outside a turn with a deadline."""
    until = _TURN_UNTIL.get()
    return None if until is None else until - time.monotonic()


@dataclass(frozen=True)
class Capabilities:
    """What a backend can enforce and report."""

    choice: bool = False  # constrain to one of a set of literal strings
    regex: bool = False  # constrain to a regular expression
    grammar: bool = False  # constrain to a context-free grammar
    prefix_reuse: bool = False  # reuses the KV cache of a repeated prompt prefix
    logprobs: bool = False  # scores admitted choices by log-probability


@dataclass(frozen=True)
class Prompt:
    """A prompt in two parts: `system` never changes for a policy node, `user` per turn.

    `content_free` is the start of the same prompt (the system part and the replies) with
    a content-free input as the message; backends that score by log-probability calibrate
    on it. `user` begins with the same replies block, so the cache serves both.
    """

    system: str
    user: str
    content_free: Prompt | None = None


@dataclass(frozen=True)
class Hole:
    """A span the model fills, constrained by a regular expression (no anchors)."""

    pattern: str
    max_length: int = 64


Piece = str | Hole


@dataclass(frozen=True)
class Constraint:
    """The admitted outputs: alternatives, each a sequence of literal text and holes.

    An alternative with no hole is a plain string; a constraint whose alternatives
    are all plain strings is a choice.
    """

    alternatives: tuple[tuple[Piece, ...], ...]
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.alternatives:
            raise ValueError("a constraint needs at least one alternative")
        normal = tuple(_merge(alt) for alt in self.alternatives)
        object.__setattr__(self, "alternatives", normal)
        digest = hashlib.sha256(repr(normal).encode()).hexdigest()
        object.__setattr__(self, "key", digest)

    @classmethod
    def choice(cls, options: list[str] | tuple[str, ...]) -> Constraint:
        return cls(tuple((o,) for o in options))

    @property
    def is_choice(self) -> bool:
        return all(len(a) <= 1 and not isinstance(a[0] if a else "", Hole) for a in self.alternatives)

    @property
    def literals(self) -> tuple[str, ...]:
        """The admitted strings of a choice constraint."""
        if not self.is_choice:
            raise ValueError("constraint has holes; it is not a plain choice")
        return tuple(a[0] if a else "" for a in self.alternatives)

    def regex(self) -> str:
        """One regular expression admitting exactly the alternatives."""
        parts = []
        for alt in self.alternatives:
            parts.append("".join(
                f"(?:{p.pattern})" if isinstance(p, Hole) else re.escape(p) for p in alt
            ))
        return "(?:" + "|".join(parts) + ")"


def _merge(alt: tuple[Piece, ...]) -> tuple[Piece, ...]:
    out: list[Piece] = []
    for piece in alt:
        if isinstance(piece, str) and out and isinstance(out[-1], str):
            out[-1] = out[-1] + piece
        elif piece != "":
            out.append(piece)
    return tuple(out) if out else ("",)


@dataclass
class Completion:
    """What a backend produced for one call, with the numbers that explain its cost."""

    text: str
    tokens_reused: int = 0  # prompt tokens served from the prefix cache
    tokens_new: int = 0  # prompt tokens evaluated this call
    tokens_forced: int = 0  # output tokens the constraint forced (not sampled)
    decode_steps: int = 0  # forward steps where the model actually chose
    scores: dict[str, float] | None = None  # calibrated scores at the first branch, if any
    cached_tokens: int | None = None  # what a server reported as cached
    seconds: float = 0.0
    detail: dict = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A model behind a common interface, with constrained generation."""

    name: str
    model: str
    capabilities: Capabilities

    def generate(self, prompt: Prompt, constraint: Constraint) -> Completion:
        """Return the model's choice among the admitted outputs.

        Raise `BackendError` when the model or server fails, `ConstraintError` when
        the constraint cannot be enforced. Output is validated by the engine anyway.
        """
        ...
