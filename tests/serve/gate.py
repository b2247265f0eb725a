"""A policy whose turns wait until a file exists: a turn the server tests can hold in flight."""

import time
from pathlib import Path

from pydantic import BaseModel

from dialogue import Policy, reply


class Gate(BaseModel):
    gate: str = ""  # a file to wait for before the turn finishes ("" : no wait)
    passed: int = 0


policy = Policy("gate", catalog="gate.toml", state=Gate, persona="a gatekeeper")

WAIT_AT_MOST_S = 30.0


@policy.decide
def decide(said, state):
    return reply("PASSED")


@policy.effect("PASSED")
def passed(state, r):
    deadline = time.monotonic() + WAIT_AT_MOST_S
    while state.gate and not Path(state.gate).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    state.passed += 1
