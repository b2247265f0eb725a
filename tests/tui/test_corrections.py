"""Correcting a playground reply (ctrl+o): the picker, the examples file, the store."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Input, OptionList

from dialogue.backends.scripted import ScriptedBackend
from dialogue.engine import Engine
from dialogue.store import Store
from dialogue.understanding.examples import load_examples

from ..conftest import copied_policy
from .conftest import SIZE, settle

pytestmark = pytest.mark.tui


@pytest.fixture
def policy_copy(tmp_path):
    """policies/blacksmith.py and its catalog under tmp_path, so the examples file is written there."""
    return copied_policy(tmp_path)


def app_on(policy, answers):
    from dialogue.tui import make_app

    app = make_app(policy, backend=ScriptedBackend(list(answers)), tests_path=policy.with_name("t.tests.toml"))
    app.mask_latency = True
    return app


async def say(pilot, message):
    pilot.app.screen.query_one("#message", Input).focus()
    await pilot.press(*message, "enter")
    await settle(pilot)


async def pick(pilot, reply_id):
    """Open the picker on the selected reply and choose `reply_id`; returns the ids offered, in order."""
    await pilot.press("ctrl+o")
    await pilot.pause()
    options = pilot.app.screen.query_one("#correction-ids", OptionList)
    offered = [options.get_option_at_index(i).id for i in range(options.option_count)]
    options.highlighted = offered.index(reply_id)
    await pilot.press("enter")
    await settle(pilot)
    return offered


def notes(app):
    return [n.message for n in app._notifications]


def test_a_reply_is_corrected_into_the_examples_file(policy_copy, monkeypatch):
    monkeypatch.setenv("USER", "j.doe")

    async def run():
        app = app_on(policy_copy, ["GREETING", "GREETING"])
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "hello")
            await say(pilot, "do u fix helmets")  # the latest reply is the selected one
            turn = app.screen.session.turns[1]
            offered = await pick(pilot, "REPAIRED")
            reachable = [line.split("(")[0] for line in turn.trace.reachable]
            assert offered[:len(set(reachable))] == list(dict.fromkeys(reachable))  # reachable first
            assert "FALLBACK" in offered and len(offered) > len(set(reachable))
            (note,) = [n for n in notes(app) if "REPAIRED" in n]
            assert "GREETING -> REPAIRED for 'do u fix helmets'" in note and "blacksmith.examples.toml" in note
            return turn
    turn = asyncio.run(run())
    (example,) = load_examples(policy_copy.with_name("blacksmith.examples.toml"))
    assert (example.message, example.reply, example.node, example.source) == \
        ("do u fix helmets", "REPAIRED", "main", "correction")
    assert (example.turn, example.by, example.session) == (1, "j.doe", None)  # no store: no session to name
    assert example.state["gold"] == 20 and example.state == {
        k: v for k, v in turn.state.model_dump(mode="json").items() if v is not None}  # GREETING changes nothing


def test_an_earlier_reply_can_be_selected_and_corrected(policy_copy):
    async def run():
        app = app_on(policy_copy, ["GREETING", "RUMOUR"])
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "got any work for me?")
            await say(pilot, "heard any rumours?")
            app.screen.query(".turn")[0].focus()
            await pilot.pause()
            await pick(pilot, "QUEST_GIVEN")
    asyncio.run(run())
    (example,) = load_examples(policy_copy.with_name("blacksmith.examples.toml"))
    assert (example.message, example.reply, example.turn) == ("got any work for me?", "QUEST_GIVEN", 0)


def test_escape_records_nothing_and_nothing_to_correct_says_so(policy_copy):
    async def run():
        app = app_on(policy_copy, ["GREETING"])
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+o")
            await pilot.pause()
            assert any("Nothing to correct yet" in n for n in notes(app))
            await say(pilot, "hello")
            await pilot.press("ctrl+o")
            await pilot.pause()
            assert app.screen.query("#correction-ids")
            await pilot.press("escape")
            await pilot.pause()
            assert not app.screen.query("#correction-ids")
    asyncio.run(run())
    assert not policy_copy.with_name("blacksmith.examples.toml").exists()


def test_with_a_store_the_correction_is_recorded_there_too(policy_copy, tmp_path, monkeypatch):
    db = tmp_path / "support.db"

    async def run():
        app = app_on(policy_copy, ["GREETING"])
        ws = app.workspace
        monkeypatch.setattr(ws, "engine", lambda: Engine(ws.policy, backend=ws.backend(), store=db))
        async with app.run_test(size=SIZE) as pilot:
            await say(pilot, "can you fix my sword?")
            await pick(pilot, "REPAIRED")
            assert any(str(db) in n and "REPAIRED" in n for n in notes(app))
            app.screen.session.engine.close()
    asyncio.run(run())
    with Store(db) as store:
        (correction,) = store.corrections("blacksmith")
    assert (correction.session_id, correction.turn, correction.chosen, correction.reply_id) == \
        ("tui-1", 0, "GREETING", "REPAIRED")
    (example,) = load_examples(policy_copy.with_name("blacksmith.examples.toml"))
    assert (example.session, example.turn, example.reply) == ("tui-1", 0, "REPAIRED")
