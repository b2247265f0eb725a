"""A choice over OpenAI's enum limits is split into calls, never truncated."""

import json

import pytest

from dialogue.backends import Constraint, Prompt
from dialogue.backends.openai import OpenAIBackend, OpenAILimits
from dialogue.errors import ConstraintError

from .fake import FakeServer, obey

pytestmark = pytest.mark.server

PROMPT = Prompt(system="static", user="I'll sell you item 17 for 33")
ITEMS = [f"SELL_ITEM{i:02d}(price={p})" for i in range(30) for p in range(1, 51)]


def backend(server, **options):
    return OpenAIBackend(base_url=server.url, model="m", api_key="sk-test", server="openai", **options)


def enum_of(request):
    schema = request.body["response_format"]["json_schema"]["schema"]
    (prop,) = schema["properties"].values()
    return prop["enum"]


def test_1500_alternatives_take_two_calls_and_the_answer_is_one_of_them():
    assert len(ITEMS) == 1500
    target = "SELL_ITEM17(price=33)"
    with FakeServer(obey(target, prompt_tokens=900, cached=800)) as server:
        completion = backend(server).generate(PROMPT, Constraint.choice(ITEMS))
    first, second = server.posts
    assert enum_of(first) == [f"SELL_ITEM{i:02d}" for i in range(30)]  # a group first ...
    assert enum_of(second) == [f"SELL_ITEM17(price={p})" for p in range(1, 51)]  # ... then the reply
    assert completion.text == target and completion.text in ITEMS
    assert completion.detail["calls"] == 2
    assert (completion.cached_tokens, completion.tokens_new) == (1600, 200)
    for request in server.posts:
        assert len(json.dumps(request.body["response_format"])) < 120_000


def test_every_alternative_stays_reachable():
    """Each of the 1,500 can be the answer: none was dropped to fit."""
    constraint = Constraint.choice(ITEMS)
    for target in (ITEMS[0], ITEMS[777], ITEMS[-1]):
        with FakeServer(obey(target)) as server:
            assert backend(server).generate(PROMPT, constraint).text == target


def test_long_labels_are_split_by_the_character_limit():
    long_ids = [f"LINE_{'X' * 60}{i:03d}" for i in range(300)]  # 300 values, over 15,000 characters
    with FakeServer(obey(long_ids[123])) as server:
        completion = backend(server).generate(PROMPT, Constraint.choice(long_ids))
    assert completion.text == long_ids[123]
    assert len(server.posts) == 2
    assert all(len(enum_of(r)) <= 250 or sum(map(len, enum_of(r))) <= 15_000 for r in server.posts)


def test_a_choice_that_cannot_be_split_names_the_limit():
    symbols = [chr(0x4E00 + i) for i in range(1200)]  # 1,200 one-character replies share no prefix
    with FakeServer(obey(symbols[0])) as server:
        with pytest.raises(ConstraintError, match=r"1200 enum values \(limit 1000\)"):
            backend(server).generate(PROMPT, Constraint.choice(symbols))
    assert server.posts == []


def test_a_small_choice_is_one_call():
    with FakeServer(obey("SELL_ITEM00(price=1)")) as server:
        backend(server, limits=OpenAILimits()).generate(PROMPT, Constraint.choice(ITEMS[:50]))
    assert len(server.posts) == 1
