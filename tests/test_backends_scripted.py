"""The scripted backend behaves one way everywhere: Python, chat, demo, test and the TUI."""

import subprocess
import sys
import tomllib

import pytest

from dialogue import Engine, ScriptedBackend, load_policy
from dialogue.backends import _BUILTIN, create_backend
from dialogue.backends.base import Constraint, Hole
from dialogue.backends.scripted import FIRST_REACHABLE, first_admitted
from dialogue.errors import BackendError

from .conftest import EXAMPLES, ROOT, SHOP

BLACKSMITH = EXAMPLES["blacksmith"]
# What the shop admits at 10 gold for a message without an order number.
AT_10_GOLD = ("TOO_POOR(item=sword, price=50) | TOO_POOR(item=shield, price=30) | SOLD(item=nails, price=2) | "
              "OFFER(item=nails, price=2) | GREETING")


def dialogue(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "dialogue", *map(str, args)], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


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


def test_chat_demo_test_and_the_tui_all_get_the_first_reachable_reply(tmp_path):
    python = Engine(load_policy(BLACKSMITH), backend=ScriptedBackend()).session("s").say("hello")
    chat = dialogue("chat", BLACKSMITH, "--backend", "scripted", "--trace", stdin="hello\n")
    assert chat.returncode == 0, chat.stderr
    assert f"blacksmith> {python.text}" in chat.stdout
    assert "scripted backend: always the first reachable reply" in chat.stdout
    assert f"model chose (scripted {FIRST_REACHABLE}): 'INSULTED'" in chat.stdout
    assert "ran out" not in chat.stderr + chat.stdout

    demo = dialogue("demo", "--backend", "scripted")
    assert demo.returncode == 0 and "ran out" not in demo.stdout + demo.stderr, demo.stderr
    assert "INSULTED" in demo.stdout and "turns got the reply a person would expect" in demo.stdout

    tests = dialogue("test", BLACKSMITH.with_name("blacksmith.tests.toml"), "--backend", "scripted")
    assert "pass  an insult costs reputation" in tests.stdout, tests.stdout + tests.stderr
    assert "ERROR" not in tests.stdout and "ran out" not in tests.stdout

    from dialogue.tui.workspace import Workspace

    workspace = Workspace(BLACKSMITH, backend="scripted")
    assert workspace.engine().session("s").say("hello").text == python.text
    assert "manual" not in workspace.backend_names()  # it reads the terminal the TUI draws on


def test_every_built_in_backend_is_an_entry_point_too():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["entry-points"]["dialogue.backends"] == _BUILTIN
