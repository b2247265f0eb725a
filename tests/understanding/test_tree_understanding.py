"""Conversation trees give the matcher what Python policies give it: `unclear` lines, and
examples for the default branch (what none of the other branches means)."""

from __future__ import annotations

import shutil

import pytest

from dialogue import Engine, load_policy
from dialogue.errors import PolicyError

from ..conftest import EXAMPLES_DIR
from .conftest import NoModel

TREE = EXAMPLES_DIR / "policies" / "card_block.tree.toml"


@pytest.fixture
def tree(tmp_path):
    """A copy of the card-block tree beside a copy of its catalog; `edit(old, new)` changes it."""
    (tmp_path / "policies").mkdir()
    shutil.copytree(EXAMPLES_DIR / "catalogs", tmp_path / "catalogs")
    path = tmp_path / "policies" / TREE.name
    path.write_text(TREE.read_text())

    def edit(old: str, new: str):
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
        return path
    return edit


def say(path, message, node=None):
    return Engine(load_policy(path), backend=NoModel()).session("s", node=node).say(message)


def test_a_tree_names_its_unclear_line_for_every_node_or_for_one(tree):
    noise = "purple monkey dishwasher"
    assert say(TREE, noise).reply.id == "WELCOME"  # the default branch, without an unclear line
    path = tree('start = "intake"', 'start = "intake"\nunclear = "FALLBACK"')
    turn = say(path, noise)
    assert turn.reply.id == "FALLBACK" and turn.trace.unclear
    assert say(path, "I lost my card").reply.id == "ASK_IDENTITY"  # a clear match is untouched
    path = tree('about = "check identity', 'unclear = "IDENTITY_RETRY"\nabout = "check identity')
    assert say(path, noise, node="verify").reply.id == "IDENTITY_RETRY"
    assert say(path, noise).reply.id == "FALLBACK"  # the others keep the tree's own


@pytest.mark.parametrize("old, new, message", [
    ('start = "intake"', 'start = "intake"\nunclear = "FALLBAK"', "unclear line 'FALLBAK' is not a line"),
    ('about = "check identity', 'unclear = "NOPE"\nabout = "check identity', "unclear line 'NOPE'"),
])
def test_a_bad_unclear_line_is_an_error_at_its_key(tree, old, new, message):
    path = tree(old, new)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert message in caught.value.message
    where = caught.value.location
    assert where.file == str(path) and "unclear = " in where.source_line and where.column
    if "FALLBAK" in new:
        assert "did you mean 'FALLBACK'?" in caught.value.hint


def test_a_python_policy_s_bad_unclear_line_points_at_its_policy_call(tmp_path):
    from .conftest import write_pizza

    path = write_pizza(tmp_path, extra=', unclear="NOPE"')
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.message == "unclear line 'NOPE' is not a line of catalog 'pizza'"
    where = caught.value.location
    assert where.file == str(path) and "Policy(" in path.read_text().splitlines()[where.line - 1]


def test_examples_on_a_default_branch_teach_the_matcher(tree):
    greeting = "good morning"
    written = next(line for line in TREE.read_text().splitlines() if "what is this service for?" in line)
    bare = tree(written + "\n", "")
    assert load_policy(bare).examples and all(e.node != "intake" for e in load_policy(bare).examples)
    assert say(bare, greeting).reply.id != "WELCOME"  # intake's default branch has nothing to learn from
    path = tree('say = "WELCOME"', 'examples = ["hello", "hi there", "what can you do?"]\nsay = "WELCOME"')
    policy = load_policy(path)
    assert [(e.message, e.reply, e.node) for e in policy.examples][0] == ("hello", "WELCOME", "intake")
    assert say(path, greeting).reply.id == "WELCOME"
