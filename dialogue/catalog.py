"""Catalogs: versioned TOML files of approved lines, validated on load and rendered safely.

A catalog is data, never executed. Loading checks every entry and reports every fault
with file, line, column, the response id, a caret under the fault and a hint. Rendering
joins the parsed template with each slot's own ``render``: values are printed literally.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PureWindowsPath
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import CatalogError, Location
from .locator import Locator
from .slots import SLOT_TYPES, SlotType, Template, parse_slot, parse_template

__all__ = [
    "Approval",
    "Catalog",
    "CatalogErrors",
    "CatalogWarning",
    "LocaleText",
    "Response",
    "catalog_problems",
    "line_lock",
    "load_catalog",
]

RESPONSE_ID = re.compile(r"[A-Z][A-Z0-9_]*")
CATALOG_ID = re.compile(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*")
SLOT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STATUSES = ("draft", "approved", "retired")
LOCK = r"^[0-9a-f]{16}$"  # a line's `lock`: the first 16 hex digits of a SHA-256


class CatalogWarning(CatalogError):
    """A catalog problem that does not stop it from loading (``dialogue lint`` shows it)."""

    kind = "warning"


class CatalogErrors(CatalogError):
    """Every error of a catalog that cannot load: the first one's fields, all of them in ``errors``."""

    def __init__(self, errors: list[CatalogError]) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, location=first.location, entry=first.entry, hint=first.hint)

    def render(self) -> str:
        if len(self.errors) == 1:
            return self.errors[0].render()
        body = "\n".join(e.render() for e in self.errors)
        return f"{body}\n{len(self.errors)} errors"


# --- the file's shape, as pydantic models --------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeaderSpec(_Spec):
    """The ``[catalog]`` table."""

    id: str
    version: str
    locale: str
    fallback: str
    locales: list[str] | None = None
    name: str | None = None
    require_approval: bool = False
    locale_fallback: bool = True
    voice: bool | list[str] = False


class LocaleSpec(_Spec):
    """A ``[response.locales.XX]`` table; the locks say which text it was made from."""

    text: str
    audio: str | None = None
    source_lock: str | None = Field(None, pattern=LOCK)
    audio_lock: str | None = Field(None, pattern=LOCK)


class ApprovalSpec(_Spec):
    """A response's ``approval = { by = "...", lock = "...", at = "..." }`` record."""

    by: str = Field(min_length=1)
    lock: str = Field(pattern=LOCK)
    at: str | None = None


class ResponseSpec(_Spec):
    """A ``[[response]]`` table; slots are validated one by one (see `dialogue.slots`)."""

    id: str
    text: str
    when: str = ""
    status: Literal["draft", "approved", "retired"] = "draft"
    tags: list[str] = []
    examples: list[str] = []
    audio: str | None = None
    audio_lock: str | None = Field(None, pattern=LOCK)
    approval: ApprovalSpec | None = None
    character: str | None = None
    slots: dict[str, Any] = {}
    locales: dict[str, LocaleSpec] = {}
    required_before: list[str] = []


MODELS: dict[str, type[BaseModel]] = {"catalog": HeaderSpec, "response": ResponseSpec, "locale": LocaleSpec,
                                      "approval": ApprovalSpec}
# keys of the header that older catalogs lack; the catalog hash leaves them out at their defaults
HEADER_SWITCHES = {"require_approval": False, "locale_fallback": True, "voice": False}
TOP_KEYS = ("catalog", "response")

FIELD_HINTS = {
    "catalog.id": 'a lower_snake or kebab-case name: id = "blacksmith"',
    "response.id": 'an UPPER_SNAKE id: id = "OFFER_ITEM"',
    "version": 'a quoted string: version = "1.0.0"',
    "locale": 'the default locale: locale = "en"',
    "fallback": 'the id of the response said when anything fails: fallback = "FALLBACK"',
    "locales": 'every locale the catalog provides: locales = ["en", "de"]',
    "name": 'a human title: name = "The blacksmith"',
    "text": 'the line itself: text = "A fine {item} for {price}."',
    "when": 'one line telling the model when to choose it: when = "the player asks the price"',
    "tags": 'a list of strings: tags = ["trade"]',
    "examples": 'short user messages that lead here: examples = ["how much is the sword?"]',
    "audio": 'a path relative to the catalog file: audio = "audio/en/offer.ogg"',
    "character": 'the speaker: character = "Hilda"',
    "slots": 'a table of slots: [response.slots] then price = { type = "money", currency = "EUR" }',
    "required_before": 'ids this line must be said before: required_before = ["REFUND"]',
    "require_approval": "true when every approved line needs an approval record: require_approval = true",
    "locale_fallback": "false when a line without a current translation must not be said in the default "
                       "locale instead: locale_fallback = false",
    "voice": 'true when every approved line is voiced, or the voiced locales: voice = ["en"]',
    "approval": "written by `dialogue catalog approve CATALOG ID --by NAME`; remove it to withdraw approval",
    "approval.by": 'who approved the line: by = "a.reviewer"',
    "approval.lock": "the line's lock when it was approved (16 hex digits); approve again after a change",
    "source_lock": "the lock of the source line this translation was made from (16 hex digits), "
                   "written by `dialogue catalog import`",
    "audio_lock": "the lock of the text this recording voices (16 hex digits)",
    "slot.currency": 'the unit shown after the amount: currency = "EUR"',
    "slot.options": 'the closed list: options = ["sword", "shield"]',
    "slot.labels": 'per-locale labels: labels = { de = { sword = "Schwert" } }',
    "slot.regex": 'a Python regular expression: regex = "[A-Z]{2}[0-9]{6}"',
    "slot.max_length": "the longest value allowed, 1 to 256: max_length = 8",
    "slot.places": "the decimal places shown: places = 2",
    "slot.min": "a lower bound: min = 0",
    "slot.max": "an upper bound: max = 100",
}
TYPE_SYNONYMS = {"integer": "int", "number": "decimal", "float": "decimal", "currency": "money",
                 "enum": "choice", "str": "pattern", "string": "pattern", "text": "pattern",
                 "regex": "pattern", "datetime": "date"}


class LocaleText(NamedTuple):
    """A response's text (and voice asset) in one locale, with the locks they were made from."""

    text: str
    audio: str | None = None
    source_lock: str | None = None  # the default line's lock when this text was translated
    audio_lock: str | None = None  # the lock of this locale's text when the audio was recorded


class Approval(NamedTuple):
    """Who approved a line, and which lock (text and slots) they approved."""

    by: str
    lock: str
    at: str | None = None


def line_lock(id: str, text: str, slots: Mapping[str, Any]) -> str:
    """The lock of a line: a content hash of its id, text and slot declarations (16 hex digits)."""
    body = {"id": id, "text": text, "slots": [[name, slot.declaration()] for name, slot in slots.items()]}
    return _sha256(body)[:16]


# --- responses and the catalog -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Response:
    """One line of a catalog: its template, typed slots, status and translations."""

    id: str
    text: str
    when: str
    status: str
    tags: tuple[str, ...]
    examples: tuple[str, ...]
    audio: str | None
    character: str | None
    slots: dict[str, SlotType]
    locales: dict[str, LocaleText]
    template: Template = field(repr=False)
    required_before: tuple[str, ...] = ()
    default_locale: str = "en"
    templates: dict[str, Template] = field(default_factory=dict, repr=False)
    approval: Approval | None = None
    audio_lock: str | None = None
    declared_status: str = ""  # `status` as written; `status` is "draft" where the approval does not hold
    locale_fallback: bool = True  # whether a missing or stale translation falls back to the default text

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Placeholder names of the default text, in order of first appearance."""
        return self.template.placeholders

    @cached_property
    def lock(self) -> str:
        """A content hash of the line (id, text, slot declarations); status and hints do not count."""
        return line_lock(self.id, self.text, self.slots)

    def lock_for(self, locale: str | None) -> str | None:
        """The lock of the line's text in `locale` (the line's `lock` for the default), or None."""
        text = self.text_for(locale)
        return None if text is None else line_lock(self.id, text, self.slots)

    def translation_stale(self, locale: str) -> bool:
        """Whether the `locale` text was translated from an earlier default text (by its source_lock)."""
        entry = self.locales.get(locale)
        return bool(entry and entry.source_lock and entry.source_lock != self.lock)

    def audio_stale(self, locale: str | None) -> bool:
        """Whether the `locale` recording voices an earlier text than the current one (by its audio_lock)."""
        if locale is None or locale == self.default_locale:
            recorded = self.audio_lock if self.audio else None
        else:
            entry = self.locales.get(locale)
            recorded = entry.audio_lock if entry and entry.audio else None
        return bool(recorded and recorded != self.lock_for(locale))

    @property
    def stale_locales(self) -> tuple[str, ...]:
        """The locales whose translation was made from an earlier default text."""
        return tuple(locale for locale in self.locales if self.translation_stale(locale))

    def rendered_locale(self, locale: str | None) -> str | None:
        """The locale whose text is said for `locale`: its own current translation, else the default
        locale where fallback is allowed, else None (the line cannot be said in `locale`)."""
        if locale is None or locale == self.default_locale:
            return self.default_locale
        if locale in self.templates and not self.translation_stale(locale):
            return locale
        return self.default_locale if self.locale_fallback else None

    def text_for(self, locale: str | None) -> str | None:
        """The text in `locale` (the default text for the default locale), or None when missing."""
        if locale is None or locale == self.default_locale:
            return self.text
        entry = self.locales.get(locale)
        return entry.text if entry else None

    def audio_for(self, locale: str | None) -> str | None:
        """The voice asset of the text said for `locale`, as written in the catalog; None when that
        text has no recording, or only one of an earlier text (a stale recording is not played)."""
        used = self.rendered_locale(locale)
        if used is None:
            return None
        audio = self.audio if used == self.default_locale else self.locales[used].audio
        return None if audio is None or self.audio_stale(used) else audio

    def template_for(self, locale: str | None) -> tuple[Template, str]:
        """The parsed template said for `locale` and the locale it is in (see `rendered_locale`)."""
        used = self.rendered_locale(locale)
        if used is None:
            raise CatalogError(f"{self.id} has no current {locale} text, and the catalog does not fall back "
                               f"to {self.default_locale}", entry=self.id,
                               hint=f"translate it ([response.locales.{locale}] text = ...), or set "
                                    "locale_fallback = true in [catalog]")
        return (self.template if used == self.default_locale else self.templates[used]), used


class Catalog:
    """A validated catalog: responses by id in file order, the fallback, hashes and rendering."""

    def __init__(self, header: HeaderSpec, responses: list[Response], *, source: str,
                 path: Path | None, lines: dict[Any, int], warnings: list[CatalogError]) -> None:
        self.id, self.version, self.name = header.id, header.version, header.name
        self.locale, self.fallback = header.locale, header.fallback
        self.locales: tuple[str, ...] = tuple(header.locales or [header.locale])
        self.require_approval, self.locale_fallback = header.require_approval, header.locale_fallback
        self.voice: tuple[str, ...] = _voiced(header, self.locales)
        self.responses: dict[str, Response] = {r.id: r for r in responses}
        self.source, self.path = source, path
        self.warnings: tuple[CatalogError, ...] = tuple(warnings)
        self._lines = lines
        self._file = str(path) if path else "<string>"
        self.hash = _sha256({"catalog": _canonical_header(header) | {"locales": list(self.locales)},
                             "responses": [_canonical_response(r) for r in responses]})

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        """Load and validate a catalog file; raises CatalogErrors listing every error."""
        path = Path(path)
        try:
            text = _read(path)
        except CatalogError as exc:
            raise CatalogErrors([exc]) from None
        return cls.from_text(text, path=str(path))

    @classmethod
    def from_text(cls, text: str, path: str = "<string>") -> Catalog:
        """A catalog from TOML text; `path` names it in messages and anchors audio paths."""
        catalog, problems = _Analysis(text, path).run()
        errors = [p for p in problems if p.kind == "error"]
        if errors or catalog is None:
            raise CatalogErrors(errors)
        return catalog

    def __repr__(self) -> str:
        return f"<Catalog {self.id} {self.version} ({len(self)} responses)>"

    def __getitem__(self, id: str) -> Response:
        try:
            return self.responses[id]
        except KeyError:
            raise CatalogError(f"catalog {self.id!r} has no response {id}", entry=id,
                               hint=_did_you_mean(id, self.responses) or "ids are UPPER_SNAKE") from None

    def __contains__(self, id: object) -> bool:
        return id in self.responses

    def __iter__(self) -> Iterator[Response]:
        return iter(self.responses.values())

    def __len__(self) -> int:
        return len(self.responses)

    def line_of(self, id: str) -> int | None:
        """The 1-based line of the response's ``id =`` in the source, or None."""
        return self._lines.get(id)

    def required_before(self, id: str) -> tuple[str, ...]:
        """The ids that must have been said before `id` (they name it in `required_before`)."""
        return tuple(r.id for r in self if id in r.required_before)

    def emittable(self, id: str, *, allow_drafts: bool = False, locale: str | None = None) -> bool:
        """Whether the line may be sent: approved (its approval holding), or draft when drafts are
        allowed; never retired; with `locale`, only when it has a text to say in that locale."""
        response = self.responses.get(id)
        if response is None:
            return False
        if locale is not None and response.rendered_locale(locale) is None:
            return False
        return response.status == "approved" or (allow_drafts and response.status == "draft")

    def check_slots(self, id: str, slots: Mapping[str, Any] | None) -> dict[str, Any]:
        """Normalized values for exactly the declared slots; CatalogError names the slot and problem."""
        response = self[id]
        slots = {} if slots is None else slots
        if not isinstance(slots, Mapping):
            raise CatalogError(f"slot values for {id} must be a mapping, not {type(slots).__name__}", entry=id)
        self._exact_slots(response, slots)
        return {name: self._slot_value(response, name, slots[name]) for name in response.slots}

    def render(self, id: str, slots: Mapping[str, Any] | None = None, locale: str | None = None) -> str:
        """The line's text with validated slot values, in `locale`; where that locale has no current
        translation, the default text if the catalog falls back (`locale_fallback`), else CatalogError."""
        values = self.check_slots(id, slots)
        response = self[id]
        template, used = response.template_for(self._locale(locale))
        return template.fill(lambda name: response.slots[name].render(values[name], used))

    def _locale(self, locale: str | None) -> str:
        if locale is None:
            return self.locale
        if locale not in self.locales:
            raise CatalogError(f"catalog {self.id!r} has no locale {locale!r}",
                               hint=f"locales: {', '.join(self.locales)}")
        return locale

    def _exact_slots(self, response: Response, slots: Mapping[str, Any]) -> None:
        missing = [n for n in response.slots if n not in slots]
        extra = [n for n in slots if n not in response.slots]
        if not (missing or extra):
            return
        parts = [f"missing {', '.join(missing)}" if missing else "",
                 f"unknown {', '.join(map(str, extra))}" if extra else ""]
        declared = ", ".join(f"{n} ({s.describe()})" for n, s in response.slots.items()) or "no slots"
        raise CatalogError(f"wrong slots for {response.id}: {'; '.join(filter(None, parts))}",
                           location=self._where(response.id), entry=response.id,
                           hint=f"{response.id} takes exactly: {declared}")

    def _slot_value(self, response: Response, name: str, value: Any) -> Any:
        slot = response.slots[name]
        try:
            return slot.validate(value)
        except (ValueError, TypeError) as exc:
            raise CatalogError(f"slot {name} of {response.id}: {exc}", location=self._where((response.id, name)),
                               entry=response.id, hint=f"{name} is {slot.describe()}") from None

    def _where(self, key: Any) -> Location | None:
        line = self._lines.get(key)
        if line is None:
            return None
        lines = self.source.splitlines()
        return Location(self._file, line, None, lines[line - 1] if line <= len(lines) else None)


def load_catalog(path: str | Path) -> Catalog:
    """Load and validate a catalog file; raise its first error, with all others in the message."""
    return Catalog.load(path)


def catalog_problems(path_or_text: str | Path, path: str | None = None) -> list[CatalogError]:
    """Every error and warning of a catalog: a file (a Path, or a str without newlines) or text.

    With `path=` the first argument is always the TOML text and `path` names it in messages.
    """
    if path is None and (isinstance(path_or_text, Path) or "\n" not in path_or_text):
        path = str(path_or_text)
        try:
            text = _read(Path(path_or_text))
        except CatalogError as exc:
            return [exc]
    else:
        text = str(path_or_text)
    return _Analysis(text, path or "<string>").run()[1]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read catalog: {exc}", location=Location(str(path)),
                           hint="check the path, and that the file is UTF-8 text") from None


def _sha256(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical_header(header: HeaderSpec) -> dict[str, Any]:
    """The header as hashed: the switches newer than the first catalogs only where they are set."""
    data = header.model_dump(mode="json")
    return {k: v for k, v in data.items() if k not in HEADER_SWITCHES or v != HEADER_SWITCHES[k]}


def _canonical_response(r: Response) -> dict[str, Any]:
    body = {"id": r.id, "text": r.text, "when": r.when, "status": r.status, "tags": list(r.tags),
            "examples": list(r.examples), "audio": r.audio, "character": r.character,
            "slots": [[n, s.declaration()] for n, s in r.slots.items()],
            "locales": {k: _canonical_locale(v) for k, v in r.locales.items()},
            "required_before": list(r.required_before)}
    extra = {"approval": list(r.approval) if r.approval else None, "audio_lock": r.audio_lock}
    return body | {k: v for k, v in extra.items() if v is not None}


def _canonical_locale(entry: LocaleText) -> list:
    """A translation as hashed: text and audio, then its locks where recorded."""
    return list(entry[:2]) + ([entry.source_lock, entry.audio_lock] if entry.source_lock or entry.audio_lock else [])


def _voiced(header: HeaderSpec, locales: tuple[str, ...]) -> tuple[str, ...]:
    """The locales whose approved lines must have recordings: none, all, or those listed."""
    if header.voice is True:
        return locales
    return tuple(header.voice) if isinstance(header.voice, list) else ()


def _asset_problem(path: str, base: Path | None) -> str | None:
    """Why an asset path is refused (it is absolute or leaves the catalog's folder), or None."""
    parts = path.replace("\\", "/").split("/")
    if path.startswith(("/", "\\")) or PureWindowsPath(path).drive or ":" in parts[0]:
        return "is absolute"
    if ".." in parts:
        return "leaves the catalog's folder (..)"
    if base is not None:
        root = base.resolve()
        if not (root / path).resolve().is_relative_to(root):
            return "leaves the catalog's folder (through a link)"
    return None


_DEEP_HINT = ("a catalog needs a few levels: [[response]], [response.slots], an inline table for a slot; "
              "write the values flat")


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _join_hints(*hints: str) -> str:
    return "; ".join(h for h in hints if h)


# --- the analysis: every error and warning of one catalog text -----------------------------


@dataclass
class _Block:
    """One [[response]] as far as it validated: its index, spec, good slots and names of bad ones."""

    n: int
    spec: ResponseSpec | None
    raw_id: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    broken_slots: set[str] = field(default_factory=set)
    templates: dict[str, Template] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        return self.spec.id if self.spec else None


class _Analysis:
    """Collects every error and warning of one catalog text, then builds the Catalog if none."""

    def __init__(self, text: str, file: str) -> None:
        self.text, self.file = text, file
        self.base = None if file.startswith("<") else Path(file).parent
        self.where = Locator(text)
        self.problems: list[CatalogError] = []
        self.fallback_id: Any = None

    def run(self) -> tuple[Catalog | None, list[CatalogError]]:
        data = self._parse()
        if data is None:
            return None, self.problems
        header = self._header(data)
        blocks = [self._block(n, raw) for n, raw in enumerate(self._response_tables(data))]
        locales = tuple((header.locales or [header.locale]) if header else ())
        for block in blocks:
            self._check_block(block, locales, header)
        if header is not None:
            self._check_catalog(header, blocks)
        self.problems.sort(key=_line_key)
        if any(p.kind == "error" for p in self.problems) or header is None:
            return None, self.problems
        return self._build(header, blocks), self.problems

    # reporting

    def report(self, path: tuple, message: str, hint: str, *, entry: str | None = None,
               value: bool = False, warning: bool = False) -> None:
        """Add a problem located at `path` (its value when `value`), or at its nearest ancestor."""
        found = self.where.find(path)
        location = Location(self.file)
        if found is not None:
            at, spot = found
            exact_value = value and at == path and spot.value_column is not None
            column, span = (spot.value_column, spot.value_length) if exact_value else (spot.column, spot.length)
            location = self._location(spot.line, column, span)
        self.add(message, location, hint, entry, warning)

    def add(self, message: str, location: Location, hint: str, entry: str | None, warning: bool = False) -> None:
        cls = CatalogWarning if warning else CatalogError
        self.problems.append(cls(message, location=location, entry=entry, hint=hint or None))

    def _location(self, line: int, column: int | None, span: int = 1) -> Location:
        lines = self.where.lines
        source = lines[line - 1] if 0 < line <= len(lines) else None
        return Location(self.file, line, column, source, span)

    def report_in_text(self, path: tuple, pick: Any, message: str, hint: str, entry: str | None) -> None:
        """Add a problem at a token inside the template string at `path` (the value, if not found)."""
        spot = self.where.spots.get(path)
        place = self.where.in_string(spot, pick) if spot else None
        if place is None:
            self.report(path, message, hint, entry=entry, value=True)
        else:
            self.add(message, self._location(*place), hint, entry)

    # TOML and top level

    def _parse(self) -> dict | None:
        if self.where.faults:
            for line, column, what in self.where.faults:
                self.add(f"the catalog is too deep here: {what}", self._location(line, column), _DEEP_HINT, None)
            return None
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            self._toml_error(str(exc))
            return None
        except RecursionError:
            self.add("the catalog is nested too deeply to read", self._location(1, 1), _DEEP_HINT, None)
            return None
        for key in data:
            if key not in TOP_KEYS:
                self.report((key,), f"unknown table {key!r}", _join_hints(
                    "a catalog has [catalog] and [[response]] tables", _did_you_mean(key, TOP_KEYS)))
        return data

    def _toml_error(self, message: str) -> None:
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if match:
            line, column = int(match.group(1)), int(match.group(2))
            message = message[:match.start()]
        else:
            line = max(1, len(self.where.lines))
            column = len(self.where.lines[-1]) + 1 if self.where.lines else 1
            message = re.sub(r"\s*\(at end of document\)$", "", message)
        block = self.where.block_of(line)
        entry = self._raw_id(block) if block is not None else None
        self.add(f"TOML syntax: {message}", self._location(line, column), _toml_hint(message), entry)

    def _raw_id(self, n: int) -> str | None:
        spot = self.where.spots.get(("response", n, "id"))
        if spot is None or spot.value_column is None:
            return None
        text = self.where.lines[spot.line - 1][spot.value_column - 1:]
        match = re.match(r"""["']([^"']*)["']""", text)
        return match.group(1) if match else None

    def _header(self, data: dict) -> HeaderSpec | None:
        raw = data.get("catalog")
        if not isinstance(raw, dict):
            what = "no [catalog] table" if raw is None else "catalog must be a table: [catalog]"
            self.add(what, self._location(1, 1), "start the file with [catalog] and its id, version, "
                     "locale and fallback", None)
            return None
        self.fallback_id = raw.get("fallback")
        header = self._validate(HeaderSpec, raw, ("catalog",), None)
        if header is not None:
            self._check_header(header)
        return header

    def _response_tables(self, data: dict) -> list[dict]:
        raw = data.get("response", [])
        if isinstance(raw, list) and all(isinstance(r, dict) for r in raw):
            return raw
        self.report(("response",), "response must be an array of tables: [[response]]",
                    "start each response with [[response]] (two brackets)")
        return []

    # pydantic

    def _validate(self, model: type[BaseModel], raw: dict, prefix: tuple, entry: str | None) -> Any:
        """The model, or None; every fault reported. Bad optional keys are dropped and tried again."""
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            faults = _implied_missing_dropped(exc.errors(include_url=False))
        for fault in faults:
            self._pydantic(fault, prefix, entry, model)
        bad = {f["loc"][0] for f in faults if f["loc"]}
        required = {k for k, f in model.model_fields.items() if f.is_required()}
        if not faults or bad & required or any(not f["loc"] for f in faults):
            return None
        try:  # go on checking the rest of the table without the bad keys
            return model.model_validate({k: v for k, v in raw.items() if k not in bad})
        except ValidationError:
            return None

    def _pydantic(self, fault: dict, prefix: tuple, entry: str | None, model: Any) -> None:
        loc, kind = tuple(fault["loc"]), fault["type"]
        ctx = fault.get("ctx") or {}
        key = str(loc[-1]) if loc else str(prefix[-1])
        path = prefix + loc
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            self.report(path, f"unknown key {key!r} in {_table_name(path[:-1])}", _join_hints(
                f"allowed keys: {', '.join(allowed)}", _did_you_mean(key, allowed)), entry=entry)
        elif kind == "missing":
            self.report(path, f"missing required key {key!r} in {_table_name(path[:-1])}",
                        f"add {_field_hint(path[:-1], key)}", entry=entry)
        elif kind == "literal_error":
            expected = ctx.get("expected", "")
            choices = re.findall(r"'([^']*)'", expected)
            self.report(path, f"bad {key} {fault['input']!r}", _join_hints(
                f"{key} is one of {', '.join(choices)}", _did_you_mean(fault["input"], choices)),
                entry=entry, value=True)
        elif kind == "catalog_slot":
            path = path + ((ctx["key"],) if "key" in ctx else ())
            self.report(path, ctx["message"], ctx["hint"], entry=entry, value=True)
        else:
            self.report(path, f"bad value for {key}: {fault['msg'].lower()}", _field_hint(path[:-1], key),
                        entry=entry, value=True)

    # one response

    def _block(self, n: int, raw: dict) -> _Block:
        raw_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        spec = self._validate(ResponseSpec, raw, ("response", n), raw_id)
        block = _Block(n, spec, raw_id)
        if spec is None:
            return block
        for name, declaration in spec.slots.items():
            self._slot(block, name, declaration)
        return block

    def _slot(self, block: _Block, name: str, declaration: Any) -> None:
        path = ("response", block.n, "slots", name)
        if not SLOT_NAME.fullmatch(name):
            self.report(path, f"slot name {name!r} is not an identifier",
                        "slot names are letters, digits and _, not starting with a digit, e.g. "
                        + (re.sub(r"\W+", "_", name).strip("_") or "amount"), entry=block.id)
            block.broken_slots.add(name)
            return
        try:
            block.slots[name] = parse_slot(declaration)
        except ValidationError as exc:
            block.broken_slots.add(name)
            for fault in _implied_missing_dropped(exc.errors(include_url=False)):
                self._slot_fault(fault, path, block.id)

    def _slot_fault(self, fault: dict, path: tuple, entry: str | None) -> None:
        kind, ctx, name = fault["type"], fault.get("ctx") or {}, path[-1]
        types = ", ".join(SLOT_TYPES)
        if kind == "union_tag_invalid":
            self.report(path + ("type",), f"unknown slot type {ctx.get('tag')!r} for slot {name}",
                        _join_hints(f"type is one of {types}", _type_suggestion(str(ctx.get("tag")))),
                        entry=entry, value=True)
        elif kind == "union_tag_not_found":
            self.report(path, f"slot {name} has no type", f'add type = "..." with one of {types}', entry=entry)
        elif kind in ("model_attributes_type", "model_type", "dict_type"):
            self.report(path, f"slot {name} must be a table", f'write {name} = {{ type = "int", min = 0 }}',
                        entry=entry, value=True)
        else:
            model = SLOT_TYPES.get(str(fault["loc"][0])) if fault["loc"] else None
            self._pydantic(dict(fault, loc=tuple(fault["loc"][1:])), path, entry, model)

    def _check_block(self, block: _Block, locales: tuple[str, ...], header: HeaderSpec | None) -> None:
        spec = block.spec
        if spec is None:
            return
        path = ("response", block.n)
        if not RESPONSE_ID.fullmatch(spec.id):
            suggestion = re.sub(r"[^A-Z0-9]+", "_", spec.id.upper()).strip("_")
            self.report(path + ("id",), f"bad id {spec.id!r}: ids are UPPER_SNAKE",
                        "letters A-Z, digits and _, starting with a letter"
                        + (f', e.g. "{suggestion}"' if RESPONSE_ID.fullmatch(suggestion) else ""),
                        entry=spec.id, value=True)
        block.templates[""] = self._template(block, path + ("text",), spec.text)
        self._check_said_text(block)
        self._check_placeholders(block)
        for locale in spec.locales:
            self._check_locale(block, locale, locales, header)
        for name, slot in block.slots.items():
            self._check_labels(block, name, slot, locales)
        self._warnings(block, locales, header)

    def _check_said_text(self, block: _Block) -> None:
        """An approved line is sent as it is: an empty text (in any locale) would send nothing."""
        spec = block.spec
        assert spec is not None
        if spec.status != "approved":
            return
        texts = [((), spec.text, "")] + [(("locales", k), v.text, f" {k}") for k, v in spec.locales.items()]
        for keys, text, locale in texts:
            if not text.strip():
                self.report(("response", block.n, *keys, "text"), f"{spec.id} is approved but its{locale} text "
                            "is empty", 'write the line, or set status = "draft" until it is written',
                            entry=spec.id, value=True)

    def _template(self, block: _Block, path: tuple, text: str) -> Template:
        template = parse_template(text)
        for i, fault in enumerate(template.faults):
            self.report_in_text(path, lambda t, i=i: _fault_spot(t, i), fault.message, fault.hint, block.id)
        return template

    def _check_placeholders(self, block: _Block) -> None:
        template, path = block.templates[""], ("response", block.n)
        known = set(block.slots) | block.broken_slots
        declared = ", ".join(block.slots) or "none"
        for name in template.placeholders:
            if name in known:
                continue
            self.report_in_text(path + ("text",), lambda t, name=name: _placeholder_spot(t, name),
                                f"placeholder {{{name}}} has no slot",
                                _join_hints(f"declare it under [response.slots] ({name} = {{ type = ... }}) "
                                            f"or fix the name; declared: {declared}",
                                            _did_you_mean(name, block.slots)), block.id)
        for name in block.slots:
            if name not in template.placeholders:
                self.report(path + ("slots", name), f"slot {name} is declared but not used in the text",
                            f"use {{{name}}} in the text, or remove the slot", entry=block.id)

    def _check_locale(self, block: _Block, locale: str, locales: tuple[str, ...], header: HeaderSpec | None) -> None:
        path = ("response", block.n, "locales", locale)
        if header is not None and locale == header.locale:
            self.report(path, f"locale {locale!r} is the default locale", "write the default text in "
                        "text = ... and audio = ... of the response itself", entry=block.id)
        elif locales and locale not in locales:
            self.report(path, f"locale {locale!r} is not in the catalog's locales", _join_hints(
                f'add it to [catalog] locales = [...] (now: {", ".join(locales)}) or remove this table',
                _did_you_mean(locale, locales)), entry=block.id)
        assert block.spec is not None
        template = self._template(block, path + ("text",), block.spec.locales[locale].text)
        block.templates[locale] = template
        self._same_placeholders(block, locale, template, path + ("text",))

    def _same_placeholders(self, block: _Block, locale: str, template: Template, path: tuple) -> None:
        default = block.templates[""].placeholders
        missing = [p for p in default if p not in template.placeholders]
        extra = [p for p in template.placeholders if p not in default]
        if not (missing or extra):
            return
        detail = "; ".join(f"{word} " + ", ".join(f"{{{p}}}" for p in names)
                           for word, names in (("missing", missing), ("unknown", extra)) if names)
        message = f"{locale} text has other placeholders than the default text: {detail}"
        hint = f"a translation uses exactly the default text's placeholders: {', '.join(default) or 'none'}"
        if extra:
            self.report_in_text(path, lambda t: _placeholder_spot(t, extra[0]), message, hint, block.id)
        else:
            self.report(path, message, hint, entry=block.id, value=True)

    def _check_labels(self, block: _Block, name: str, slot: Any, locales: tuple[str, ...]) -> None:
        for locale in getattr(slot, "labels", {}):
            if locales and locale not in locales:
                self.report(("response", block.n, "slots", name, "labels", locale),
                            f"labels for locale {locale!r}, which is not in the catalog's locales",
                            f"locales: {', '.join(locales)}", entry=block.id)

    def _warnings(self, block: _Block, locales: tuple[str, ...], header: HeaderSpec | None) -> None:
        spec, path = block.spec, ("response", block.n)
        assert spec is not None
        is_fallback = spec.id == self.fallback_id
        if not spec.when.strip() and not is_fallback and spec.status != "retired":
            self.report(path + ("id",), f"response {spec.id} has no `when`", 'add when = "...": one line '
                        "telling the model when to choose it", entry=spec.id, warning=True)
        default = header.locale if header else None
        falls_back = header is None or header.locale_fallback or spec.id == self.fallback_id
        said = "the default text is used" if falls_back else "it cannot be said in that locale"
        for locale in locales:
            if locale != default and locale not in spec.locales and spec.status != "retired":
                self.report(path + ("id",), f"response {spec.id} has no {locale} text; {said}",
                            f"add [response.locales.{locale}] with text = ...", entry=spec.id, warning=True)
        self._audio_checks(block)
        if header is not None and not block.broken_slots:
            self._approval_warning(block, header)
            self._stale_warnings(block, said)

    def _approval_warning(self, block: _Block, header: HeaderSpec) -> None:
        spec = block.spec
        assert spec is not None
        problem = _approval_problem(spec, line_lock(spec.id, spec.text, block.slots), header.require_approval)
        if problem is not None and spec.id != header.fallback:  # the fallback's is an error, see below
            at = "approval" if spec.approval else "status"
            self.report(("response", block.n, at), f"{spec.id} is not approved: {problem}",
                        f"review it, then `dialogue catalog approve CATALOG {spec.id} --by NAME`",
                        entry=spec.id, warning=True)

    def _stale_warnings(self, block: _Block, said: str) -> None:
        spec = block.spec
        assert spec is not None
        lock = line_lock(spec.id, spec.text, block.slots)
        for locale, entry in spec.locales.items():
            if entry.source_lock and entry.source_lock != lock:
                self.report(("response", block.n, "locales", locale, "source_lock"),
                            f"the {locale} text of {spec.id} was translated from an earlier text; {said}",
                            "update the translation (`dialogue catalog export` and `import`) and set "
                            f'source_lock = "{lock}"', entry=spec.id, warning=True)
        texts = [((), spec.text, spec.audio, spec.audio_lock)] + [
            (("locales", k), v.text, v.audio, v.audio_lock) for k, v in spec.locales.items()]
        for keys, text, audio, recorded in texts:
            current = line_lock(spec.id, text, block.slots)
            if audio and recorded and recorded != current:
                self.report(("response", block.n, *keys, "audio_lock"), f"audio {audio!r} of {spec.id} voices "
                            "an earlier text; it is not played", f"record it again and set audio_lock = "
                            f'"{current}"', entry=spec.id, warning=True)

    def _audio_checks(self, block: _Block) -> None:
        """Asset paths that leave the catalog's folder are errors; missing files are warnings."""
        spec = block.spec
        assert spec is not None
        assets = [(("audio",), spec.audio)] + [(("locales", k, "audio"), v.audio) for k, v in spec.locales.items()]
        for keys, audio in assets:
            if audio and (problem := _asset_problem(audio, self.base)) is not None:
                self.report(("response", block.n, *keys), f"audio path {audio!r} {problem}",
                            'an asset path is relative to the catalog file and stays inside its folder: '
                            'audio = "audio/en/offer.ogg"', entry=spec.id, value=True)
            elif audio and self.base is not None and not (self.base / audio).exists():
                self.report(("response", block.n, *keys), f"audio file {audio!r} does not exist",
                            "audio paths are relative to the catalog file", entry=spec.id, value=True,
                            warning=True)

    # the catalog as a whole

    def _check_header(self, header: HeaderSpec) -> None:
        if not CATALOG_ID.fullmatch(header.id):
            self.report(("catalog", "id"), f"bad catalog id {header.id!r}",
                        'a lower_snake or kebab-case name: id = "blacksmith"', value=True)
        if header.locales is not None:
            if header.locale not in header.locales:
                self.report(("catalog", "locales"), f"the default locale {header.locale!r} is not in locales",
                            f'add it: locales = {json.dumps([header.locale, *header.locales])}', value=True)
            doubles = sorted({x for x in header.locales if header.locales.count(x) > 1})
            if doubles:
                self.report(("catalog", "locales"), f"locales lists {', '.join(doubles)} more than once",
                            "list each locale once", value=True)
        locales = header.locales or [header.locale]
        unknown = [x for x in header.voice or () if isinstance(header.voice, list) and x not in locales]
        if unknown:
            self.report(("catalog", "voice"), f"voice names {', '.join(unknown)}, not in the catalog's locales",
                        f"voice = true, or a list of: {', '.join(locales)}", value=True)

    def _check_catalog(self, header: HeaderSpec, blocks: list[_Block]) -> None:
        first: dict[str, _Block] = {}
        for block in blocks:
            if block.id is None:
                continue
            if block.id in first:
                line = self.where.spots.get(("response", first[block.id].n, "id"))
                self.report(("response", block.n, "id"), f"duplicate id {block.id}",
                            f"ids are unique; the first {block.id} is on line {line.line if line else '?'}; "
                            "rename or remove one", entry=block.id)
            else:
                first[block.id] = block
        self._check_fallback(header, first, blocks)
        for block in blocks:
            self._check_required(block, first)

    def _check_fallback(self, header: HeaderSpec, ids: dict[str, _Block], blocks: list[_Block]) -> None:
        block = ids.get(header.fallback)
        if block is None:
            if any(b.spec is None and b.raw_id == header.fallback for b in blocks):
                return  # it is there, with errors of its own
            self.report(("catalog", "fallback"), f"fallback {header.fallback!r} is not a response in the catalog",
                        _did_you_mean(header.fallback, ids) or f'add [[response]] id = "{header.fallback}" with '
                        'status = "approved" and no slots: it is said when anything fails', value=True)
            return
        assert block.spec is not None
        if block.spec.slots:
            self.report(("response", block.n, "slots"), f"the fallback {header.fallback} has slots",
                        "the fallback is said when anything fails, so it can take no slot values; "
                        "remove its slots", entry=block.id)
        if block.spec.status != "approved":
            at = "status" if ("response", block.n, "status") in self.where.spots else "id"
            self.report(("response", block.n, at), f"the fallback {header.fallback} is {block.spec.status}, "
                        "not approved", 'set status = "approved": the fallback must always be sendable',
                        entry=block.id, value=at == "status")
        elif not block.broken_slots and (problem := _approval_problem(
                block.spec, line_lock(block.spec.id, block.spec.text, block.slots), header.require_approval)):
            at = "approval" if block.spec.approval else "status"
            self.report(("response", block.n, at), f"the fallback {header.fallback} is not approved: {problem}",
                        f"the fallback must always be sendable; review it, then `dialogue catalog approve "
                        f"CATALOG {header.fallback} --by NAME`", entry=block.id)

    def _check_required(self, block: _Block, ids: dict[str, _Block]) -> None:
        if block.spec is None:
            return
        for target in block.spec.required_before:
            if target == block.id:
                self.report(("response", block.n, "required_before"), f"{target} is required before itself",
                            "remove it from required_before", entry=block.id, value=True)
            elif target not in ids:
                self.report(("response", block.n, "required_before"), f"required_before names {target}, which "
                            "is not in the catalog", _did_you_mean(target, ids) or "name response ids",
                            entry=block.id, value=True)

    def _build(self, header: HeaderSpec, blocks: list[_Block]) -> Catalog:
        responses = [_response(b, header) for b in blocks]
        lines: dict[Any, int] = {}
        for b in blocks:
            for key, keys in [(b.id, ("id",))] + [((b.id, s), ("slots", s)) for s in b.slots]:
                if (spot := self.where.spots.get(("response", b.n, *keys))) is not None:
                    lines[key] = spot.line
        path = None if self.file.startswith("<") else Path(self.file)
        warnings = [p for p in self.problems if p.kind == "warning"]
        return Catalog(header, responses, source=self.text, path=path, lines=lines, warnings=warnings)


def _response(block: _Block, header: HeaderSpec) -> Response:
    spec = block.spec
    assert spec is not None
    lock = line_lock(spec.id, spec.text, block.slots)
    holds = _approval_problem(spec, lock, header.require_approval) is None
    return Response(
        id=spec.id, text=spec.text, when=spec.when, status=spec.status if holds else "draft",
        tags=tuple(spec.tags), examples=tuple(spec.examples), audio=spec.audio, character=spec.character,
        slots=dict(block.slots),
        locales={k: LocaleText(v.text, v.audio, v.source_lock, v.audio_lock) for k, v in spec.locales.items()},
        required_before=tuple(spec.required_before), default_locale=header.locale,
        template=block.templates[""], templates={k: v for k, v in block.templates.items() if k},
        approval=Approval(spec.approval.by, spec.approval.lock, spec.approval.at) if spec.approval else None,
        audio_lock=spec.audio_lock, declared_status=spec.status,
        locale_fallback=header.locale_fallback or spec.id == header.fallback)


def _approval_problem(spec: ResponseSpec, lock: str, required: bool) -> str | None:
    """Why a line written as approved is not approved (its record is for another lock, or it has
    none where the catalog requires one), or None when it is approved or not marked approved.

    A record always counts when there is one; without one, ``status = "approved"`` suffices
    unless the catalog says ``require_approval = true``.
    """
    if spec.status != "approved":
        return None
    if spec.approval is None:
        return "it has no approval record, and the catalog requires one" if required else None
    if spec.approval.lock != lock:
        return (f"its text or slots changed after {spec.approval.by} approved it "
                f"(approved lock {spec.approval.lock}, now {lock})")
    return None


def _line_key(problem: CatalogError) -> int:
    return problem.location.line or 0 if problem.location else 0


def _placeholder_spot(template: Template, name: str) -> tuple[int, int] | None:
    """(offset, length) of the first ``{name}`` in a template."""
    placeholders = [s for s in template.segments if not isinstance(s, str)]
    for offset, segment in zip(template.offsets, placeholders, strict=True):
        if segment.name == name:
            return offset, len(name) + 2
    return None


def _fault_spot(template: Template, i: int) -> tuple[int, int] | None:
    if i >= len(template.faults):
        return None
    return template.faults[i].offset, template.faults[i].length


def _implied_missing_dropped(faults: list) -> list:
    """Faults without "missing key k" where an unknown key is a misspelling of k (one error, not two)."""
    unknown = [str(f["loc"][-1]) for f in faults if f["type"] == "extra_forbidden"]
    def implied(f: dict) -> bool:
        return f["type"] == "missing" and bool(difflib.get_close_matches(str(f["loc"][-1]), unknown, n=1))
    return [f for f in faults if not implied(f)]


def _type_suggestion(tag: str) -> str:
    if tag.lower() in TYPE_SYNONYMS:
        return f"did you mean {TYPE_SYNONYMS[tag.lower()]!r}?"
    return _did_you_mean(tag, SLOT_TYPES)


def _allowed_keys(model: Any, loc: tuple) -> list[str]:
    if model is ResponseSpec and loc[:1] == ("locales",):
        model = LocaleSpec
    elif model is ResponseSpec and loc[:1] == ("approval",):
        model = ApprovalSpec
    keys = list(model.model_fields) if model is not None else []
    return sorted(keys, key=lambda k: k != "type")


def _table_name(path: tuple) -> str:
    """How a message names the table at `path`."""
    if path[:1] == ("catalog",):
        return "[catalog]"
    if path[2:3] == ("approval",):
        return "the approval record"
    if len(path) >= 4 and path[2] in ("slots", "locales"):
        return f"slot {path[3]}" if path[2] == "slots" else f"[response.locales.{path[3]}]"
    return "[[response]]"


def _field_hint(prefix: tuple, key: str) -> str:
    table = "catalog" if prefix[:1] == ("catalog",) else "response"
    table = "slot" if prefix[2:3] == ("slots",) else table
    table = "approval" if prefix[2:3] == ("approval",) else table
    return FIELD_HINTS.get(f"{table}.{key}") or FIELD_HINTS.get(key) or f"{key} = ..."


TOML_HINTS = {
    "Cannot overwrite a value": "a key appears twice in this table; keep one",
    "Cannot declare": "this table is declared twice; merge them",
    "Unterminated string": 'close the string on the same line, or use """ for text over several lines',
    "Illegal character": 'close the string on the same line, or use """ for text over several lines',
    "Invalid value": 'values are "quoted text", numbers, true/false, [arrays] or { inline tables }',
    "Expected '=' after a key": "write key = value; a key with spaces needs quotes",
    "Invalid statement": "each line is a [table], [[response]], or key = value",
}


def _toml_hint(message: str) -> str:
    for prefix, hint in TOML_HINTS.items():
        if message.startswith(prefix):
            return hint
    return "fix the TOML syntax at the caret (https://toml.io)"
