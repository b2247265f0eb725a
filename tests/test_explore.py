from pathlib import Path

import pytest
from pydantic import BaseModel

from dialogue import Policy, explore, reply
from dialogue.errors import ExplorationError, PolicyError
from dialogue.said import Extracted

CATALOG = Path(__file__).parent / "fixtures" / "policies" / "shop.toml"


class Wallet(BaseModel):
    gold: int = 10
    items: list[str] = []


def make(decide, state=Wallet):
    policy = Policy("inline", catalog=str(CATALOG), state=state)
    policy.decide(decide)
    return policy


def test_every_answer_is_explored(shop):
    result = explore(shop, {"gold": 10})
    ids = {r.id for r in result.reachable}
    assert ids == {"ORDER_NOTED", "TOO_POOR", "SOLD", "OFFER", "GREETING"}
    # order / buy: sword and shield too dear, nails branch on confirmation / greeting
    assert len(result.paths) == 1 + (1 + 1 + 2) + 1


def test_state_rules_hold_by_construction(shop):
    for gold in (0, 1, 2, 10, 29, 30, 49, 50, 100):
        for r in explore(shop, {"gold": gold}).reachable:
            if r.id in ("OFFER", "SOLD"):
                assert r.slots["price"] <= gold
            if r.id == "TOO_POOR":
                assert r.slots["price"] > gold


def test_extracted_value_is_symbolic(shop):
    [noted] = [r for r in explore(shop).reachable if r.id == "ORDER_NOTED"]
    assert isinstance(noted.slots["order"], Extracted)
    assert noted.slots["order"].pattern == "[A-Z]{2}-[0-9]{4}"


def test_computing_on_an_extracted_value_is_an_author_error():
    def decide(said, state):
        order = said.extract("the order number", "[0-9]+")
        if order.startswith("9"):
            return reply("GREETING")
        return reply("GREETING")

    with pytest.raises(ExplorationError, match="computation") as info:
        explore(make(decide))
    assert "reply slot" in info.value.hint


def test_assigning_to_the_state_is_an_author_error():
    def decide(said, state):
        state.gold = 0
        return reply("GREETING")

    with pytest.raises(ExplorationError, match="assigned to the state") as info:
        explore(make(decide))
    assert "effect" in info.value.hint


def test_mutating_a_list_in_the_state_is_an_author_error():
    def decide(said, state):
        if said("anything?", examples=["x"]):
            state.items.append("x")
        return reply("GREETING")

    with pytest.raises(ExplorationError, match="changed the state"):
        explore(make(decide))


def test_path_bound_names_the_policy_and_how_to_raise_it():
    def decide(said, state):
        for i in range(13):
            said(f"question {i}", examples=["x"])
        return reply("GREETING")

    with pytest.raises(ExplorationError, match="more than 4096 paths") as info:
        explore(make(decide))
    assert "'inline'" in str(info.value) and "max_paths" in info.value.hint
    assert len(explore(make(decide), max_paths=9000).paths) == 2 ** 13


def test_call_bound_per_path():
    def decide(said, state):
        while not said("done?", examples=["x"]):
            pass
        return reply("GREETING")

    with pytest.raises(ExplorationError, match="said calls on one path"):
        explore(make(decide), max_calls=10)


def test_decision_must_return_a_reply():
    def decide(said, state):
        if said("hello?", examples=["hi"]):
            return "GREETING"
        return reply("GREETING")

    with pytest.raises(PolicyError, match="not a reply") as info:
        explore(make(decide))
    assert "hello?" in info.value.hint


def test_an_exception_in_the_decision_names_the_path():
    def decide(said, state):
        if said("divide?", examples=["x"]):
            return reply("OFFER", item="nails", price=1 // 0)
        return reply("GREETING")

    with pytest.raises(ExplorationError, match="ZeroDivisionError") as info:
        explore(make(decide))
    assert "divide?" in info.value.hint and info.value.location.line is not None


def test_pick_arguments_are_checked():
    def decide(said, state):
        said.pick("which?", [])
        return reply("GREETING")

    with pytest.raises(PolicyError, match="non-empty list"):
        explore(make(decide))


def test_a_question_asked_again_on_a_path_means_the_same():
    """One message: a guard that repeats the selling question must not leave a path where
    the first asking is no and the second yes (it would sell with no gold)."""
    def decide(said, state):
        if state.gold < 2 and said("the customer buys nails"):
            return reply("TOO_POOR", item="nails", price=2)
        if said("the customer buys nails"):
            return reply("SOLD", item="nails", price=2)
        return reply("GREETING")

    policy = make(decide)
    broke = explore(policy, {"gold": 0})
    assert {r.id for r in broke.reachable} == {"TOO_POOR", "GREETING"}
    assert [[s.answer for s in p.steps] for p in broke.paths] == [[True], [False, False]]
    rich = explore(policy, {"gold": 10})
    assert {r.id for r in rich.reachable} == {"SOLD", "GREETING"}
    picks = make(lambda said, state: reply("SOLD", item=said.pick("which?", ["sword", "nails"]), price=2)
                 if said.pick("which?", ["sword", "nails"]) == "nails" else reply("GREETING"))
    assert [[s.answer for s in p.steps] for p in explore(picks).paths] == [["sword"], ["nails", "nails"]]
