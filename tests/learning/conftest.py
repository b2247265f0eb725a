"""Fixtures for learning from reviewed turns: a policy copy to write examples beside, the CLI."""

from __future__ import annotations


import pytest

from dialogue import cli as cli_module

from ..conftest import copied_policy

TESTS = '''
[[case]]
name = "buys a dagger"

[[case.turn]]
user = "a dagger?"
reply = "OFFER(item=dagger, price=15)"

[[case.turn]]
user = "I'll take it"
reply = "SOLD"
state = { gold = 5 }

[[case]]
name = "no reply expected first"

[[case.turn]]
user = "hmm"
not = ["SOLD"]

[[case.turn]]
user = "hello"
reply = "GREETING"

[[case]]
name = "too poor for the sword it expects"
state = { gold = 0 }

[[case.turn]]
user = "a sword"
reply = "OFFER"

[[case.turn]]
user = "hello"
reply = "GREETING"
'''


@pytest.fixture
def policy(tmp_path):
    """policies/blacksmith.py with its catalog and a small tests file, copied under tmp_path."""
    path = copied_policy(tmp_path)
    (tmp_path / "policies" / "blacksmith.tests.toml").write_text(TESTS, encoding="utf-8")
    return path


@pytest.fixture
def examples(policy):
    return policy.with_name("blacksmith.examples.toml")


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `dialogue ARGS` in this process: (exit status, stdout, stderr)."""
    monkeypatch.delenv("DIALOGUE_DB", raising=False)
    monkeypatch.setenv("USER", "j.doe")

    def run(*args):
        code = cli_module.main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
