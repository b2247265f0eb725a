import re
import subprocess
import sys

import pytest

from dialogue.cli import build_parser, main

from .conftest import FIXTURES, ROOT


def run(*args):
    return subprocess.run([sys.executable, "-m", "dialogue", *args], capture_output=True, text=True,
                          cwd=ROOT)


def commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return list(sub.choices)


def test_lint_passes_on_the_examples():
    paths = sorted(str(p) for p in (ROOT / "dialogue" / "examples" / "policies").glob("*.py")) + \
        sorted(str(p) for p in (ROOT / "dialogue" / "examples" / "catalogs").glob("*.toml"))
    out = run("lint", *paths)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"^0 errors, \d+ warnings? in \d+ files$", out.stdout, re.M)


def test_lint_reports_each_broken_fixture_with_a_location_and_hint():
    broken = sorted((FIXTURES / "broken").glob("*.toml"))
    assert len(broken) >= 10
    out = run("lint", *map(str, broken))
    assert out.returncode == 1
    for path in broken:
        assert re.search(rf"{re.escape(path.name)}:\d+(:\d+)?: error: ", out.stdout), path.name
    assert out.stdout.count("hint: ") >= len(broken)
    assert "Traceback" not in out.stderr


def test_lint_reports_a_policy_naming_an_unknown_id(tmp_path):
    policy = tmp_path / "bad.py"
    policy.write_text(
        "from dialogue import Policy, reply\n"
        f"policy = Policy('bad', catalog={str(FIXTURES / 'policies' / 'shop.toml')!r})\n"
        "@policy.decide\n"
        "def decide(said, state):\n"
        "    if said('hello?', examples=['hi']):\n"
        "        return reply('GREETNG')\n"
        "    return reply('OFFER', item='sword')\n")
    out = run("lint", str(policy))
    assert out.returncode == 1
    assert "bad.py:6: error: reply GREETNG is not in catalog 'shop'" in out.stdout
    assert "did you mean GREETING?" in out.stdout
    assert "bad.py:7: error: reply OFFER has the wrong slots: missing price" in out.stdout


def test_tree_shows_questions_and_replies():
    out = run("tree", "tests/fixtures/policies/shop.py", "--state", '{"gold": 10}')
    assert out.returncode == 0, out.stderr
    assert "said: the customer wants to buy something?" in out.stdout
    assert "→ TOO_POOR(item=sword, price=50)" in out.stdout
    assert "→ OFFER(item=sword" not in out.stdout


def test_tree_refuses_bad_state_json_clearly():
    out = run("tree", "tests/fixtures/policies/shop.py", "--state", "{gold: 10}")
    assert out.returncode == 1 and "not valid JSON" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("command", commands())
def test_every_command_has_help_and_is_in_the_readme(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert len(capsys.readouterr().out) > 100
    assert f"dialogue {command}" in (ROOT / "README.md").read_text()
