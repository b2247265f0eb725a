"""The catalog editor: filter, edit with live validation, approve, retire, add, save in place."""

from __future__ import annotations

import asyncio
import difflib

import pytest
from textual.widgets import DataTable, Input, Static

from .conftest import SIZE, blacksmith_app

pytestmark = pytest.mark.tui


def editor_app(tmp_path, catalog_copy):
    return blacksmith_app(tmp_path, catalog_path=catalog_copy)


async def open_line(pilot, rid: str):
    await pilot.press("f2")
    await pilot.pause()
    screen = pilot.app.screen
    table = screen.query_one("#lines", DataTable)
    table.move_cursor(row=table.get_row_index(rid))
    await pilot.pause()
    assert screen.current == rid
    return screen


async def type_into(pilot, selector: str, text: str) -> None:
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.value = text
    await pilot.pause()


def test_an_edited_line_is_saved_with_the_files_layout_kept(tmp_path, catalog_copy):
    before = catalog_copy.read_text()

    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "RUMOUR")
            await type_into(pilot, "#field-text", "Wolves in the pass again. Mind yourself.")
            assert "modified" in str(screen.query_one("#catalog-status").render())
            await pilot.press("ctrl+s")
            await pilot.pause()
    asyncio.run(run())
    after = catalog_copy.read_text()
    assert 'text = "Wolves in the pass again. Mind yourself."' in after
    diff = [d for d in difflib.ndiff(before.splitlines(), after.splitlines()) if d[:1] in "+-"]
    # the text, and the German translation marked as made from the text before; nothing else
    assert [d[:8] for d in diff] == ['- text =', '+ text =', '+ source']
    assert after.startswith("# Hilda the blacksmith")


def test_an_error_shows_under_its_field_and_the_row_is_marked(tmp_path, catalog_copy):
    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "OFFER")
            await type_into(pilot, "#field-text", "The {item}? {prize}.")
            error = screen.query_one("#error-text", Static)
            assert error.display and "placeholder {prize} has no slot" in str(error.render())
            assert "did you mean 'price'?" in str(error.render())
            slots_error = screen.query_one("#error-slots", Static)
            assert "slot price is declared but not used" in str(slots_error.render())
            table = screen.query_one("#lines", DataTable)
            assert str(table.get_cell("OFFER", "ok")) == "✗"
            assert "errors" in str(screen.query_one("#catalog-status").render())
            await type_into(pilot, "#field-text", "The {item}? {price}. My own work. Want it?")
            assert not screen.query_one("#error-text", Static).display
            assert str(table.get_cell("OFFER", "ok")) == "✓"
    asyncio.run(run())


def test_the_preview_renders_every_locale_with_sample_values(tmp_path, catalog_copy):
    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "OFFER")
            assert screen.query_one("#samples", Input).value == "item=sword price=0"
            await type_into(pilot, "#samples", "item=shield price=30")
            preview = str(screen.query_one("#preview", Static).render())
            assert "en: The shield? 30 Gold. My own work. Want it?" in preview
            assert "de: Für den Schild will ich 30 Gold." in preview
            await type_into(pilot, "#locale-de", "Den {item} für {price}?")
            assert "de: Den den Schild für 30 Gold?" in str(screen.query_one("#preview", Static).render())
    asyncio.run(run())


def test_the_filter_narrows_the_table(tmp_path, catalog_copy):
    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "GREETING")
            table = screen.query_one("#lines", DataTable)
            total = table.row_count
            await type_into(pilot, "#filter", "tag:trade")
            assert 0 < table.row_count < total
            assert all("trade" in str(table.get_cell(key, "tags")) for key in table.rows)
            await type_into(pilot, "#filter", "haggle")
            assert set(k.value for k in table.rows) == {"NO_HAGGLE", "DISCOUNT"}
    asyncio.run(run())


def test_approve_retire_and_add_are_saved(tmp_path, catalog_copy):
    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "RUMOUR")
            await pilot.press("ctrl+r")  # retire
            await pilot.pause()
            assert screen.response("RUMOUR")["status"] == "retired"
            await open_line(pilot, "GREETING")
            await pilot.press("ctrl+n")
            await pilot.pause()
            await pilot.press(*"WEATHER", "enter")
            await pilot.pause()
            assert screen.current == "WEATHER"
            await type_into(pilot, "#field-text", "Snow by morning.")
            await pilot.press("ctrl+o")  # approve
            await pilot.pause()
            line = screen.response("WEATHER")
            assert line["status"] == "approved" and line["approval"]["by"]
            await pilot.press("ctrl+s")
            await pilot.pause()
    asyncio.run(run())
    text = catalog_copy.read_text()
    assert 'id = "WEATHER"\ntext = "Snow by morning."\n' in text
    rumour = text[text.index('id = "RUMOUR"'):]
    assert 'status = "retired"' in rumour[:rumour.index("[[response]]")]
