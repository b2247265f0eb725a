"""The scripted backend behaves one way everywhere: Python, chat, demo, test and the TUI."""

import pytest

from dialogue import Engine, ScriptedBackend, load_policy
from dialogue.backends import create_backend
from dialogue.backends.base import Constraint, Hole
from dialogue.backends.scripted import FIRST_REACHABLE, first_admitted
from dialogue.errors import BackendError

from .conftest import EXAMPLES, SHOP

BLACKSMITH = EXAMPLES["blacksmith"]
# What the shop admits at 10 gold for a message without an order number.
AT_10_GOLD = ("TOO_POOR(item=sword, price=50) | TOO_POOR(item=shield, price=30) | SOLD(item=nails, price=2) | "
              "OFFER(item=nails, price=2) | GREETING")


def test_without_a_script_every_call_answers_the_first_reachable_reply():
    backend = ScriptedBackend()
    turn = Engine(load_policy(BLACKSMITH), backend=backend).session("s").say("hello")
    first = backend.calls[0][1].alternatives[0][0]
    assert turn.reply.id == first.split("(")[0] == "INSULTED" and not turn.trace.fallback
    assert (turn.trace.backend, turn.trace.model) == ("scripted", FIRST_REACHABLE)
    assert create_backend("scripted").model == FIRST_REACHABLE  # what --backend scripted builds


def test_the_first_reachable_reply_fills_an_extracted_value_with_one_its_pattern_admits():
    turn = Engine(load_policy(SHOP), backend=ScriptedBackend(), mode="executed").session("s").say("hi")
    assert (turn.reply.id, turn.reply.slots) == ("ORDER_NOTED", {"order": "AA-0000"})  # "yes", then a value
    assert turn.trace.raw == ["yes", "AA-0000"]
    assert first_admitted(Constraint(((Hole("[0-9]{5}"),), ("NO",)))) == "00000"
    assert first_admitted(Constraint((("X(v=", Hole("ab|cd"), ")"),))) == "X(v=ab)"


def test_an_unreachable_scripted_answer_is_named_with_what_was_reachable():
    backend = ScriptedBackend(["OFFER(item=sword, price=50)", "GREETING"])
    session = Engine(load_policy(SHOP), backend=backend).session("s", state={"gold": 10})
    with pytest.raises(BackendError) as info:
        session.say("a sword")
    message = str(info.value)
    assert "scripted answer 'OFFER(item=sword, price=50)' (call 1) is not reachable here" in message
    assert message.endswith(f"reachable: {AT_10_GOLD} (ScriptedBackend(..., strict=False) passes it "
                            "to validation and the fallback instead)")
    # The wrong answer took no retry: the next answer of the script serves the next turn.
    assert backend.remaining == 1 and len(backend.calls) == 1
    assert session.say("hello").reply.id == "GREETING" and session.turns[0].message == "hello"


def test_running_out_says_how_long_the_script_was_and_what_was_reachable():
    session = Engine(load_policy(SHOP), backend=ScriptedBackend(["GREETING"])).session("s")
    session.say("hi")
    with pytest.raises(BackendError) as info:
        session.say("my order is AB-1234")
    assert str(info.value) == ("the scripted backend has no answer for call 2: its script had 1; admitted "
                               "here: ORDER_NOTED(order=<AB-1234>) | " + AT_10_GOLD)


def test_a_long_reachable_list_is_cut_with_a_count():
    options = [f"LINE_{n}" for n in range(30)]
    with pytest.raises(BackendError, match=r"LINE_11 \| \.\.\. and 18 more"):
        ScriptedBackend(["NOPE"]).generate(None, Constraint.choice(options))


def test_strict_false_hands_the_answer_to_validation_and_the_fallback():
    backend = ScriptedBackend(["no such line", "OFFER(item=sword, price=50)"], strict=False)
    turn = Engine(load_policy(SHOP), backend=backend).session("s").say("a sword")
    assert turn.trace.fallback and turn.trace.raw == ["no such line", "OFFER(item=sword, price=50)"]
