"""Loading tests files: their shape, and every fault with file:line and a hint."""

from __future__ import annotations

import pytest

from dialogue.engine import Engine
from dialogue.errors import TestFileError
from dialogue.backends.scripted import ScriptedBackend
from dialogue.testing import case_to_toml, load_test_file, load_tests

from .conftest import BLACKSMITH, RIGHT, write_tests


def test_cases_load_with_their_turns_and_lines(tests_file):
    greets, buys = load_tests(tests_file)
    assert (greets.name, greets.state, greets.line) == ("greets", {}, 3)
    assert buys.state == {"gold": 20}
    offer, deal = buys.turns
    assert offer.reply[0].id == "OFFER" and offer.reply[0].slots == {"item": "dagger", "price": "15"}
    assert deal.not_ids == ("DISCOUNT",) and deal.fallback is False and deal.line == 16
    assert deal.state == {"gold": 5, "inventory": ["dagger"]}


def test_the_policy_is_found_beside_the_file_and_the_mode_is_read(tmp_path):
    path = tmp_path / "shop.tests.toml"
    path.write_text(f'policy = "{BLACKSMITH}"\nmode = "executed"\n')
    file = load_test_file(path)
    assert file.policy_path == BLACKSMITH and file.mode == "executed" and file.cases == []
    assert file.cassette_path == tmp_path / "shop.cassette.json"


def test_without_a_policy_only_the_shape_is_checked(tmp_path):
    path = tmp_path / "nobody.tests.toml"
    path.write_text('[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi"\nreply = "ANYTHING"\n')
    assert load_tests(path)[0].turns[0].reply[0].id == "ANYTHING"


@pytest.mark.parametrize("text, line, words", [
    ('[[case]]\nname = "x"\ncolour = 1\n[[case.turn]]\nuser = "hi"\n', 4, "unknown key 'colour'"),
    ('[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi"\nrepyl = "GREETING"\n', 6, "did you mean 'reply'"),
    ('[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi"\nreply = "GREETIN"\n', 6, "GREETIN is not in catalog"),
    ('[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi"\nnot = ["NOPE"]\n', 6, "NOPE is not in catalog"),
    ('[[case]]\nname = "x"\nstate = { gold = 1, silver = 2 }\n[[case.turn]]\nuser = "hi"\n', 4,
     "has no field 'silver'"),
    ('[[case]]\nname = "x"\nstate = { gold = "lots" }\n[[case.turn]]\nuser = "hi"\n', 4, "gold"),
    ('[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi"\nreply = "OFFER"\nslots = { colour = "red" }\n', 7,
     "OFFER has no slot 'colour'"),
    ('[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi"\nstate = { mood = 1 }\n', 6, "no field 'mood'"),
    ('[[case]]\nname = "x"\n', 2, "at least one turn"),
    ('[[case]]\nname = "x"\n[[case.turn]]\nreply = "GREETING"\n', 4, "needs `user`"),
    ('[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi"\nfallback = "no"\n', 6, "true or false"),
    ('[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi"\n[[case]]\nname = "x"\n[[case.turn]]\nuser = "yo"\n',
     7, "two cases named 'x'"),
    ('mode = "guessing"\n', 2, "unknown mode"),
    ('[[case]]\nname = "x"\nnode = "shop"\n[[case.turn]]\nuser = "hi"\n', 4, "has no node 'shop'"),
    ('[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi"\nnode = "shop"\n', 6, "has no node 'shop'"),
    ('[[case]]\nname = "x"\n[[case.turn]]\nuser = "hi\n', 5, "TOML syntax"),
])
def test_a_fault_is_shown_with_file_line_and_the_source(tmp_path, text, line, words):
    path = write_tests(tmp_path, text)
    with pytest.raises(TestFileError) as caught:
        load_tests(path)
    message = str(caught.value)
    assert f"{path}:{line}:" in message and words in message, message
    assert "|" in message  # the source line is shown


def test_a_saved_conversation_becomes_a_case_expecting_its_replies(tmp_path):
    from dialogue import load_policy

    engine = Engine(load_policy(BLACKSMITH), backend=ScriptedBackend(RIGHT[:2]))
    session = engine.session("s", state={"gold": 20, "offer": None})
    turns = [session.say("hello"), session.say('a "dagger"?')]
    text = case_to_toml("buys a dagger", {"gold": 20, "offer": None}, turns)
    path = write_tests(tmp_path, text)
    (case,) = load_tests(path)
    assert case.name == "buys a dagger" and case.state == {"gold": 20}
    assert [t.user for t in case.turns] == ["hello", 'a "dagger"?']
    assert 'reply = "OFFER(item=dagger, price=15)"' in text
