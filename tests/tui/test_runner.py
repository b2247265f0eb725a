"""The test runner: run all or one, pass and fail with expected against got, re-record.

Most tests drive the screen through a stand-in for `dialogue.testing` that keeps its contract
(the `stand_in` fixture) and records each call; the last runs the real one on a tests file.
"""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import DataTable, Static

from .conftest import BLACKSMITH, SIZE, blacksmith_app, settle

pytestmark = pytest.mark.tui


async def open_runner(pilot):
    await pilot.press("f3")
    await pilot.pause()
    return pilot.app.screen


async def run_all(pilot, screen) -> tuple[str, str]:
    """Run every test (ctrl+r) and wait; the status line and the coverage box, as text."""
    await pilot.press("ctrl+r")
    await settle(pilot)
    return str(screen.query_one("#tests-status").render()), str(screen.query_one("#coverage", Static).render())


def test_run_all_shows_pass_fail_expected_against_got_and_coverage(tmp_path, stand_in):
    async def run():
        app = blacksmith_app(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_runner(pilot)
            table = screen.query_one("#cases", DataTable)
            assert [k.value for k in table.rows] == ["greets", "buys a shield"]
            status, coverage = await run_all(pilot, screen)
            assert str(table.get_cell("greets", "result")) == "pass"
            assert str(table.get_cell("buys a shield", "result")) == "FAIL"
            assert "1 passed" in status and "1 failed" in status
            assert "responses 2/17" in coverage
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


def test_the_real_runner_shows_pass_known_miss_and_failure(tmp_path):
    (tmp_path / "blacksmith.tests.toml").write_text(
        f'policy = "{BLACKSMITH}"\n'
        '[[case]]\nname = "greets"\n[[case.turn]]\nuser = "hello"\nreply = "GREETING"\n\n'
        '[[case]]\nname = "says goodbye"\nxfail = "the model greets back"\n'
        '[[case.turn]]\nuser = "bye"\nreply = "GOODBYE"\n\n'
        '[[case]]\nname = "buys a dagger"\n[[case.turn]]\nuser = "a dagger?"\n'
        'reply = "OFFER(item=dagger, price=15)"\n')

    async def run():
        app = blacksmith_app(tmp_path, answers=["GREETING", "GREETING", "TOO_POOR(item=sword, price=50)"])
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_runner(pilot)
            table = screen.query_one("#cases", DataTable)
            status, coverage = await run_all(pilot, screen)
            assert [str(table.get_cell(name, "result")) for name in ("greets", "says goodbye", "buys a dagger")] \
                == ["pass", "xfail", "FAIL"]
            assert "1 passed" in status and "1 failed" in status and "1 known misses" in status
            assert "responses 2/18" in coverage
            table.focus()
            await pilot.press("down")
            await pilot.pause()
            assert "known miss of the model: the model greets back" in str(screen.query_one("#result").render())
            await pilot.press("down")
            await pilot.pause()
            shown = str(screen.query_one("#result", Static).render())
            assert "expected OFFER(item=dagger, price=15), got TOO_POOR(item=sword, price=50)" in shown
            assert "reachable: " in shown
    asyncio.run(run())


def test_the_runner_replays_the_cassette_and_runs_live_on_request(tmp_path):
    from dialogue.backends.scripted import ScriptedBackend
    from dialogue.testing import run_tests

    tests = tmp_path / "blacksmith.tests.toml"
    tests.write_text(
        f'policy = "{BLACKSMITH}"\n'
        '[[case]]\nname = "greets"\n[[case.turn]]\nuser = "hello"\nreply = "GREETING"\n\n'
        '[[case]]\nname = "buys a dagger"\n[[case.turn]]\nuser = "a dagger?"\n'
        'reply = "OFFER(item=dagger, price=15)"\n')
    recorded = run_tests([tests], backend=ScriptedBackend(["GREETING", "OFFER(item=dagger, price=15)"]),
                         record=True)
    assert recorded.ok and (tmp_path / "blacksmith.cassette.json").exists()

    async def run():
        app = blacksmith_app(tmp_path, answers=[])  # live, the backend has no answer at all
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_runner(pilot)
            table = screen.query_one("#cases", DataTable)
            assert "replay from blacksmith.cassette.json" in str(screen.query_one("#tests-status").render())
            status, _ = await run_all(pilot, screen)
            assert [str(table.get_cell(name, "result")) for name in ("greets", "buys a dagger")] == ["pass", "pass"]
            assert "2 passed" in status and app.workspace.backend().calls == []  # the cassette answered
            await pilot.press("ctrl+t")
            await pilot.pause()
            assert "live on scripted (prompted)" in str(screen.query_one("#tests-status").render())
            await run_all(pilot, screen)
            assert str(table.get_cell("greets", "result")) == "ERROR"
            assert len(app.workspace.backend().calls) == 2  # each case asked the backend, which had no answer
            await pilot.press("ctrl+t")
            await pilot.pause()
            await run_all(pilot, screen)
            assert str(table.get_cell("greets", "result")) == "pass"
    asyncio.run(run())
