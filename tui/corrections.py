"""Correcting a playground reply: pick the line it should have been; it goes to the examples file
(and to the session store when the engine has one), so the matcher learns it on the next load."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from dialogue.catalog import Catalog
from dialogue.engine import Engine, Turn
from dialogue.understanding.examples import append_examples, examples_path
from dialogue.understanding.learning import correction_example


def reachable_ids(turn: Turn) -> list[str]:
    """The ids of the lines the turn could have said, in the trace's order.

    `turn.trace.reachable` holds display strings: `OFFER(item=sword, price=50)`, or
    `A + B(x=1)` for a reply of several lines.
    """
    ids: list[str] = []
    for shown in turn.trace.reachable:
        for line in shown.split(" + "):
            id = line.split("(", 1)[0].strip()
            if id and id not in ids:
                ids.append(id)
    return ids


def choices(turn: Turn, catalog: Catalog) -> list[tuple[str, bool]]:
    """(id, reachable) for every line the turn may be corrected to: reachable ones first."""
    reachable = [id for id in reachable_ids(turn) if id in catalog]
    rest = [r.id for r in catalog if r.id not in reachable and r.status != "retired"]
    return [(id, True) for id in reachable] + [(id, False) for id in rest]


def record_correction(engine: Engine, policy_file: Path, turn: Turn, reply_id: str, state_before: dict,
                      *, by: str | None = None) -> str:
    """Write the correction (store first, when there is one; then the examples file); say what was written."""
    by = by or os.environ.get("USER") or "tui"
    written = []
    store = engine.store
    if store is not None:
        store.correct(turn.session_id, turn.index, reply_id, by=by)
        written.append(f"recorded in {store.path}")
    path = examples_path(policy_file)
    at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    example = correction_example(turn, reply_id, state_before, by=by, at=at,
                                 session=turn.session_id if store is not None else None)
    added = append_examples(path, [example], policy_name=engine.policy.name)
    written.append(f"added to {path}" if added else f"already in {path}")
    return f"{turn.reply.id} -> {reply_id} for {turn.message!r}: {'; '.join(written)}"


class CorrectionScreen(ModalScreen[str | None]):
    """Pick the catalog line the selected reply should have been; Enter records it, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, turn: Turn, catalog: Catalog) -> None:
        super().__init__()
        self.turn, self.catalog = turn, catalog

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text.assemble("The reply to ", (repr(self.turn.message), "bold"), " should have been:"))
            yield OptionList(*self._options(), id="correction-ids")

    def _options(self) -> list[Option]:
        options = []
        for id, reachable in choices(self.turn, self.catalog):
            label = Text(id, style="bold" if reachable else "")
            label.append("  " + ("chosen" if id == self.turn.reply.id else "reachable" if reachable else ""),
                         style="dim")
            text = self.catalog[id].text.replace("\n", " ")
            label.append(f"  {text if len(text) <= 48 else text[:47] + '…'}", style="dim italic")
            options.append(Option(label, id=id))
        return options

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected, "#correction-ids")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
