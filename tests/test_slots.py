"""Slot types (validate, render, describe, json) and the template parser."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dialogue.slots import (
    ChoiceSlot,
    DateSlot,
    DecimalSlot,
    IntSlot,
    MoneySlot,
    PatternSlot,
    Placeholder,
    parse_slot,
    parse_template,
)


def slot(**declaration):
    return parse_slot(declaration)


# --- int ---------------------------------------------------------------------------------------


def test_int_validates_renders_and_describes():
    s = slot(type="int", min=0, max=100)
    assert isinstance(s, IntSlot)
    assert s.validate(42) == 42 and s.render(42, "en") == "42" and s.json(42) == "42"
    assert s.describe() == "int 0..100"
    assert slot(type="int").describe() == "int" and slot(type="int", min=1).describe() == "int >= 1"


@pytest.mark.parametrize("value", [True, 1.0, "5", None, Decimal(3)])
def test_int_is_strict(value):
    with pytest.raises(ValueError, match="int slot: expected a whole number"):
        slot(type="int").validate(value)


def test_int_bounds_name_the_constraint():
    s = slot(type="int", min=0, max=100)
    assert s.validate(0) == 0 and s.validate(100) == 100
    with pytest.raises(ValueError, match="int slot: 101 is above the maximum 100"):
        s.validate(101)
    with pytest.raises(ValueError, match="int slot: -1 is below the minimum 0"):
        s.validate(-1)


# --- decimal and money -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [3, "3", "3.5", Decimal("3.50"), 3.5, "3.500"])
def test_decimal_normalizes_to_exact_places(value):
    s = slot(type="decimal")
    assert isinstance(s, DecimalSlot)
    normalized = s.validate(value)
    assert isinstance(normalized, Decimal)
    assert s.render(normalized, "en") in ("3.00", "3.50") and s.json(normalized) == f'"{s.render(normalized, "en")}"'


@pytest.mark.parametrize("value,problem", [
    ("1.234", "more than 2 decimal places"), (0.1 + 0.2, "more than 2 decimal places"),
    ("abc", "is not a number"), (float("nan"), "not a finite number"), ("Infinity", "not a finite"),
    (True, "expected a number"), ([1], "expected a number"), ("1e40", "too large"),
])
def test_decimal_rejects(value, problem):
    with pytest.raises(ValueError, match=f"decimal slot: .*{problem}"):
        slot(type="decimal").validate(value)


def test_decimal_bounds_accept_toml_numbers_and_strings():
    s = slot(type="decimal", min=0.5, max="9.99", places=1)
    assert s.min == Decimal("0.5") and s.max == Decimal("9.99")
    assert s.describe() == "decimal 0.5..9.99, 1 places"
    with pytest.raises(ValueError, match="above the maximum 9.99"):
        s.validate("10")


def test_money_renders_amount_and_currency():
    eur = slot(type="money", currency="EUR")
    gold = slot(type="money", currency="gold", places=0, min=0, max=10000)
    assert isinstance(gold, MoneySlot)
    assert eur.render(eur.validate("12.5"), "de") == "12.50 EUR"
    assert gold.render(gold.validate(50), "en") == "50 gold"
    assert gold.describe() == "money in gold, 0..10000" and eur.describe() == "money in EUR"
    with pytest.raises(ValueError, match="money slot: 10001 is above the maximum 10000"):
        gold.validate(10001)
    with pytest.raises(ValueError, match="money slot: .* more than 0 decimal places"):
        gold.validate("1.5")


def test_money_needs_a_currency():
    with pytest.raises(ValidationError):
        slot(type="money")


# --- choice --------------------------------------------------------------------------------------


def test_choice_validates_and_renders_labels():
    s = slot(type="choice", options=["sword", "shield"], labels={"de": {"sword": "Schwert"}})
    assert isinstance(s, ChoiceSlot) and s.options == ("sword", "shield")
    assert s.render("sword", "de") == "Schwert" and s.render("shield", "de") == "shield"
    assert s.render("sword", "en") == "sword" and s.json("sword") == '"sword"'
    assert s.describe() == "one of sword|shield"
    with pytest.raises(ValueError, match=r"choice slot: 'axe' is not one of sword\|shield"):
        s.validate("axe")
    with pytest.raises(ValueError, match="choice slot: expected a string"):
        s.validate(1)


@pytest.mark.parametrize("declaration,problem", [
    ({"options": []}, "has no options"),
    ({"options": ["a", "b", "a"]}, "lists 'a' more than once"),
    ({"options": ["a"], "labels": {"de": {"b": "B"}}}, "labels 'b' in locale 'de', which are not options"),
])
def test_choice_declaration_errors(declaration, problem):
    with pytest.raises(ValidationError, match=problem):
        slot(type="choice", **declaration)


# --- pattern -------------------------------------------------------------------------------------


def test_pattern_fullmatches_within_max_length():
    s = slot(type="pattern", regex="[A-Z]{2}[0-9]{6}", max_length=8)
    assert isinstance(s, PatternSlot) and s.regex == "[A-Z]{2}[0-9]{6}" and s.max_length == 8
    assert s.validate("AB123456") == "AB123456" and s.render("AB123456", "en") == "AB123456"
    assert s.describe() == "text matching [A-Z]{2}[0-9]{6}, at most 8 chars"
    with pytest.raises(ValueError, match="does not match"):
        s.validate("ab123456")
    with pytest.raises(ValueError, match="does not match"):
        s.validate("AB12345")


def test_pattern_max_length_is_enforced_before_the_regex():
    s = slot(type="pattern", regex=".*", max_length=3)
    with pytest.raises(ValueError, match="pattern slot: 4 characters, more than max_length 3"):
        s.validate("abcd")


@pytest.mark.parametrize("declaration,problem", [
    ({"regex": "(", "max_length": 3}, "bad regex '\\(': missing \\)"),
    ({"regex": "a", "max_length": 0}, "greater than or equal to 1"),
    ({"regex": "a", "max_length": 257}, "less than or equal to 256"),
    ({"regex": "a"}, "max_length"),
])
def test_pattern_declaration_errors(declaration, problem):
    with pytest.raises(ValidationError, match=problem):
        slot(type="pattern", **declaration)


# --- date ----------------------------------------------------------------------------------------


def test_date_accepts_dates_and_iso_strings():
    s = slot(type="date", min="2024-01-01", max=date(2024, 12, 31))
    assert isinstance(s, DateSlot) and s.min == date(2024, 1, 1)
    assert s.validate("2024-02-29") == date(2024, 2, 29)
    assert s.render(date(2024, 3, 1), "en") == "2024-03-01" and s.json(date(2024, 3, 1)) == '"2024-03-01"'
    assert s.describe() == "date 2024-01-01..2024-12-31" and slot(type="date").describe() == "date"


@pytest.mark.parametrize("value,problem", [
    (datetime(2024, 1, 1, 12), "expected a date"), ("20240101", "expected a date"),
    ("2024-02-30", "not a real date"), ("2023-12-31", "below the minimum 2024-01-01"), (20240101, "expected"),
])
def test_date_rejects(value, problem):
    with pytest.raises(ValueError, match=f"date slot: .*{problem}"):
        slot(type="date", min="2024-01-01").validate(value)


# --- declarations --------------------------------------------------------------------------------


@pytest.mark.parametrize("declaration,problem", [
    ({"type": "int", "min": 5, "max": 1}, "min 5 above max 1"),
    ({"type": "date", "min": "2024-02-01", "max": "2024-01-01"}, "above max"),
    ({"type": "float"}, "does not match any of the expected tags"),
    ({"type": "int", "step": 2}, "Extra inputs are not permitted"),
    ({"type": "int", "min": True}, "valid integer"),
    ({"type": "decimal", "min": "x"}, "bound 'x' is not a number"),
])
def test_bad_declarations_are_refused(declaration, problem):
    with pytest.raises(ValidationError, match=problem):
        parse_slot(declaration)


def test_declarations_are_canonical_data():
    assert slot(type="money", currency="EUR", min=1).declaration() == {
        "type": "money", "currency": "EUR", "places": 2, "min": "1", "max": None}


# --- templates -----------------------------------------------------------------------------------


def test_template_segments_and_literal_braces():
    t = parse_template("A {item} for {price} {{not a slot}} and {item}.")
    assert t.segments == ("A ", Placeholder("item"), " for ", Placeholder("price"), " {not a slot} and ",
                          Placeholder("item"), ".")
    assert t.placeholders == ("item", "price") and t.offsets == (2, 13, 40) and not t.faults


@pytest.mark.parametrize("text,offset,problem", [
    ("x {0} y", 2, "bad placeholder {0}"), ("x {a.b}", 2, "bad placeholder {a.b}"),
    ("{ x }", 0, "bad placeholder { x }"), ("x {open", 2, "unmatched '{'"), ("x } y", 2, "unmatched '}'"),
    ("{a!r}", 0, "bad placeholder"), ("{}", 0, "bad placeholder {}"),
])
def test_template_faults(text, offset, problem):
    faults = parse_template(text).faults
    assert faults and faults[0].offset == offset and problem in faults[0].message and faults[0].hint


def escape(text):
    return text.replace("{", "{{").replace("}", "}}")


@given(st.text())
def test_escaped_text_parses_back_to_itself(text):
    t = parse_template(escape(text))
    assert not t.faults and t.placeholders == () and t.fill(str) == text


@given(st.text(), st.text())
def test_values_are_printed_literally(before, value):
    t = parse_template(escape(before) + "{v}")
    assert t.fill(lambda name: value) == before + value
