"""Author patterns meet user and model text in linear time; what RE2 cannot run is refused at load."""

from pathlib import Path

import pytest
from pydantic import BaseModel

from dialogue import Engine, Policy, ScriptedBackend, explore, reply
from dialogue.backends.base import Constraint, Hole
from dialogue.catalog import Catalog
from dialogue.errors import CatalogError, OutputInvalid, PolicyError
from dialogue.grammar import hole_spans, reply_grammar

from .bounded import finishes

EVIL = "(a+)+$"
ATTACK = "a" * 30 + "!"  # 2**30 backtracking steps for Python's re: minutes
HEAD = """\
[catalog]
id = "evil"
version = "1"
locale = "en"
fallback = "FALLBACK"

[[response]]
id = "FALLBACK"
text = "Sorry."
status = "approved"

[[response]]
id = "NOTED"
text = "Noted {{code}}."
status = "approved"
[response.slots]
code = {{ type = "pattern", regex = '{regex}', max_length = 64 }}
"""


def catalog_with(regex: str) -> Catalog:
    return Catalog.from_text(HEAD.format(regex=regex), path="evil.toml")


class Empty(BaseModel):
    pass


def extracting(pattern: str, tmp_path: Path) -> Policy:
    path = tmp_path / "evil.toml"
    path.write_text(HEAD.format(regex="[a!]+"))
    policy = Policy("evil", catalog=str(path), state=Empty)

    @policy.decide
    def decide(said, state):
        if said("the user gives a code"):
            return reply("NOTED", code=said.extract("the code", pattern))
        return reply("FALLBACK")

    return policy


def test_a_catastrophic_slot_regex_validates_user_text_in_linear_time():
    slot = catalog_with(EVIL)["NOTED"].slots["code"]
    with pytest.raises(ValueError, match="does not match"):
        finishes(lambda: slot.validate(ATTACK))
    assert finishes(lambda: slot.validate("a" * 30)) == "a" * 30


def test_a_catastrophic_extract_pattern_finds_spans_in_linear_time():
    hole = Hole(EVIL, 64)
    assert finishes(lambda: hole_spans(hole, [ATTACK + " " + ATTACK])) == []


def test_model_output_repeating_the_attack_is_parsed_in_linear_time():
    grammar = reply_grammar(Constraint((("NOTED(code=", Hole("(a+)+", 64), ")"), ("FALLBACK",))))
    with pytest.raises(OutputInvalid):
        finishes(lambda: grammar.parse("NOTED(code=" + ATTACK + ")"))
    assert finishes(lambda: grammar.parse("NOTED(code=aaa)")) == (0, ("aaa",))


def test_a_turn_with_the_attack_message_is_answered(tmp_path):
    policy = extracting(EVIL, tmp_path)
    engine = Engine(policy, mode="executed", backend=ScriptedBackend(["yes", ATTACK, "yes", ATTACK], strict=False),
                    understanding="model")
    turn = finishes(lambda: engine.session("s").say(ATTACK))
    assert turn.reply.id == "FALLBACK"


@pytest.mark.parametrize("regex, reason", [
    (r"(a)\1", "back-references"),
    ("(?=a)a", "lookahead"),
    ("(?<!b)a", "lookbehind"),
    ("a{0,4294967295}", "too large"),
    ("a{2000}", "repeat count is at most 1000"),
    ("(?P<x>a)", "names a group"),
])
def test_a_slot_regex_re2_cannot_run_is_a_load_error_with_its_line(regex, reason):
    with pytest.raises(CatalogError) as info:
        catalog_with(regex)
    assert info.value.location.file == "evil.toml" and info.value.location.line == 17
    assert reason in str(info.value) and "NOTED" in str(info.value)


@pytest.mark.parametrize("pattern, reason", [(r"(\d)\1", "back-references"), ("(?=a)a", "lookahead"),
                                             ("a{0,4294967295}", "too large")])
def test_an_extract_pattern_re2_cannot_run_is_refused_when_explored(pattern, reason, tmp_path):
    with pytest.raises(PolicyError, match=reason) as info:
        explore(extracting(pattern, tmp_path))
    assert "the code" in str(info.value)


def test_text_that_is_not_valid_unicode_never_matches():
    slot = catalog_with("[a-z]+")["NOTED"].slots["code"]
    with pytest.raises(ValueError, match="does not match"):
        slot.validate("ab\ud800")
    assert hole_spans(Hole("[a-z]+", 8), ["ab \ud800"]) == []
