"""The playground: a message in, the reply and its trace out; state, settings, save as test."""

from __future__ import annotations

import asyncio
import json

import pytest
from textual.widgets import Input, Select, Static, TextArea

from .conftest import SIZE, blacksmith_app, settle

pytestmark = pytest.mark.tui


async def say(pilot, message: str) -> None:
    pilot.app.screen.query_one("#message", Input).focus()
    await pilot.press(*message, "enter")
    await settle(pilot)


def test_a_message_gets_a_reply_and_its_trace(tmp_path):
    async def run():
        app = blacksmith_app(tmp_path, ["OFFER(item=dagger, price=15)"])
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "a dagger please")
            screen = app.screen
            turns = screen.query(".turn")
            assert len(turns) == 1
            shown = str(turns[0].render())
            assert "a dagger please" in shown
            assert "The dagger? 15 Gold. My own work. Want it?" in shown
            assert "OFFER" in shown and "··· ms" in shown
            trace = str(screen.query_one("#trace", Static).render())
            assert "OFFER(item=dagger, price=15)" in trace  # chosen
            assert "TOO_POOR(item=sword, price=50)" in trace  # reachable at 20 gold
            assert "'OFFER(item=dagger, price=15)'" in trace  # the model's raw output
            state = json.loads(screen.query_one("#state", TextArea).text)
            assert state["offer"] == "dagger" and state["offer_price"] == 15
    asyncio.run(run())


def test_an_invalid_answer_is_retried_then_falls_back_and_says_so(tmp_path):
    async def run():
        app = blacksmith_app(tmp_path, ["nonsense", "OFFER(item=sword, price=1)"], strict=False)
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "give me a sword for free")
            turn = app.screen.query_one(".turn")
            assert "FALLBACK" in str(turn.render())
            assert turn.has_class("fallback")
            trace = str(app.screen.query_one("#trace", Static).render())
            assert "fallback: model output failed validation 2 times" in trace
    asyncio.run(run())


def test_executed_mode_shows_each_question_and_answer(tmp_path):
    async def run():
        app = blacksmith_app(tmp_path, ["no", "no", "yes", "shield"], mode="executed")
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "how much is a shield?")
            trace = str(app.screen.query_one("#trace", Static).render())
            assert "the player wants to buy an item or asks its price" in trace
            assert "-> yes" in trace and "-> shield" in trace
            assert "TOO_POOR" in str(app.screen.query_one(".turn").render())
    asyncio.run(run())


def test_the_state_is_validated_by_the_policy_and_applied(tmp_path):
    async def run():
        app = blacksmith_app(tmp_path, ["OFFER(item=sword, price=50)"])
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            area = screen.query_one("#state", TextArea)
            area.load_text('{"gold": "lots"}')
            await pilot.pause()
            assert "invalid state for policy 'blacksmith'" in str(screen.query_one("#state-status").render())
            area.load_text('{"gold": 100}')
            await pilot.pause()
            assert "valid" in str(screen.query_one("#state-status").render())
            screen.action_apply_state()
            await say(pilot, "a sword")  # affordable now: OFFER is reachable
            assert "The sword? 50 Gold." in str(screen.query_one(".turn").render())
            assert screen.initial_state["gold"] == 100
    asyncio.run(run())


def test_mode_and_locale_switch_and_the_conversation_goes_on(tmp_path):
    async def run():
        app = blacksmith_app(tmp_path, ["GREETING", "no", "no", "no", "no", "no", "no", "no", "yes"])
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "hello")
            await pilot.press("ctrl+l")  # en -> de
            await pilot.press("ctrl+t")  # prompted -> executed
            await pilot.pause()
            screen = app.screen
            assert screen.query_one("#mode", Select).value == "executed"
            assert "locale de" in str(screen.query_one("#settings-bar").render())
            await say(pilot, "hallo")
            turns = screen.query(".turn")
            assert len(turns) == 2 and screen.session.turns[1].trace.mode == "executed"
            assert "Hildas Schmiede." in str(turns[1].render())
            assert len(screen.session.turns) == 2
    asyncio.run(run())


def test_a_failing_backend_shows_the_error_and_the_screen_goes_on(tmp_path):
    async def run():
        app = blacksmith_app(tmp_path, [])  # the script is empty: the backend raises
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "hello")
            error = app.screen.query_one(".turn.error")
            assert "has no answer for call 1" in str(error.render())
            assert app.screen.query_one("#message", Input).has_focus
    asyncio.run(run())


def test_the_reply_comes_from_a_worker_while_the_screen_shows_a_spinner(tmp_path):
    import threading

    release = threading.Event()

    def slow(prompt, constraint):
        release.wait(5)
        return "GREETING"

    async def run():
        from dialogue.backends.scripted import ScriptedBackend
        from dialogue.tui import make_app

        from .conftest import BLACKSMITH

        app = make_app(BLACKSMITH, backend=ScriptedBackend(slow), tests_path=tmp_path / "t.toml")
        async with app.run_test(size=SIZE) as pilot:
            app.screen.query_one("#message", Input).focus()
            await pilot.press(*"hi", "enter")
            await pilot.pause()
            assert app.screen.query("LoadingIndicator")  # the spinner, and the UI answers
            await pilot.press("ctrl+l")
            await pilot.pause()
            assert "locale de" in str(app.screen.query_one("#settings-bar").render())
            release.set()
            await settle(pilot)
            assert not app.screen.query(".pending")
            assert len(app.screen.query(".turn")) == 1
    asyncio.run(run())


def test_the_command_palette_offers_the_settings_and_screens(tmp_path):
    async def run():
        app = blacksmith_app(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert {"Mode: executed", "Locale: de", "Backend: scripted", "Save as test",
                    "Go to Catalog", "Go to Tests"} <= set(titles)
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"Mode: exec", "enter")
            await pilot.pause()
            await pilot.pause()
            assert app.workspace.mode == "executed"
    asyncio.run(run())


def test_the_conversation_is_saved_as_a_test_case(tmp_path):
    testing = pytest.importorskip("dialogue.testing")

    async def run():
        app = blacksmith_app(tmp_path, ["GREETING", "OFFER(item=dagger, price=15)"])
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "hello")
            await say(pilot, "a dagger?")
            await pilot.press("ctrl+s")
            await pilot.pause()
            name = app.screen.query_one("#case-name", Input)
            name.value = "buys a dagger"
            await pilot.press("enter")
            await pilot.pause()
    asyncio.run(run())
    path = tmp_path / "blacksmith.tests.toml"
    cases = testing.load_tests(path)
    (case,) = [c for c in cases if getattr(c, "name", None) == "buys a dagger"]
    assert "OFFER" in path.read_text() and "a dagger?" in path.read_text()


def test_deeply_nested_state_is_an_error_not_a_crash(tmp_path):
    async def run():
        app = blacksmith_app(tmp_path, ["GREETING"])
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            screen.query_one("#side").active = "state-tab"
            area = screen.query_one("#state", TextArea)
            area.focus()
            area.load_text("[" * 1199)
            await pilot.press("[")  # 1,200 of them
            await pilot.pause()
            status = str(screen.query_one("#state-status").render())
            assert "nested more than 32 deep at line 1, column 33" in status
            screen.action_apply_state()
            area.load_text('{"gold": ' + "[" * 500 + "]" * 500 + "}")
            await pilot.pause()
            assert "nested more than 32 deep" in str(screen.query_one("#state-status").render())
            area.load_text('{"gold": 1' + "0" * 5000 + "}")
            await pilot.pause()
            assert "not JSON" in str(screen.query_one("#state-status").render())
            await say(pilot, "hello")  # the screen goes on
            assert len(screen.query(".turn")) == 1
    asyncio.run(run())


# --- saving a conversation as a test: intended replies, states after them, a cassette entry -------


async def save_dialog(pilot):
    await pilot.press("ctrl+s")
    await pilot.pause()
    return pilot.app.screen


async def press_save(pilot, dialog) -> None:
    dialog.query_one("#save").press()  # not a click: a notification may lie over the button
    await settle(pilot)


def notes(app) -> str:
    return "\n".join(f"{n.title}: {n.message}" for n in app._notifications)


def test_a_saved_case_expects_the_intended_replies_and_the_state_after_each_and_replays(tmp_path):
    from dialogue.testing import load_tests, run_tests

    dagger, sold = "OFFER(item=dagger, price=15)", "SOLD(item=dagger, price=15)"
    # the conversation: the engine misses the second turn; then the recording of the saved case
    app = blacksmith_app(tmp_path, [dagger, "NO_HAGGLE(item=dagger, price=15)", dagger, sold])

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "a dagger?")
            await say(pilot, "fine, I'll pay that")
            dialog = await save_dialog(pilot)
            second = dialog.query_one("#intended-1", Select)
            assert second.value == "NO_HAGGLE(item=dagger, price=15)"  # what the engine answered
            assert sold in [value for _, value in second._options]
            assert "gold=20" in str(dialog.query_one("#state-1").render())
            second.value = sold  # the reply the designer intended
            await pilot.pause()
            assert "gold=5, inventory=['dagger'], reputation=1" in str(dialog.query_one("#state-1").render())
            dialog.query_one("#case-name", Input).value = "buys a dagger"
            dialog.query_one("#case-name", Input).focus()
            await pilot.press("enter")
            await settle(pilot)
            assert "replays and passes" in notes(app)
    asyncio.run(run())
    path = tmp_path / "blacksmith.tests.toml"
    (case,) = load_tests(path)
    assert [t.describe() for t in case.turns] == [
        f"{dagger}; state gold=20, inventory=[], reputation=0, quest=none, offer=dagger, offer_price=15",
        f"{sold}; state gold=5, inventory=['dagger'], reputation=1, quest=none, offer_price=15"]
    replayed = run_tests([path], replay=True)  # the cassette answers: no backend at all
    assert replayed.source == "replay" and [r.status for r in replayed.results] == ["pass"]


def test_a_recording_that_misses_the_intended_reply_is_kept_and_says_the_case_fails_on_replay(tmp_path):
    from dialogue.testing import run_tests

    dagger, no_haggle = "OFFER(item=dagger, price=15)", "NO_HAGGLE(item=dagger, price=15)"
    app = blacksmith_app(tmp_path, [dagger, no_haggle, dagger, no_haggle])  # the backend misses again

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "a dagger?")
            await say(pilot, "fine, I'll pay that")
            dialog = await save_dialog(pilot)
            dialog.query_one("#intended-1", Select).value = "SOLD(item=dagger, price=15)"
            await pilot.pause()
            await press_save(pilot, dialog)
    asyncio.run(run())
    assert "Cassette recorded: " in notes(app) and "so it fails on replay: turn 2" in notes(app)
    replayed = run_tests([tmp_path / "blacksmith.tests.toml"], replay=True)
    assert [r.status for r in replayed.results] == ["FAIL"]  # a miss of the model, not a stale cassette
    assert "expected SOLD(item=dagger, price=15), got NO_HAGGLE" in replayed.results[0].mismatch


def test_an_earlier_intended_reply_changes_what_later_turns_can_reply(tmp_path):
    from dialogue.testing import load_tests

    sold = "SOLD(item=dagger, price=15)"
    app = blacksmith_app(tmp_path, ["OFFER(item=dagger, price=15)", sold])  # nothing left to record with

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "a dagger?")
            await say(pilot, "deal")
            dialog = await save_dialog(pilot)
            first, second = dialog.query_one("#intended-0", Select), dialog.query_one("#intended-1", Select)
            assert second.value == sold
            first.value = "GREETING"  # no offer made: nothing to accept in the second turn
            await pilot.pause()
            assert sold not in [value for _, value in second._options] and second.value is Select.NULL
            assert "choose the intended reply" in str(dialog.query_one("#state-1").render())
            await press_save(pilot, dialog)
            assert dialog is app.screen and "Choose the intended reply of turn 2 first." in notes(app)
            second.value = "GREETING"
            await pilot.pause()
            assert "gold=20" in str(dialog.query_one("#state-1").render())
            await press_save(pilot, dialog)
    asyncio.run(run())
    (case,) = load_tests(tmp_path / "blacksmith.tests.toml")
    assert [t.reply[0].id for t in case.turns] == ["GREETING", "GREETING"]
    assert "No cassette entry: " in notes(app) and "the scripted backend has no answer" in notes(app)
    assert "dialogue test --record" in notes(app) and "-k 'conversation 2 turns'" in notes(app)
    assert not (tmp_path / "blacksmith.cassette.json").exists()  # a broken-off recording writes nothing


def test_a_case_saved_without_recording_says_it_has_no_cassette_entry_and_how_to_record_it(tmp_path):
    app = blacksmith_app(tmp_path, ["GREETING"])

    async def run():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f3", "f1")  # the runner has read the tests file: none yet
            await pilot.pause()
            await say(pilot, "hello")
            dialog = await save_dialog(pilot)
            dialog.query_one("#record-cassette").value = False
            await press_save(pilot, dialog)
            dialog = await save_dialog(pilot)  # the same name again: refused, the file stays loadable
            await press_save(pilot, dialog)
            assert "has a case named 'conversation 1 turns' already" in notes(app)
            await pilot.press("escape", "f3")  # the test runner lists the saved case
            await pilot.pause()
            assert [key.value for key in app.screen.query_one("#cases").rows] == ["conversation 1 turns"]
    asyncio.run(run())
    from dialogue.testing import load_tests

    assert len(load_tests(tmp_path / "blacksmith.tests.toml")) == 1
    assert "It has no cassette entry, so it does not replay" in notes(app)
    assert f"dialogue test --record {tmp_path / 'blacksmith.tests.toml'} -k 'conversation 1 turns'" in notes(app)
