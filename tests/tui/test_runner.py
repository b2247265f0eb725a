"""The test runner: run all or one, pass and fail with expected against got, re-record.

`dialogue.testing` is built beside this screen; until it lands these tests drive the screen
through a stand-in that keeps its documented contract (the `stand_in` fixture).
"""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import DataTable, Static

from .conftest import SIZE, blacksmith_app, settle

pytestmark = pytest.mark.tui


async def open_runner(pilot):
    await pilot.press("f3")
    await pilot.pause()
    return pilot.app.screen


def test_run_all_shows_pass_fail_expected_against_got_and_coverage(tmp_path, stand_in):
    async def run():
        app = blacksmith_app(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_runner(pilot)
            table = screen.query_one("#cases", DataTable)
            assert [k.value for k in table.rows] == ["greets", "buys a shield"]
            await pilot.press("ctrl+r")
            await settle(pilot)
            assert str(table.get_cell("greets", "result")) == "pass"
            assert str(table.get_cell("buys a shield", "result")) == "FAIL"
            status = str(screen.query_one("#tests-status").render())
            assert "1 passed" in status and "1 failed" in status
            assert "responses 2/17" in str(screen.query_one("#coverage", Static).render())
            await pilot.press("down")
            await pilot.pause()
            shown = str(screen.query_one("#result", Static).render())
            assert "expected OFFER(item=shield, price=30)" in shown
            assert "got      TOO_POOR(item=shield, price=30)" in shown
    asyncio.run(run())
    assert stand_in[0]["k"] is None and stand_in[0]["record"] is False
    assert stand_in[0]["backend"].name == "scripted"


def test_run_one_and_re_record_after_confirming(tmp_path, stand_in):
    async def run():
        app = blacksmith_app(tmp_path, mode="executed")
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_runner(pilot)
            screen.query_one("#cases", DataTable).focus()
            await pilot.press("down", "enter")  # Enter runs the selected test
            await settle(pilot)
            assert stand_in[-1]["k"] == "buys a shield" and stand_in[-1]["mode"] == "executed"
            await pilot.press("ctrl+e")
            await pilot.pause()
            await pilot.press("escape")  # not confirmed: nothing runs
            await settle(pilot)
            assert len(stand_in) == 1
            await pilot.press("ctrl+e")
            await pilot.pause()
            await pilot.press("y")
            await settle(pilot)
            assert stand_in[-1]["record"] is True and stand_in[-1]["k"] == "buys a shield"
    asyncio.run(run())
