"""Saving a playground conversation as a conversation test case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from dialogue.engine import Turn
from dialogue.errors import DialogueError


def save_case(path: Path | None, name: str, state: dict[str, Any], turns: list[Turn]) -> str:
    """Append the conversation as a test case to `path` (created when new); returns the TOML."""
    if path is None:
        raise DialogueError("no tests file: open a policy first")
    try:
        from dialogue.testing import case_to_toml
    except ImportError as exc:
        raise DialogueError(f"conversation tests are not available: {exc}") from None
    text = case_to_toml(name, state, turns)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    separator = "\n" if existing.strip() else ""
    path.write_text(existing + separator + text.lstrip("\n"), encoding="utf-8")
    return text


class CaseNameScreen(ModalScreen[str | None]):
    """Ask for the new test case's name; Enter saves, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Save the conversation as a test case named:")
            yield Input(self.default, id="case-name")

    @on(Input.Submitted, "#case-name")
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
