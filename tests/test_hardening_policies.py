"""Policy code runs within bounds of time and size; what it raises is wrapped, a real Ctrl-C is not."""

import os
import signal
import subprocess
import sys
import time

import pytest
from pydantic import BaseModel

from dialogue import Engine, Policy, ScriptedBackend, explore, reply
from dialogue.errors import EffectError, ExplorationError

from .bounded import finishes
from .conftest import FIXTURES, ROOT

engine_module = sys.modules["dialogue.engine"]
explore_module = sys.modules["dialogue.explore"]

CATALOG = FIXTURES / "policies" / "shop.toml"


class Wallet(BaseModel):
    gold: int = 10


def make(decide, name="looping"):
    policy = Policy(name, catalog=str(CATALOG), state=Wallet)
    policy.decide(decide)
    return policy


def loops(said, state):
    n = 0
    while True:
        n += 1


def loops_on_yes(said, state):
    if said("the customer greets"):
        while True:
            pass
    return reply("GREETING")


def asks(said, state):
    if said("the customer greets"):
        return reply("GREETING")
    return reply("FALLBACK")


def test_an_endless_decision_function_is_an_exploration_error_naming_policy_node_and_bound():
    with pytest.raises(ExplorationError) as info:
        finishes(lambda: explore(make(loops), max_seconds=0.5))
    message = str(info.value)
    assert "'looping'" in message and "node 'main'" in message and "0.5 s" in message
    assert "max_seconds" in info.value.hint


def test_a_loop_that_swallows_the_first_stop_is_stopped_again():
    def stubborn(said, state):
        try:
            while True:
                pass
        except BaseException:
            pass
        while True:
            pass

    with pytest.raises(ExplorationError, match="bound of 0.5 s"):
        finishes(lambda: explore(make(stubborn), max_seconds=0.5))


def test_a_long_sleep_is_refused_at_once():
    def sleeps(said, state):
        time.sleep(10)
        return reply("GREETING")

    started = time.monotonic()
    with pytest.raises(ExplorationError, match="ran past its bound of 5 s"):
        finishes(lambda: explore(make(sleeps)))
    assert time.monotonic() - started < 5  # refused when it asked, not after the bound ran out


def test_a_short_sleep_is_allowed():
    def naps(said, state):
        time.sleep(0.01)
        return reply("GREETING")

    assert [r.id for r in explore(make(naps)).reachable] == ["GREETING"]


def test_the_bound_of_one_exploration_is_over_once_it_returns():
    def quick(said, state):
        return reply("GREETING")

    explore(make(quick), max_seconds=0.2)
    time.sleep(0.5)  # an OverTime left behind would be raised here
    assert explore(make(quick), max_seconds=0.2).reachable


def test_a_pick_over_a_hundred_thousand_options_is_refused_at_once():
    options = [f"item{i}" for i in range(100_000)]

    def picks(said, state):
        said.pick("which item?", options)
        return reply("GREETING")

    with pytest.raises(ExplorationError, match="100000 options, more than 10000"):
        finishes(lambda: explore(make(picks)), seconds=10)


def test_the_steps_of_a_large_pick_share_one_options_tuple():
    options = [f"item{i}" for i in range(2000)]

    def picks(said, state):
        said.pick("which item?", options)
        return reply("GREETING")

    paths = explore(make(picks)).paths
    assert len(paths) == 2000 and len({id(p.steps[0].options) for p in paths}) == 1


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt()])
def test_system_exit_and_keyboard_interrupt_from_a_decision_are_wrapped(raised):
    def exits(said, state):
        raise raised

    with pytest.raises(ExplorationError, match=type(raised).__name__):
        explore(make(exits))


def test_keyboard_interrupt_from_a_decision_in_a_worker_thread_is_wrapped():
    def exits(said, state):
        raise KeyboardInterrupt

    with pytest.raises(ExplorationError, match="KeyboardInterrupt"):
        finishes(lambda: explore(make(exits)))


def test_a_real_ctrl_c_during_exploration_still_stops_the_program():
    def interrupted(said, state):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs here
        return reply("GREETING")

    with pytest.raises(KeyboardInterrupt):
        explore(make(interrupted))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_decision_that_loops_during_a_turn_is_stopped(monkeypatch):
    monkeypatch.setattr(explore_module, "MAX_SECONDS", 0.5)
    engine = Engine(make(loops_on_yes), mode="executed", backend=ScriptedBackend(["yes"]), understanding="model")
    with pytest.raises(ExplorationError, match="the decision function ran past its bound of 0.5 s"):
        finishes(lambda: engine.session("s").say("hello"))


def test_model_time_is_not_the_decision_functions_time(monkeypatch):
    monkeypatch.setattr(explore_module, "MAX_SECONDS", 0.3)

    def slow_model(prompt, constraint):
        time.sleep(0.4)
        return "yes"

    engine = Engine(make(asks), mode="executed", backend=ScriptedBackend(slow_model), understanding="model")
    assert engine.session("s").say("hello").reply.id == "GREETING"


def test_an_effect_that_loops_is_an_effect_error_and_the_state_is_unchanged(monkeypatch):
    monkeypatch.setattr(engine_module, "EFFECT_SECONDS", 0.5)
    policy = make(lambda said, state: reply("GREETING"))

    @policy.effect("GREETING")
    def spin(state, line):
        state.gold = 0
        while True:
            pass

    session = Engine(policy, backend=ScriptedBackend(["GREETING"]), understanding="model").session("s")
    with pytest.raises(EffectError, match="ran past its bound of 0.5 s"):
        finishes(lambda: session.say("hi"))
    assert session.state.gold == 10 and session.turns == []


def test_system_exit_from_an_effect_is_an_effect_error():
    policy = make(lambda said, state: reply("GREETING"))

    @policy.effect("GREETING")
    def leave(state, line):
        sys.exit(1)

    session = Engine(policy, backend=ScriptedBackend(["GREETING"]), understanding="model").session("s")
    with pytest.raises(EffectError, match="SystemExit"):
        session.say("hi")


@pytest.mark.parametrize("body", ["while True:\n        pass", "time.sleep(10)"])
def test_lint_and_load_of_a_policy_that_hangs_end_with_a_clear_error(tmp_path, body):
    path = tmp_path / "hangs.py"
    path.write_text(
        "import time\n"
        "from dialogue import Policy, reply\n"
        f"policy = Policy('hangs', catalog={str(CATALOG)!r})\n"
        "@policy.decide\n"
        "def decide(said, state):\n"
        f"    {body}\n"
        "    return reply('GREETING')\n")
    for command in ("lint", "tree"):
        out = subprocess.run([sys.executable, "-m", "dialogue", command, str(path)], capture_output=True,
                             text=True, cwd=ROOT, timeout=60)
        assert out.returncode != 0
        assert "ran past its bound of 5 s" in out.stdout + out.stderr
        assert "Traceback" not in out.stderr
