import subprocess
import sys

import pytest

from dialogue import load_policy
from dialogue.understanding import default_encoder
from dialogue.understanding.overlap import overlapping_questions, rival_pairs

from ..conftest import EXAMPLES, FIXTURES, ROOT

CANCELLING = '''
from dialogue import Policy, reply

policy = Policy("cancel", catalog="{catalog}")

STOPPING = ["cancel the order", "I'd like to cancel", "cancel it please"]


@policy.decide
def decide(said, state):
    if said("the customer wants to cancel the order",
            examples=["cancel my order", "I want to cancel", "please cancel it"]):
        return reply("GREETING")
    if said("the customer wants to stop the order", examples=STOPPING):
        return reply("OFFER", item="nails", price=2)
    if said("the customer says hello", examples=["hi", "good morning"]):
        return reply("GREETING")
    if said("the customer asks for something to buy", examples=["what do you sell?"]):
        item = said.pick("which item?", ["sword", "shield", "nails"],
                         examples={{"sword": ["a blade", "a sword please"], "shield": ["a blade", "a sword please"]}})
        return reply("OFFER", item=item, price=2)
    return reply("GREETING")
'''


@pytest.fixture(scope="module")
def encoder():
    return default_encoder()


@pytest.fixture
def cancelling(tmp_path):
    path = tmp_path / "cancel.py"
    path.write_text(CANCELLING.format(catalog=(FIXTURES / "policies" / "shop.toml").as_posix()))
    return path


def test_rivals_with_alike_examples_are_warned_with_both_names_and_the_closest_pair(cancelling, encoder):
    [questions, options] = overlapping_questions(load_policy(cancelling), encoder)
    assert questions.kind == "warning" and questions.location.file == str(cancelling)
    assert questions.location.line == 11  # the first question's said(...) line
    text = str(questions)
    assert "'the customer wants to cancel the order' and 'the customer wants to stop the order' (line 14)" in text
    assert "in node 'main' overlap 0.9" in text
    assert "most alike: 'cancel my order' ~ 'cancel the order'" in text
    assert "hint: give each question examples that only it would answer yes to" in text
    assert "options 'sword' and 'shield' of said.pick('which item?')" in str(options)
    assert "most alike: 'a blade' ~ 'a blade', cosine 1.00" in str(options)
    assert options.location.line == 19


def test_distinct_rivals_and_rivals_selecting_the_same_reply_are_not_warned(cancelling, encoder):
    policy = load_policy(cancelling)
    texts = [str(w) for w in overlapping_questions(policy, encoder)]
    assert not any("says hello" in t or "'nails'" in t for t in texts)
    # A yes to "cancel" and to "says hello" both say GREETING: not rivals at all.
    rivals = {frozenset(r.option or r.question for r in pair) for pair in rival_pairs(policy, "main")}
    assert frozenset({"the customer wants to cancel the order", "the customer says hello"}) not in rivals
    assert frozenset({"the customer wants to stop the order", "the customer says hello"}) in rivals


NESTED = '''
from dialogue import Policy, reply

policy = Policy("nested", catalog="{catalog}")


@policy.decide
def decide(said, state):
    if said("the customer wants to cancel the order", examples=["cancel my order", "I want to cancel"]):
        if said("the customer wants to stop the order", examples=["cancel the order", "I'd like to cancel"]):
            return reply("OFFER", item="nails", price=2)
        return reply("GREETING")
    return reply("GREETING")
'''


def test_nested_questions_are_rivals_when_they_select_different_replies(tmp_path, encoder):
    path = tmp_path / "nested.py"
    path.write_text(NESTED.format(catalog=(FIXTURES / "policies" / "shop.toml").as_posix()))
    [warning] = overlapping_questions(load_policy(path), encoder)
    assert "'the customer wants to cancel the order' and 'the customer wants to stop the order'" in str(warning)


@pytest.mark.parametrize("name", ["blacksmith", "refunds"])
def test_the_example_policies_have_no_rivals_alike(name, encoder):
    policy = load_policy(EXAMPLES[name])
    assert overlapping_questions(policy, encoder) == []
    # The check does look at them: at a threshold far below the default it finds pairs.
    assert overlapping_questions(policy, encoder, threshold=0.3)


def test_the_card_block_tree_has_no_rivals_alike(encoder):
    policy = load_policy(ROOT / "dialogue" / "examples" / "policies" / "card_block.tree.toml")
    assert overlapping_questions(policy, encoder) == []
    warnings = overlapping_questions(policy, encoder, threshold=0.4)
    assert warnings and all(w.location.file.endswith("card_block.tree.toml") for w in warnings)
    lines = policy.file.read_text().splitlines()
    assert all(lines[w.location.line - 1] == "[[node.branch]]" for w in warnings)


def test_blacksmith_checks_questions_and_pick_options(encoder):
    policy = load_policy(EXAMPLES["blacksmith"])
    pairs = rival_pairs(policy, "main")
    names = {frozenset(r.option or r.question for r in pair) for pair in pairs}
    assert frozenset({"dagger", "sword"}) in names
    assert frozenset({"the player says goodbye", "the player insults or threatens Hilda"}) in names
    # Options are rivals of each other only, not of the question a pick refines.
    assert all((a.option is None) == (b.option is None) for a, b in pairs)
    assert all(a.question == b.question for a, b in pairs if a.option is not None)


def run(*args):
    return subprocess.run([sys.executable, "-m", "dialogue", *args], capture_output=True, text=True, cwd=ROOT)


def test_lint_warns_and_no_overlap_skips(cancelling):
    out = run("lint", str(cancelling))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{cancelling}:11: warning: questions 'the customer wants to cancel the order'" in out.stdout
    assert out.stdout.count(" overlap 0.") == 2
    skipped = run("lint", "--no-overlap", str(cancelling))
    assert skipped.returncode == 0 and "overlap" not in skipped.stdout
    assert skipped.stdout.count(": warning: ") == out.stdout.count(": warning: ") - 2


def test_loading_a_policy_neither_checks_overlap_nor_loads_the_encoder(cancelling):
    code = ("import sys; from dialogue import load_policy; "
            f"p = load_policy({str(cancelling)!r}); "
            "print(any('overlap' in str(w) for w in p.warnings), "
            "'onnxruntime' in sys.modules, 'dialogue.understanding.overlap' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False", "False"], out.stdout + out.stderr
