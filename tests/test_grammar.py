"""Property tests: the grammar admits exactly the serialized reachable replies."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogue.backends.base import Constraint, Hole
from dialogue.errors import OutputInvalid
from dialogue.grammar import constraint_for, display, narrowed, reply_grammar, serialize
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


@pytest.mark.parametrize("pattern, message, spans", [
    (r"[0-9]{5}", "my zip is 94107, not 941070 or 10001.", "94107|10001"),
    (r"[A-Z]{2}-[0-9]{6}", "order KT-482913!", "KT-482913"),
    (r"[0-9]+[.][0-9]{2}", "it was 12.50", r"12\.50"),
    (r"[A-Za-z ]{1,40}", "my name is Ada Lovelace", None),  # may match spaces: never narrowed
    (r"[^,]+", "a, b", None),
    (r".+", "anything", None),
    (r"[0-9]", "1 2 3 4 5 6 7 8 9", None),  # more spans than choices are useful
    (r"[0-9]{2,}", "12 " + "9" * 100, "12"),  # longer than the hole allows
])
def test_a_hole_is_narrowed_to_the_message_spans_that_match_it(pattern, message, spans):
    constraint = Constraint((("ZIP(zip=", Hole(pattern, 12), ")"), ("ASK",)))
    guide = narrowed(constraint, message)
    if spans is None:
        assert guide is constraint
    else:
        assert guide.alternatives == (("ZIP(zip=", Hole(spans, 12), ")"), ("ASK",))
        for span in spans.replace("\\", "").split("|"):
            assert re.fullmatch(pattern, span) and span in message


@settings(max_examples=100, deadline=None)
@given(message=st.text(alphabet="ab-0123 .,!", max_size=40))
def test_a_narrowed_hole_admits_only_spans_the_original_admits(message):
    constraint = Constraint(((Hole(r"[a-z]{1,3}-[0-9]{2}", 6),),))
    guide = narrowed(constraint, message)
    hole = guide.alternatives[0][0]
    if guide is not constraint:
        spans = hole.pattern.split("|")
        assert all(re.fullmatch(r"[a-z]{1,3}-[0-9]{2}", s) and s in message for s in spans)


def test_a_reply_whose_hole_has_no_span_anywhere_is_left_out_of_the_guide():
    constraint = Constraint((("ZIP(zip=", Hole(r"[0-9]{5}", 5), ")"), ("ASK",)))
    assert narrowed(constraint, "hello").alternatives == (("ASK",),)  # a ZIP now would be invented
    assert narrowed(constraint, "hello", ["my zip is 94107", "it's 10001 now"]).alternatives[0][1] \
        == Hole("10001", 5)  # the newest earlier message that has one
    only = Constraint(((Hole(r"[0-9]{5}", 5),),))
    assert narrowed(only, "hello") is only  # never every reply
