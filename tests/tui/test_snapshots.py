"""Snapshots of each screen at 80x24 on the scripted backend, timings masked.

Update after a deliberate change with `pytest tests/tui --snapshot-update`, and look at
the SVGs under tests/tui/__snapshots__ before committing them.
"""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, TextArea

from .conftest import SIZE, blacksmith_app, settle

pytestmark = pytest.mark.tui


def test_playground(snap_compare, tmp_path):
    app = blacksmith_app(tmp_path, ["OFFER(item=dagger, price=15)"])

    async def conversation(pilot):
        pilot.app.screen.query_one("#message", Input).focus()
        await pilot.press(*"a dagger please", "enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=conversation)


def test_catalog_editor_with_an_error_under_its_field(snap_compare, tmp_path, catalog_copy):
    app = blacksmith_app(tmp_path, catalog_path=catalog_copy)

    async def edit(pilot):
        await pilot.press("f2")
        await pilot.pause()
        screen = pilot.app.screen
        table = screen.query_one("#lines", DataTable)
        table.move_cursor(row=table.get_row_index("OFFER"))
        await pilot.pause()
        field = screen.query_one("#field-text", TextArea)
        field.focus()
        field.text = "The {item}? {prize}."
        field.move_cursor((0, 0))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=edit)


def test_test_runner_after_a_run(snap_compare, tmp_path, stand_in):
    app = blacksmith_app(tmp_path)

    async def run_all(pilot):
        await pilot.press("f3")
        await pilot.pause()
        await pilot.press("ctrl+r")
        await settle(pilot)
        await pilot.press("down")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_all)


def test_saving_a_conversation_as_a_test_case(snap_compare, tmp_path):
    app = blacksmith_app(tmp_path, ["OFFER(item=dagger, price=15)", "NO_HAGGLE(item=dagger, price=15)"])

    async def save(pilot):
        for message in ("a dagger?", "fine, I'll pay that"):
            pilot.app.screen.query_one("#message", Input).focus()
            await pilot.press(*message, "enter")
            await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        pilot.app.screen.query_one("#intended-1").value = "SOLD(item=dagger, price=15)"
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=save)
