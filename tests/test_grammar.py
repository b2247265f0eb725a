"""Property tests: the grammar admits exactly the serialized reachable replies."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogue.backends.base import Constraint, Hole
from dialogue.errors import OutputInvalid
from dialogue.grammar import constraint_for, display, reply_grammar, serialize
from dialogue.reply import Reply
from dialogue.said import Extracted

IDS = st.from_regex(r"[A-Z][A-Z0-9_]{0,11}", fullmatch=True)
VALUES = st.one_of(st.integers(-5, 10_000), st.sampled_from(["sword", "shield", "nails", "a b", "x,y"]))
PATTERNS = st.sampled_from([r"[A-Z]{2}-[0-9]{4}", r"[0-9]{3,6}", r"[a-z]+", r"(yes|no)"])


@st.composite
def replies(draw):
    ids = draw(st.lists(IDS, min_size=1, max_size=12, unique=True))
    out = []
    for i, rid in enumerate(ids):
        names = draw(st.lists(st.sampled_from(["item", "price", "order", "n"]), max_size=3, unique=True))
        slots = {}
        for name in names:
            if draw(st.booleans()) and draw(st.booleans()):
                pattern = draw(PATTERNS)
                slots[name] = Extracted(i, name, pattern, 12)
            else:
                slots[name] = draw(VALUES)
        out.append(Reply(rid, slots))
    return out


def _sample_hole(pattern: str, draw) -> str:
    return draw(st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) <= 12))


def _spell(alt, draw) -> str:
    return "".join(_sample_hole(p.pattern, draw) if isinstance(p, Hole) else p for p in alt)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), reachable=replies())
def test_every_reachable_reply_is_admitted_and_maps_back(data, reachable):
    constraint = constraint_for(reachable)
    grammar = reply_grammar(constraint)
    for index, alt in enumerate(constraint.alternatives):
        text = _spell(alt, data.draw)
        got, holes = grammar.parse(text)
        # Two alternatives can spell the same string only through holes; then both are valid.
        assert got == index or _spell_matches(constraint.alternatives[got], text)
        assert len(holes) == sum(isinstance(p, Hole) for p in constraint.alternatives[got])


def _spell_matches(alt, text: str) -> bool:
    regex = "".join(f"(?:{p.pattern})" if isinstance(p, Hole) else re.escape(p) for p in alt)
    return re.fullmatch(regex, text) is not None


LOOKALIKES = str.maketrans({"A": "А", "E": "Е", "O": "Ο", "I": "І", "C": "С", "P": "Р", "T": "Т"})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), reachable=replies(), other=IDS)
def test_near_misses_are_rejected(data, reachable, other):
    constraint = constraint_for(reachable)
    grammar = reply_grammar(constraint)
    regex = re.compile(constraint.regex())
    alt = data.draw(st.sampled_from(constraint.alternatives))
    text = _spell(alt, data.draw)
    misses = [text[:-1], text + " ", " " + text, text.lower(), text.swapcase(),
              text.translate(LOOKALIKES), other, text + "\n", text.replace(", ", ",")]
    for miss in misses:
        if regex.fullmatch(miss):
            continue  # spelled another admitted reply by chance
        with pytest.raises(OutputInvalid):
            grammar.parse(miss)


def test_serialized_form_follows_catalog_slot_order():
    r = Reply("OFFER", {"price": 50, "item": "sword"})
    assert serialize(r) == ("OFFER(price=50, item=sword)",)
    assert display(serialize(Reply("GREETING"))) == "GREETING"


def test_grammars_are_cached_by_the_set_they_admit():
    a = Constraint.choice(["A", "B"])
    b = Constraint.choice(["A", "B"])
    assert reply_grammar(a) is reply_grammar(b)
    assert reply_grammar(Constraint.choice(["A", "C"])) is not reply_grammar(a)


def test_hole_values_are_checked_against_length():
    c = Constraint((("N=", Hole("[0-9]+", 3)),))
    assert reply_grammar(c).parse("N=123") == (0, ("123",))
    with pytest.raises(OutputInvalid):
        reply_grammar(c).parse("N=1234")
