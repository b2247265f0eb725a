"""A text field for a catalog line: wraps long text, takes line breaks, leaves undo to the screen."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import TextArea


SCREEN_ACTIONS = ("undo", "redo")  # the catalog editor's history undoes edits of any field
OWN_ACTIONS = ("cursor_line_start", "cursor_line_end")  # replaced below: to the text line's ends


def _inherited_bindings() -> list[Binding]:
    """TextArea's bindings (and its ancestors'), less the ones LineField leaves to the screen or replaces."""
    return [binding for cls in reversed(TextArea.__mro__) for binding in cls.__dict__.get("BINDINGS", [])
            if isinstance(binding, Binding) and binding.action.split("(")[0] not in SCREEN_ACTIONS + OWN_ACTIONS]


class LineField(TextArea, inherit_bindings=False):
    """A multi-line field for a line's text, `when` hint or translation.

    Long text wraps, so the whole line is in view while it is edited; Enter breaks the line.
    Home and End go to the start and end of the text's line, not of the wrapped row, as in
    a one-line field. Undo and redo (ctrl+z, ctrl+y) are not bound here: the screen's, whose
    history covers every field of the catalog, apply and show in the footer. Focus keeps the
    cursor where it is and selects nothing, so the next key typed never replaces the text.
    """

    BINDINGS = _inherited_bindings() + [
        Binding("home,ctrl+a", "text_line_start", "Line start", show=False),
        Binding("end,ctrl+e", "text_line_end", "Line end", show=False),
        Binding("shift+home", "text_line_start(True)", "Select to line start", show=False),
        Binding("shift+end", "text_line_end(True)", "Select to line end", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None, placeholder: str = "") -> None:
        super().__init__(id=id, classes=f"line-field {classes or ''}".strip(), soft_wrap=True,
                         show_line_numbers=False, tab_behavior="focus", placeholder=placeholder)

    def fill(self, value: str | None) -> None:
        """Show a value (a line just selected) from its start, with its own history cleared."""
        self.load_text(value or "")
        self.move_cursor((0, 0))

    def action_text_line_start(self, select: bool = False) -> None:
        self.move_cursor((self.cursor_location[0], 0), select=select)

    def action_text_line_end(self, select: bool = False) -> None:
        row = self.cursor_location[0]
        self.move_cursor((row, len(self.document[row])), select=select)
