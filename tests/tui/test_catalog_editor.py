"""The catalog editor: filter, edit with live validation, approve, retire, add, save in place."""

from __future__ import annotations

import asyncio
import difflib

import pytest
from textual.geometry import Region
from textual.widgets import DataTable, Input, Label, Static, TextArea

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
    """Put `text` in a field: a line's multi-line field, or a one-line input (filter, samples)."""
    field = pilot.app.screen.query_one(selector)
    field.focus()
    if isinstance(field, TextArea):
        field.text = text
    else:
        field.value = text
    await pilot.pause()


def shown(widget) -> str:
    """The words a widget shows on the screen now, its border left out."""
    rows = (strip.text.strip(" ▊▎▔▁") for strip in widget.render_lines(Region(0, 0, *widget.outer_size)))
    return " ".join(" ".join(rows).split())


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


# --- nothing typed, saved or quit loses an approved line ----------------------------------------


RUMOUR = "They say wolves took the old mine. Not a lump of ore has come down the mountain since."


def status_of(screen) -> str:
    return str(screen.query_one("#catalog-status").render())


def test_tab_into_a_field_keeps_its_text_and_the_next_key_edits_it(tmp_path, catalog_copy):
    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "RUMOUR")
            screen.query_one("#lines", DataTable).focus()
            field = screen.query_one("#field-text", TextArea)
            for _ in range(3):  # from the table, past the form's scroll area
                if not field.has_focus:
                    await pilot.press("tab")
            assert field.has_focus and field.selection.is_empty
            await pilot.press("x")
            await pilot.pause()
            assert screen.response("RUMOUR")["text"] == "x" + RUMOUR
    asyncio.run(run())


def test_ctrl_z_undoes_an_edit_and_ctrl_y_redoes_it(tmp_path, catalog_copy):
    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "RUMOUR")
            field = screen.query_one("#field-text", TextArea)
            field.focus()
            await pilot.press("end", *" Mind")  # five keys, one step to undo
            await pilot.pause()
            assert screen.response("RUMOUR")["text"] == RUMOUR + " Mind"
            await pilot.press("ctrl+o")  # approve: a step of its own
            await pilot.pause()
            assert screen.response("RUMOUR")["approval"]
            await pilot.press("ctrl+z")
            await pilot.pause()
            assert not screen.response("RUMOUR")["approval"]
            assert screen.response("RUMOUR")["text"] == RUMOUR + " Mind"
            await pilot.press("ctrl+z")
            await pilot.pause()
            assert screen.response("RUMOUR")["text"] == RUMOUR and field.text == RUMOUR
            assert "modified" not in status_of(screen)
            await pilot.press("ctrl+y")
            await pilot.pause()
            assert field.text == RUMOUR + " Mind" and "modified" in status_of(screen)
    asyncio.run(run())
    assert catalog_copy.read_text().count(RUMOUR) == 1  # nothing was saved


def test_an_approved_line_with_an_empty_text_is_refused_and_not_saved(tmp_path, catalog_copy):
    before = catalog_copy.read_text()

    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "RUMOUR")
            await type_into(pilot, "#field-text", "")
            error = screen.query_one("#error-text", Static)
            assert error.display and "RUMOUR is approved but its text is empty" in str(error.render())
            assert "1 error" in status_of(screen)
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert "modified" in status_of(screen)
            assert any("Not saved" in (n.title or "") for n in app._notifications)
    asyncio.run(run())
    assert catalog_copy.read_text() == before


def test_a_new_line_cannot_be_approved_before_it_has_a_text(tmp_path, catalog_copy):
    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "GREETING")
            await pilot.press("ctrl+n")
            await pilot.pause()
            await pilot.press(*"WEATHER", "enter")
            await pilot.pause()
            await pilot.press("ctrl+o")
            await pilot.pause()
            assert screen.response("WEATHER")["status"] == "draft"
            assert any("WEATHER is approved but its text is empty" in n.message for n in app._notifications)
    asyncio.run(run())


def test_a_catalog_that_would_not_load_is_not_saved(tmp_path, catalog_copy):
    before = catalog_copy.read_text()

    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "OFFER")
            await type_into(pilot, "#field-text", "The {item}? {prize}.")
            await pilot.press("ctrl+s")
            await pilot.pause()
            (note,) = [n for n in app._notifications if n.title == "Not saved"]
            assert "3 errors" in note.message and "placeholder {prize} has no slot" in note.message
            await type_into(pilot, "#field-text", "The {item}? {price}, no less.")
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert "modified" not in status_of(screen)
    asyncio.run(run())
    after = catalog_copy.read_text()
    assert after != before and 'text = "The {item}? {price}, no less."' in after


def test_quitting_with_unsaved_edits_asks_first(tmp_path, catalog_copy):
    from dialogue.tui.runner import ConfirmScreen

    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            await open_line(pilot, "RUMOUR")
            await type_into(pilot, "#field-text", "Wolves.")
            await pilot.press("f1")  # the question comes on every screen
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen) and "unsaved" in app.screen.question
            await pilot.press("enter")  # a reflexive Enter: No has the focus
            await pilot.pause()
            assert app.is_running and app.screen.name == "playground"
            await pilot.press("ctrl+q")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert app.is_running and app.screen.name == "playground"
            await pilot.press("ctrl+q")
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert not app.is_running
    asyncio.run(run())


def test_quitting_without_edits_does_not_ask(tmp_path, catalog_copy):
    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            await open_line(pilot, "RUMOUR")
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert not app.is_running
    asyncio.run(run())


def test_a_file_changed_on_disk_is_not_overwritten_without_asking(tmp_path, catalog_copy):
    from dialogue.tui.runner import ConfirmScreen

    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "RUMOUR")
            await type_into(pilot, "#field-text", "Wolves.")
            theirs = catalog_copy.read_text().replace("Hilda's forge.", "Hilda's smithy.")
            catalog_copy.write_text(theirs)  # someone else saves meanwhile
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen) and "changed on disk" in app.screen.question
            await pilot.press("escape")
            await pilot.pause()
            assert catalog_copy.read_text() == theirs and "modified" in status_of(screen)
            await pilot.press("ctrl+s")
            await pilot.pause()
            await pilot.press("y")  # overwrite theirs
            await pilot.pause()
            assert 'text = "Wolves."' in catalog_copy.read_text()
            await type_into(pilot, "#field-text", "Wolves!")
            await pilot.press("ctrl+s")  # the file is as saved: no question
            await pilot.pause()
            assert screen is app.screen and 'text = "Wolves!"' in catalog_copy.read_text()
    asyncio.run(run())


def test_a_save_replaces_the_file_whole_and_a_failed_one_leaves_it_as_it_was(tmp_path, catalog_copy, monkeypatch):
    import os

    before = catalog_copy.read_text()

    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            await open_line(pilot, "RUMOUR")
            await type_into(pilot, "#field-text", "Wolves.")
            with open(catalog_copy) as reader:  # a game reading the catalog while it is saved
                await pilot.press("ctrl+s")
                await pilot.pause()
                assert reader.read() == before  # the old file, whole: not truncated and rewritten
            assert 'text = "Wolves."' in catalog_copy.read_text()

            def full(*args):
                raise OSError(28, "No space left on device")

            monkeypatch.setattr(os, "replace", full)
            await type_into(pilot, "#field-text", "Wolves!")
            await pilot.press("ctrl+s")
            await pilot.pause()
            (note,) = [n for n in app._notifications if n.title == "Not saved"]
            assert "No space left on device" in note.message
    asyncio.run(run())
    assert 'text = "Wolves."' in catalog_copy.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blacksmith.toml"]  # no temporary file left


def test_deeply_nested_slots_are_an_error_under_the_field_not_a_crash(tmp_path, catalog_copy):
    from textual.widgets import TextArea

    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "OFFER")
            area = screen.query_one("#field-slots", TextArea)
            area.focus()
            area.load_text("[" * 1199)
            await pilot.press("[")
            await pilot.pause()
            assert "nested more than" in str(screen.query_one("#problems", Static).render())
            nested = '{"item": {"type": "choice", "options": ' + "[" * 900 + "]" * 900 + "}}"
            area.load_text(nested)
            await pilot.pause()
            assert "nested more than" in str(screen.query_one("#problems", Static).render())
            assert app.is_running
    asyncio.run(run())


# --- long lines, and lines without slots ----------------------------------------------------------


def test_a_long_line_is_shown_whole_in_its_field_and_takes_a_line_break(tmp_path, catalog_copy):
    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "RUMOUR")
            field = screen.query_one("#field-text")
            assert shown(field) == RUMOUR  # wrapped, not scrolled out of view
            assert shown(screen.query_one("#locale-de")) == screen.response("RUMOUR")["translations"]["de"]["text"]
            field.focus()
            await pilot.press("end", "enter", *"Mind.")
            await pilot.pause()
            assert screen.response("RUMOUR")["text"] == RUMOUR + "\nMind."
            await pilot.press("ctrl+z")  # the screen's history, not the field's own
            await pilot.pause()
            assert screen.response("RUMOUR")["text"] == RUMOUR and field.text == RUMOUR
            await pilot.press("ctrl+y")
            await pilot.pause()
            assert field.text == RUMOUR + "\nMind."
            await pilot.press("ctrl+s")
            await pilot.pause()
    asyncio.run(run())
    assert f'text = "{RUMOUR}\\nMind."' in catalog_copy.read_text()


def test_a_line_without_slots_shows_no_slot_values(tmp_path, catalog_copy):
    async def run():
        app = editor_app(tmp_path, catalog_copy)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_line(pilot, "OFFER")
            samples = screen.query_one("#samples", Input)
            assert samples.display and samples.value == "item=sword price=0"
            table = screen.query_one("#lines", DataTable)
            table.move_cursor(row=table.get_row_index("GREETING"))
            await pilot.pause()
            assert screen.current == "GREETING"
            assert not samples.display and samples.value == "" and "item=" not in samples.placeholder
            assert str(screen.query_one("#samples-label", Label).render()) == "preview (no slots)"
            assert str(screen.query_one("#preview", Static).render()).startswith("en: Hilda's forge.")
            table.move_cursor(row=table.get_row_index("OFFER"))
            await pilot.pause()
            assert samples.display and samples.value == "item=sword price=0"
    asyncio.run(run())
