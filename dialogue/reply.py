"""Replies: what a decision function returns, a catalog id plus slot values.

`reply("A") + reply("B", x=1)` is a multi-line reply: one turn that says both lines
in order. The last line carries the transition (`goto`, `end`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Reply", "reply"]


@dataclass(frozen=True)
class Reply:
    """One catalog line chosen by a decision function: its id and slot values.

    `goto` names the node the conversation moves to and `end` closes it; `before`
    holds the lines said earlier in the same turn; `origin` is where the
    `reply(...)` call is written (file, line), for error messages.
    """

    id: str
    slots: dict[str, Any] = field(default_factory=dict)
    goto: str | None = None
    end: bool = False
    origin: tuple[str, int] | None = field(default=None, compare=False, repr=False)
    before: tuple[Reply, ...] = ()

    @property
    def lines(self) -> tuple[Reply, ...]:
        """Every line of this reply in the order said; the last one carries goto/end."""
        if not self.before:
            return (self,)
        return (*self.before, replace(self, before=()))

    def __add__(self, other: object) -> Reply:
        if not isinstance(other, Reply):
            return NotImplemented
        if self.goto is not None or self.end:
            from .errors import PolicyError

            raise PolicyError(f"reply {self.id} has goto/end but is not the last line of the turn",
                              hint="put goto=... or end=True on the last reply of a sequence")
        return replace(other, before=self.lines + other.before)

    def key(self) -> tuple:
        """A hashable identity: lines, slots (symbolic values by their marker), goto, end."""
        slots = tuple((k, _slot_key(v)) for k, v in sorted(self.slots.items()))
        return (self.id, slots, self.goto, self.end, tuple(b.key() for b in self.before))

    def __hash__(self) -> int:
        return hash(self.key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reply) and self.key() == other.key()


def _slot_key(value: Any) -> Any:
    marker = getattr(type(value), "_dialogue_marker", None)
    if marker is not None:
        return marker(value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return (type(value).__name__, value)


def reply(id: str, /, *, goto: str | None = None, end: bool = False, **slots: Any) -> Reply:
    """Choose the catalog line `id` with these slot values (what a decision function returns)."""
    if not isinstance(id, str):
        raise TypeError(f"reply() takes a catalog id string, not {type(id).__name__}")
    frame = sys._getframe(1)
    return Reply(id, slots, goto, end, origin=(frame.f_code.co_filename, frame.f_lineno))
