"""Fixtures for understanding tests: a small pizza policy written to a temporary folder."""

from __future__ import annotations

import textwrap

import pytest

PIZZA_CATALOG = """
[catalog]
id = "pizza"
version = "1.0.0"
locale = "en"
fallback = "FALLBACK"

[[response]]
id = "GREETING"
text = "Luigi's Pizza! What can I get you?"
when = "the customer greets us"
status = "approved"

[[response]]
id = "ORDER"
text = "One {pizza}, coming up."
when = "the customer orders a pizza"
status = "approved"
[response.slots]
pizza = { type = "choice", options = ["margherita", "pepperoni", "hawaiian"] }

[[response]]
id = "HOURS"
text = "We're open from noon to midnight."
when = "the customer asks when we are open"
status = "approved"

[[response]]
id = "GOODBYE"
text = "Ciao!"
when = "the customer leaves"
status = "approved"

[[response]]
id = "MENU"
text = "Margherita, pepperoni or hawaiian."
when = "anything else: we say what we have"
status = "approved"

[[response]]
id = "PARDON"
text = "Sorry, I didn't catch that. A pizza, our hours, or something else?"
when = "said when the message is unclear"
status = "approved"

[[response]]
id = "FALLBACK"
text = "Sorry, something went wrong."
status = "approved"
"""

PIZZA_POLICY = '''
from dialogue import Policy, reply

policy = Policy("pizza", catalog="pizza.toml", persona="Luigi's pizza counter"{extra})

PIZZAS = ["margherita", "pepperoni", "hawaiian"]


@policy.decide
def decide(said, state):
    if said("the customer says goodbye", examples=["bye", "see you", "thanks, that's all"]):
        return reply("GOODBYE")
    if said("the customer orders a pizza", examples=["I'd like a pizza", "can I get a large one to go?",
                                                   "one pizza please"]):
        pizza = said.pick("which pizza?", PIZZAS, examples={{"hawaiian": ["the one with pineapple"],
                                                            "pepperoni": ["salami"]}})
        return reply("ORDER", pizza=pizza)
    if said("the customer asks when we are open", examples=["are you open now?", "what are your hours?"]):
        return reply("HOURS")
    if said("the customer greets us", examples=["hi", "hello there", "good evening"]):
        return reply("GREETING")
    return reply("MENU")
'''


def write_pizza(folder, extra: str = "", examples: str | None = None):
    """The pizza policy in `folder`; `extra` adds Policy(...) arguments; `examples` an examples file."""
    (folder / "pizza.toml").write_text(textwrap.dedent(PIZZA_CATALOG))
    path = folder / "pizza.py"
    path.write_text(PIZZA_POLICY.format(extra=extra))
    if examples is not None:
        (folder / "pizza.examples.toml").write_text(textwrap.dedent(examples))
    return path


@pytest.fixture
def pizza_path(tmp_path):
    return write_pizza(tmp_path)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Each test has its own matcher cache, so none reads another's."""
    monkeypatch.setenv("DIALOGUE_CACHE_DIR", str(tmp_path / "cache"))


class NoModel:
    """A backend that fails the test if the engine calls it."""

    name = "llamacpp"  # stands in for the embedded model, so the engine defaults to the encoder
    model = "none"

    def generate(self, prompt, constraint):
        raise AssertionError(f"the model was called: {prompt.user[-120:]!r}")
