"""Slot types and response templates: the typed holes in a catalog line and how they are filled.

A template is parsed once into literal text and placeholder names; rendering joins the
pieces with each slot's own ``render``. Values never pass through ``str.format``, so a
value such as ``"{0.__class__}"`` is printed as it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, field_validator, model_validator
from pydantic_core import PydanticCustomError

from . import patterns

__all__ = [
    "ChoiceSlot",
    "DateSlot",
    "DecimalSlot",
    "IntSlot",
    "MoneySlot",
    "PatternSlot",
    "Placeholder",
    "SLOT_TYPES",
    "SlotType",
    "Template",
    "TemplateFault",
    "parse_slot",
    "parse_template",
]

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _fault(message: str, hint: str, key: str | None = None) -> PydanticCustomError:
    """A pydantic error that carries an author-facing hint and, optionally, the key at fault."""
    ctx: dict[str, Any] = {"message": message, "hint": hint}
    if key is not None:
        ctx["key"] = key
    return PydanticCustomError("catalog_slot", "{message}", ctx)


class _Slot(BaseModel):
    """Common face of every slot type: validate, render, describe, json."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ClassVar[str]

    def validate(self, value: Any) -> Any:  # type: ignore[override]
        """The normalized value, or ValueError naming the slot type and the broken constraint."""
        raise NotImplementedError

    def render(self, value: Any, locale: str) -> str:
        """The text a user sees for an already validated value."""
        return str(value)

    def describe(self) -> str:
        """A short description for prompts and docs."""
        raise NotImplementedError

    def json(self, value: Any) -> str:  # type: ignore[override]
        """A canonical JSON text of a normalized value, for hashes and traces."""
        return json.dumps(value, ensure_ascii=False)

    def declaration(self) -> dict[str, Any]:
        """The declaration as plain JSON data (what the catalog file says, defaults filled)."""
        return self.model_dump(mode="json")

    def _bounds(self, value: Any, shown: Any = None) -> None:
        shown = value if shown is None else shown
        low, high = getattr(self, "min", None), getattr(self, "max", None)
        if low is not None and value < low:
            raise ValueError(f"{self.kind} slot: {shown} is below the minimum {low}")
        if high is not None and value > high:
            raise ValueError(f"{self.kind} slot: {shown} is above the maximum {high}")

    def _range(self) -> str:
        low, high = getattr(self, "min", None), getattr(self, "max", None)
        if low is not None and high is not None:
            return f"{low}..{high}"
        if low is not None:
            return f">= {low}"
        return f"<= {high}" if high is not None else ""

    @model_validator(mode="after")
    def _ordered_bounds(self) -> _Slot:
        low, high = getattr(self, "min", None), getattr(self, "max", None)
        if low is not None and high is not None and low > high:
            raise _fault(f"{self.kind} slot has min {low} above max {high}",
                         "swap them, or fix the one that is wrong", key="min")
        return self


class IntSlot(_Slot):
    """A whole number, optionally bounded."""

    kind: ClassVar[str] = "int"
    type: Literal["int"] = "int"
    min: StrictInt | None = None
    max: StrictInt | None = None

    def validate(self, value: Any) -> int:  # type: ignore[override]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"int slot: expected a whole number (int), got {type(value).__name__} {value!r}")
        self._bounds(value)
        return value

    def describe(self) -> str:
        return " ".join(filter(None, ["int", self._range()]))

    def json(self, value: Any) -> str:  # type: ignore[override]
        return str(value)


def to_decimal(value: Any, kind: str = "decimal") -> Decimal:
    """`value` as a finite Decimal: int, Decimal, a numeric str, or a float (through its repr)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(f"{kind} slot: expected a number, got {type(value).__name__} {value!r}")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise ValueError(f"{kind} slot: {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{kind} slot: {value!r} is not a finite number")
    return number


def to_decimal_bound(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return to_decimal(value)
    except ValueError:
        raise _fault(f"bound {value!r} is not a number", 'write a number: min = 0 or min = "0.50"') from None


class _Number(_Slot):
    """Shared by decimal and money: bounds, a number of decimal places, exact rendering."""

    places: StrictInt = Field(2, ge=0, le=12)
    min: Decimal | None = None
    max: Decimal | None = None

    @field_validator("min", "max", mode="before")
    @classmethod
    def _numeric_bound(cls, value: Any) -> Decimal | None:
        return to_decimal_bound(value)

    def validate(self, value: Any) -> Decimal:  # type: ignore[override]
        number = to_decimal(value, self.kind)
        step = Decimal(1).scaleb(-self.places)
        try:
            exact = number.quantize(step)
        except InvalidOperation:
            raise ValueError(f"{self.kind} slot: {value!r} is too large") from None
        if exact != number:
            raise ValueError(f"{self.kind} slot: {value!r} has more than {self.places} decimal places")
        self._bounds(exact, value)
        return exact

    def amount(self, value: Decimal) -> str:
        """The number with exactly `places` decimal places."""
        return f"{Decimal(value):.{self.places}f}"

    def render(self, value: Any, locale: str) -> str:
        return self.amount(value)

    def json(self, value: Any) -> str:  # type: ignore[override]
        return json.dumps(self.amount(value))


class DecimalSlot(_Number):
    """An exact decimal number with at most `places` decimal places."""

    kind: ClassVar[str] = "decimal"
    type: Literal["decimal"] = "decimal"

    def describe(self) -> str:
        return " ".join(filter(None, ["decimal", self._range()])) + f", {self.places} places"


class MoneySlot(_Number):
    """An amount of a currency; renders as ``"12.50 EUR"`` or ``"50 gold"``."""

    kind: ClassVar[str] = "money"
    type: Literal["money"] = "money"
    currency: str = Field(min_length=1)

    def render(self, value: Any, locale: str) -> str:
        return f"{self.amount(value)} {self.currency}"

    def describe(self) -> str:
        bounds = self._range()
        return f"money in {self.currency}" + (f", {bounds}" if bounds else "")


class ChoiceSlot(_Slot):
    """One of a closed list of options, with optional per-locale labels."""

    kind: ClassVar[str] = "choice"
    type: Literal["choice"] = "choice"
    options: tuple[str, ...]
    labels: dict[str, dict[str, str]] = {}

    @field_validator("options")
    @classmethod
    def _unique(cls, options: tuple[str, ...]) -> tuple[str, ...]:
        if not options:
            raise _fault("choice slot has no options", 'list them: options = ["sword", "shield"]')
        doubles = sorted({o for o in options if options.count(o) > 1})
        if doubles:
            raise _fault(f"choice slot lists {', '.join(map(repr, doubles))} more than once",
                         "each option once; remove the repeats")
        return options

    @model_validator(mode="after")
    def _labels_known(self) -> ChoiceSlot:
        for locale, labels in self.labels.items():
            unknown = sorted(set(labels) - set(self.options))
            if unknown:
                raise _fault(f"choice slot labels {', '.join(map(repr, unknown))} in locale {locale!r}, "
                             "which are not options", f"options: {', '.join(self.options)}", key="labels")
        return self

    def validate(self, value: Any) -> str:  # type: ignore[override]
        if not isinstance(value, str):
            raise ValueError(f"choice slot: expected a string, got {type(value).__name__} {value!r}")
        if value not in self.options:
            raise ValueError(f"choice slot: {value!r} is not one of {'|'.join(self.options)}")
        return value

    def render(self, value: Any, locale: str) -> str:
        return self.labels.get(locale, {}).get(value, value)

    def describe(self) -> str:
        return f"one of {'|'.join(self.options)}"


class PatternSlot(_Slot):
    """Text that wholly matches a regular expression, at most `max_length` characters."""

    kind: ClassVar[str] = "pattern"
    type: Literal["pattern"] = "pattern"
    regex: str
    max_length: StrictInt = Field(ge=1, le=256)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        problem = patterns.check(regex)
        if problem is not None:
            raise _fault(f"bad regex {regex!r}: {problem}",
                         "write a Python regular expression (re module) that RE2 also runs: no "
                         "back-references or lookaround; the whole value must match it, so no "
                         "anchors are needed") from None
        return regex

    def validate(self, value: Any) -> str:  # type: ignore[override]
        if not isinstance(value, str):
            raise ValueError(f"pattern slot: expected a string, got {type(value).__name__} {value!r}")
        if len(value) > self.max_length:
            raise ValueError(f"pattern slot: {len(value)} characters, more than max_length {self.max_length}")
        if not patterns.fullmatches(self.regex, value):
            raise ValueError(f"pattern slot: {value!r} does not match {self.regex}")
        return value

    def describe(self) -> str:
        return f"text matching {self.regex}, at most {self.max_length} chars"


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def to_date(value: Any) -> date:
    """`value` as a date: a `date` (not a datetime) or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"date slot: {value!r} is not a real date") from None
    raise ValueError(f"date slot: expected a date or 'YYYY-MM-DD', got {type(value).__name__} {value!r}")


def to_date_bound(value: Any) -> date | None:
    try:
        return None if value is None else to_date(value)
    except ValueError:
        raise _fault(f"bound {value!r} is not a date", "write min = 2024-01-01 or min = \"2024-01-01\"") from None


class DateSlot(_Slot):
    """A calendar date, optionally bounded; renders as ISO ``YYYY-MM-DD``."""

    kind: ClassVar[str] = "date"
    type: Literal["date"] = "date"
    min: date | None = None
    max: date | None = None

    @field_validator("min", "max", mode="before")
    @classmethod
    def _date_bound(cls, value: Any) -> date | None:
        return to_date_bound(value)

    def validate(self, value: Any) -> date:  # type: ignore[override]
        day = to_date(value)
        self._bounds(day)
        return day

    def render(self, value: Any, locale: str) -> str:
        return value.isoformat()

    def describe(self) -> str:
        return " ".join(filter(None, ["date", self._range()]))

    def json(self, value: Any) -> str:  # type: ignore[override]
        return json.dumps(value.isoformat())


SlotType = Annotated[
    IntSlot | DecimalSlot | MoneySlot | ChoiceSlot | PatternSlot | DateSlot,
    Field(discriminator="type"),
]
SLOT_TYPES: dict[str, type[_Slot]] = {
    cls.kind: cls for cls in (IntSlot, DecimalSlot, MoneySlot, ChoiceSlot, PatternSlot, DateSlot)
}
_ADAPTER: TypeAdapter[Any] = TypeAdapter(SlotType)


def parse_slot(declaration: Any) -> _Slot:
    """A slot type from its declaration (a dict with `type`); raises pydantic's ValidationError."""
    return _ADAPTER.validate_python(declaration)


# --- templates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placeholder:
    """A ``{name}`` in a template."""

    name: str


@dataclass(frozen=True)
class TemplateFault:
    """A malformed brace in a template: where (offset, length in the text) and what."""

    offset: int
    length: int
    message: str
    hint: str


@dataclass(frozen=True)
class Template:
    """A parsed template: literal strings and placeholders, in order."""

    source: str
    segments: tuple[str | Placeholder, ...]
    offsets: tuple[int, ...]  # offset of each placeholder's "{" in `source`, in order
    faults: tuple[TemplateFault, ...] = ()

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Placeholder names in order of first appearance."""
        return tuple(dict.fromkeys(s.name for s in self.segments if isinstance(s, Placeholder)))

    def fill(self, text_of: Any) -> str:
        """Join the segments, each placeholder replaced by ``text_of(name)``."""
        return "".join(s if isinstance(s, str) else text_of(s.name) for s in self.segments)


_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|\{[^{}]*\}?|\}")


def parse_template(text: str) -> Template:
    """Parse ``text``: ``{name}`` placeholders, ``{{``/``}}`` literal braces; anything else a fault."""
    segments: list[str | Placeholder] = []
    offsets: list[int] = []
    faults: list[TemplateFault] = []
    literal, at = [], 0
    for match in _TOKEN.finditer(text):
        literal.append(text[at:match.start()])
        at = match.end()
        token = match.group()
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif match.group(1) is not None:
            segments.extend(filter(None, ["".join(literal)]))
            literal = []
            segments.append(Placeholder(match.group(1)))
            offsets.append(match.start())
        else:
            faults.append(_template_fault(token, match.start()))
    segments.extend(filter(None, ["".join(literal) + text[at:]]))
    return Template(text, tuple(segments), tuple(offsets), tuple(faults))


def _template_fault(token: str, offset: int) -> TemplateFault:
    if token == "}":
        return TemplateFault(offset, 1, "unmatched '}' in text", "write }} for a literal brace")
    if not token.endswith("}"):
        return TemplateFault(offset, 1, "unmatched '{' in text",
                             "write {{ for a literal brace, or close the placeholder")
    return TemplateFault(offset, len(token), f"bad placeholder {token}: a placeholder is {{name}}, "
                         "with a slot name and no spaces, indexes or attributes",
                         "write {name} for a slot, or {{ and }} for literal braces")
