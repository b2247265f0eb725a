"""The constraint as GBNF (llama.cpp) and as a length-bounded regex (vLLM, SGLang, outlines)."""

import re

import pytest
from hypothesis import given, settings, strategies as st

from dialogue.backends import Constraint, Hole, Prompt
from dialogue.backends.openai import OpenAIBackend, bounded_regex, gbnf
from dialogue.errors import ConstraintError

PATTERNS = [r"[A-Z]{2}-[0-9]{4}", r"\d{3}-\w+", r"[^\s,]+", r"(ab|c)*x?", r"[\-.é€]+", r"a.b",
            r"[a-z]+@[a-z]+\.(com|org)", r"\d+(\.\d{1,2})?"]


def test_literals_and_holes():
    constraint = Constraint((("GREETING",), ('SAY(q="', Hole(r"\d{2}", 2), '")'),))
    assert gbnf(constraint) == 'root ::= "GREETING" | "SAY(q=\\"" (([0-9]){2}) "\\")"\n'


def test_unbounded_repeats_are_capped_by_the_hole_length():
    assert gbnf(Constraint(((Hole(r"\w+", 12),),))) == "root ::= (([0-9A-Za-z_]){1,12})\n"
    assert gbnf(Constraint(((Hole(r"x*", 3),),))) == "root ::= ((\"x\"){0,3})\n"


@pytest.mark.parametrize("pattern", [r"(a)\1", r"a(?=b)", r"(?i)ab", r"^ab$", r"\bab"])
def test_a_regex_with_no_gbnf_form_is_a_constraint_error(pattern):
    with pytest.raises(ConstraintError, match="hole pattern"):
        gbnf(Constraint(((Hole(pattern, 8),),)))


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_bounded_regex_keeps_every_valid_value_and_admits_no_invalid_one(pattern, data):
    """Capping repeats at max_length loses no value of at most max_length characters."""
    bounded = re.compile(bounded_regex(Constraint((("X=", Hole(pattern, 8)),))))
    text = data.draw(st.from_regex(pattern, fullmatch=True))
    if len(text) <= 8:
        assert bounded.fullmatch("X=" + text)
    admitted = data.draw(st.from_regex(bounded, fullmatch=True))
    assert re.fullmatch(pattern, admitted[2:])


@pytest.mark.server
@pytest.mark.parametrize("pattern", PATTERNS)
def test_llama_cpp_accepts_the_grammar_and_obeys_it(llama_server, pattern):
    backend = OpenAIBackend(base_url=llama_server, model="smollm2", server="llama-cpp-python", timeout=60)
    hole = Hole(pattern, 10)
    completion = backend.generate(Prompt("Write a value.", "go"), Constraint((("V=", hole),)))
    assert completion.detail["finish_reasons"] == ["stop"]
    assert completion.text.startswith("V=")
    assert re.fullmatch(pattern, completion.text[2:])  # the length is checked by the engine
