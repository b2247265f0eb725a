"""Undo and redo for the catalog editor: snapshots of the document's text before each edit."""

from __future__ import annotations

from collections.abc import Hashable

LIMIT = 200  # steps kept; a catalog is small, a snapshot is its text


class EditHistory:
    """The texts before each edit (undo) and after each undone one (redo).

    Edits of one `group` in a row (the keys typed into one field of one line) are one step;
    `break_group` ends such a run, so the next edit starts a new step.
    """

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._undo: list[str] = []
        self._redo: list[str] = []
        self._group: Hashable | None = None

    def record(self, before: str, group: Hashable | None = None) -> None:
        """Remember the text before an edit; a new edit drops what could be redone."""
        self._redo.clear()
        if group is not None and group == self._group and self._undo:
            return  # the same run of typing: undo goes back to before its first key
        self._undo.append(before)
        del self._undo[:-self.limit]
        self._group = group

    def undo(self, now: str) -> str | None:
        """The text to go back to (None when there is nothing to undo); `now` can be redone."""
        return self._step(self._undo, self._redo, now)

    def redo(self, now: str) -> str | None:
        """The text an undo went back from (None when there is nothing to redo)."""
        return self._step(self._redo, self._undo, now)

    def break_group(self) -> None:
        self._group = None

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._group = None

    def _step(self, source: list[str], target: list[str], now: str) -> str | None:
        self._group = None
        if not source:
            return None
        target.append(now)
        return source.pop()
