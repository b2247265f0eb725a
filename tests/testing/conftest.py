"""Conversation tests on the blacksmith policy, written to tmp_path, run on the scripted backend."""

from __future__ import annotations

import pytest

from ..conftest import ROOT

pytest_plugins = ["pytester"]

BLACKSMITH = ROOT / "dialogue" / "examples" / "policies" / "blacksmith.py"

CASES = '''
[[case]]
name = "greets"
[[case.turn]]
user = "hello"
reply = "GREETING"

[[case]]
name = "buys a dagger"
state = { gold = 20 }
[[case.turn]]
user = "a dagger?"
reply = "OFFER(item=dagger, price=15)"
state = { offer = "dagger" }
[[case.turn]]
user = "deal"
reply = "SOLD"
slots = { price = 15 }
not = ["DISCOUNT"]
state = { gold = 5, inventory = ["dagger"] }
fallback = false
'''

# What a model that understands answers, call by call, in prompted mode.
RIGHT = ["GREETING", "OFFER(item=dagger, price=15)", "SOLD(item=dagger, price=15)"]


def write_tests(folder, text: str = CASES, name: str = "blacksmith.tests.toml"):
    """A tests file in `folder` naming the example blacksmith policy."""
    path = folder / name
    path.write_text(f'policy = "{BLACKSMITH}"\n' + text, encoding="utf-8")
    return path


@pytest.fixture
def tests_file(tmp_path):
    return write_tests(tmp_path)
