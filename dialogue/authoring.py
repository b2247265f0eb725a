"""Catalog authoring: edit a catalog file in place, approve lines, diff, export, import, check.

The command line (``dialogue catalog ...``) and the TUI's catalog editor both work through
`CatalogDocument`, which edits the TOML with tomlkit so comments and layout stay as written.

Three records make the workflow checkable, all kept in the catalog file and so reviewable
in git next to the text they concern. Each names a *lock*, the content hash of a text
(`dialogue.catalog.line_lock`: id, text, slot declarations):

- ``approval = { by = "...", lock = "...", at = "..." }`` in a response: who approved which
  lock. A line whose text or slots changed since is not approved until approved again.
- ``source_lock`` in ``[response.locales.XX]``: the lock of the source line the translation
  was made from; a different current lock makes the translation stale.
- ``audio_lock`` beside any ``audio``: the lock of the text the recording voices.
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import re
import secrets
import stat
import subprocess
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

import tomlkit
from pydantic import ValidationError

from .catalog import STATUSES, Catalog, CatalogErrors, catalog_problems, line_lock
from .locator import Locator as _Locator
from .errors import CatalogError, Location
from .slots import parse_slot, parse_template

__all__ = [
    "CatalogDiff",
    "CatalogDocument",
    "ImportChange",
    "LineChange",
    "check_catalog",
    "diff_catalogs",
    "export_catalog",
    "import_file",
    "read_revision",
]

# the order keys are written in; a new key goes after the last one before it that is present
RESPONSE_KEYS = ("id", "text", "when", "status", "approval", "character", "tags", "examples", "audio",
                 "audio_lock", "required_before", "slots", "locales")
LOCALE_KEYS = ("text", "source_lock", "audio", "audio_lock")
SETTABLE = {"text": str, "when": str, "status": str, "tags": list, "examples": list, "character": str,
            "slots": dict, "audio": str, "required_before": list}
LOCALE_SETTABLE = ("text", "audio")
EXPORT_FORMATS = ("csv", "xliff", "po")
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the document ------------------------------------------------------------------------------


class CatalogDocument:
    """A catalog file opened for editing: every change keeps the rest of the file byte for byte.

    Changes stay in memory until `save`; `problems` and `catalog` validate the text as it is
    now, exactly as ``dialogue lint`` and the loader would.
    """

    def __init__(self, text: str, path: str | Path = "<string>") -> None:
        self.path = Path(path)
        self._doc = _parse(text, str(path))

    @classmethod
    def load(cls, path: str | Path) -> CatalogDocument:
        """Open a catalog file; CatalogErrors when it cannot be read or is not TOML."""
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"cannot read catalog: {exc}", location=Location(str(path)),
                               hint="check the path, and that the file is UTF-8 text") from None
        return cls(text, path)

    def __repr__(self) -> str:
        return f"<CatalogDocument {self.path}>"

    # reading

    def dumps(self) -> str:
        """The TOML text as it is now."""
        return tomlkit.dumps(self._doc)

    def save(self) -> None:
        """Write the text back to `path`, atomically: a reader sees the old file or the new, whole."""
        try:
            _write_atomically(self.path, self.dumps().encode("utf-8"))
        except (OSError, UnicodeEncodeError) as exc:
            raise CatalogError(f"cannot write catalog: {exc}", location=Location(str(self.path))) from None

    def problems(self) -> list[CatalogError]:
        """Every error and warning of the text as it is now, with file and line (as `dialogue lint`)."""
        return catalog_problems(self.dumps(), path=str(self.path))

    def catalog(self) -> Catalog:
        """The validated Catalog of the text as it is now; CatalogErrors when it has errors."""
        return Catalog.from_text(self.dumps(), path=str(self.path))

    def check(self) -> list[CatalogError]:
        """What stops the text as it is now from shipping (see `check_catalog`)."""
        return check_catalog(self.path, self.dumps())

    def ids(self) -> list[str]:
        """The response ids, in file order."""
        return [str(t.get("id")) for t in self._tables()]

    def responses(self) -> list[dict[str, Any]]:
        """Every line as plain data, in file order; works on a catalog with errors too.

        Keys: id, line (of its ``id =``), text, when, status (as written), state (draft, approved, retired,
        ``changed`` when the text changed after approval, ``unrecorded`` when approved without
        the record the catalog requires), approved (whether the engine may send it), approval
        ({by, lock, at} or None), approval_stale, lock (None while the slots are invalid),
        tags, examples, character, slots, required_before, audio, audio_stale, and
        translations: {locale: {text, audio, source_lock, missing, stale, audio_stale}} for
        every locale of the catalog but the default.
        """
        header, where = self.header(), _Locator(self.dumps())
        lines = [getattr(where.spots.get(("response", n, "id")), "line", start) for n, start in enumerate(where.blocks)]
        return [_line_data(t.unwrap(), header, lines[n] if n < len(lines) else None)
                for n, t in enumerate(self._tables())]

    def response(self, id: str) -> dict[str, Any]:
        """One line as plain data (see `responses`)."""
        for data in self.responses():
            if data["id"] == id:
                return data
        raise self._unknown(id)

    # editing

    def set(self, id: str, field: str, value: Any, locale: str | None = None) -> None:
        """Set one field of a line: text, when, status, tags, examples, character, slots, audio,
        required_before; with `locale`, that locale's text or audio. None removes an optional field.

        A translation or recording set here is recorded as made from the current text (its
        lock). Changing the default text or slots marks translations and recordings that carry
        no lock yet as made from the text before, so they show as stale.
        """
        table = self._table(id)
        if locale is not None and locale != self.header().get("locale"):
            self._set_locale(table, id, field, value, locale)
            return
        _check_value(id, field, value, SETTABLE)
        if field in table and _plain(table[field]) == value:
            return  # unchanged: the file stays as it is
        if field in ("text", "slots"):
            self._keep_provenance(table)
        if field == "slots":
            self._set_slots(id, table, value or {})
        elif value is None or value == []:
            _remove(table, field)
        else:
            _put(table, field, value, RESPONSE_KEYS)
        if field == "audio" and value:
            self._lock_audio(self._table(id), None)

    def add(self, response: dict[str, Any]) -> None:
        """Append a new line (``status`` defaults to draft); its translations count as current."""
        response = dict(response)
        id = response.get("id")
        if not isinstance(id, str) or not isinstance(response.get("text"), str):
            raise CatalogError("a new response needs an id and a text",
                               hint='add({"id": "GREETING", "text": "Hello."})')
        if id in self.ids():
            raise CatalogError(f"the catalog has a response {id} already", entry=id, hint="choose another id")
        unknown = sorted(set(response) - set(RESPONSE_KEYS) - {"translations"} | {"approval"} & set(response))
        if unknown:
            raise CatalogError(f"unknown keys for a response: {', '.join(unknown)}", entry=id,
                               hint=f"keys: {', '.join(RESPONSE_KEYS)}")
        response.setdefault("status", "draft")
        text = self.dumps().rstrip("\n") + "\n\n" + _response_toml(response)
        self._doc = _parse(text, str(self.path))

    def retire(self, id: str) -> None:
        """Mark a line retired: kept in the file for history, never sent."""
        self.set(id, "status", "retired")

    def approve(self, ids: Iterable[str], by: str, *, at: str | None = None) -> list[dict[str, Any]]:
        """Record that `by` approved the lines' current text and slots (their lock) and mark them
        approved. All or nothing: an unknown, retired or invalid line refuses the whole call."""
        ids, by = list(dict.fromkeys(ids)), (by or "").strip()
        if not by:
            raise CatalogError("an approval needs a name", hint="--by NAME: who reviewed the lines")
        if not ids:
            raise CatalogError("no line to approve", hint="name one or more response ids")
        records = [self._approval_of(id, by, at or _now()) for id in ids]
        trial = CatalogDocument(self.dumps(), self.path)
        for record in records:
            table = trial._table(record["id"])
            _put(table, "status", "approved", RESPONSE_KEYS)
            _put(table, "approval", {"by": by, "lock": record["lock"], "at": record["at"]}, RESPONSE_KEYS)
        errors = [p for p in trial.problems() if p.kind == "error" and p.entry in ids]
        if errors:
            raise CatalogErrors(errors)
        self._doc = trial._doc
        return records

    def _approval_of(self, id: str, by: str, at: str) -> dict[str, Any]:
        line = _line_data(self._table(id).unwrap(), self.header(), None)
        if line["status"] == "retired":
            raise CatalogError(f"{id} is retired and cannot be approved", entry=id,
                               hint='set status = "draft" first if it is to be said again')
        if line["lock"] is None:
            errors = [p for p in self.problems() if p.kind == "error" and p.entry == id]
            raise CatalogErrors(errors or [CatalogError(f"{id} has no valid id, text and slots", entry=id,
                                                        hint="run `dialogue lint` on the catalog")])
        return {"id": id, "lock": line["lock"], "by": by, "at": at, "text": line["text"]}

    def header(self) -> dict[str, Any]:
        """The ``[catalog]`` table as plain data ({} while it is missing)."""
        header = self._doc.get("catalog")
        return header.unwrap() if isinstance(header, dict) else {}

    def _tables(self) -> list[Any]:
        tables = self._doc.get("response")
        return [t for t in tables if isinstance(t, dict)] if isinstance(tables, list) else []

    def _table(self, id: str) -> Any:
        for table in self._tables():
            if table.get("id") == id:
                return table
        raise self._unknown(id)

    def _unknown(self, id: str) -> CatalogError:
        close = difflib.get_close_matches(str(id), self.ids(), n=1)
        return CatalogError(f"catalog {self.path} has no response {id}", entry=id,
                            hint=f"did you mean {close[0]}?" if close else "ids are UPPER_SNAKE, as in the file")

    def _set_locale(self, table: Any, id: str, field: str, value: Any, locale: str) -> None:
        if field not in LOCALE_SETTABLE:
            raise CatalogError(f"a locale has no field {field!r}", entry=id, hint="per locale: text, audio")
        if value is not None and not isinstance(value, str):
            raise CatalogError(f"{locale} {field} of {id} must be a string", entry=id)
        locales = table.get("locales")
        entry = locales.get(locale) if isinstance(locales, dict) else None
        if entry is None:
            if value is None:
                return
            if field == "audio":
                raise CatalogError(f"{id} has no {locale} text to record", entry=id,
                                   hint=f"set the {locale} text first")
            self._insert_locale(id, locale, value)
            return
        self._edit_locale(id, entry, field, value, locale)

    def _edit_locale(self, id: str, entry: Any, field: str, value: Any, locale: str) -> None:
        if value is None and field == "text":  # no text, no translation: the whole table goes
            self._delete_table(id, ("locales", locale))
            return
        if value is None:
            _remove(entry, "audio")
            _remove(entry, "audio_lock")
            return
        if field == "text" and entry.get("audio") and not entry.get("audio_lock"):
            _put(entry, "audio_lock", self._lock(id, entry.get("text")), LOCALE_KEYS)
        _put(entry, field, value, LOCALE_KEYS)
        if field == "text":
            _put(entry, "source_lock", self._lock(id, self._table(id).get("text")), LOCALE_KEYS)
        else:
            self._lock_audio(self._table(id), locale)

    def _insert_locale(self, id: str, locale: str, text: str) -> None:
        body = {"text": text, "source_lock": self._lock(id, self._table(id).get("text"))}
        self._insert_table(id, f"[response.locales.{_key(locale)}]\n" + _keys_toml(body))

    def _set_slots(self, id: str, table: Any, slots: dict[str, Any]) -> None:
        """Replace the slot declarations: unchanged ones stay as written, others in place or added."""
        current = table.get("slots")
        if not isinstance(current, dict):
            if slots:
                self._insert_table(id, "[response.slots]\n" + _keys_toml(slots))
            return
        if not slots:
            _remove(table, "slots")
            return
        for name in [n for n in current if n not in slots]:
            del current[name]
        for name, declaration in slots.items():
            if current.get(name) != declaration:
                current[name] = _item(declaration)

    def _insert_table(self, id: str, toml: str) -> None:
        """Add a sub-table (``[response.X]``) at the end of the line's block, as text."""
        text = self.dumps()
        lines = text.splitlines(keepends=True)
        blocks = _Locator(text).blocks
        n = self.ids().index(id)
        end = blocks[n + 1] - 1 if n + 1 < len(blocks) else len(lines)
        while end > blocks[n] and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        if not lines[end - 1].endswith("\n"):
            lines[end - 1] += "\n"
        lines.insert(end, toml)
        self._doc = _parse("".join(lines), str(self.path))

    def _delete_table(self, id: str, keys: tuple[str, ...]) -> None:
        """Remove a ``[response.X.Y]`` sub-table of the line, as text: its header to its last key."""
        text = self.dumps()
        lines, where = text.splitlines(keepends=True), _Locator(text)
        n = self.ids().index(id)
        spot = where.spots.get(("response", n, *keys))
        if spot is None or not lines[spot.line - 1].lstrip().startswith("["):
            table = self._table(id)
            for key in keys[:-1]:
                table = table[key]
            del table[keys[-1]]  # an inline table: tomlkit removes the key cleanly
            return
        end = spot.line
        while end < len(lines) and lines[end].strip() and not lines[end].lstrip().startswith(("[", "#")):
            end += 1
        del lines[spot.line - 1:end]
        self._doc = _parse("".join(lines), str(self.path))

    def _keep_provenance(self, table: Any) -> None:
        """Before the source changes: record the current lock on translations and recordings that
        have none, so they show as made from the text before."""
        line = _line_data(table.unwrap(), self.header(), None)
        if line["lock"] is None:
            return
        if table.get("audio") and not table.get("audio_lock"):
            _put(table, "audio_lock", line["lock"], RESPONSE_KEYS)
        locales = table.get("locales")
        for locale, entry in (locales.items() if isinstance(locales, dict) else ()):
            if isinstance(entry, dict) and not entry.get("source_lock"):
                _put(entry, "source_lock", line["lock"], LOCALE_KEYS)

    def _lock(self, id: str, text: Any) -> str | None:
        raw = self._table(id).unwrap()
        return _raw_lock(dict(raw, text=text)) if isinstance(text, str) else None

    def _lock_audio(self, table: Any, locale: str | None) -> None:
        """Record the recording just set as voicing the current text of `locale`."""
        target = table if locale is None else table["locales"][locale]
        lock = self._lock(str(table.get("id")), target.get("text"))
        if lock is not None:
            _put(target, "audio_lock", lock, LOCALE_KEYS if locale else RESPONSE_KEYS)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a file through a temporary one in its folder and `os.replace`: a crash, a full disk or
    a reader at the wrong moment never sees it half written. Keeps its mode; writes through a link."""
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(partial, mode)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _parse(text: str, path: str) -> Any:
    """tomlkit's document of `text`; CatalogErrors with the loader's messages when it is not TOML."""
    try:
        tomllib.loads(text)
        return tomlkit.parse(text)
    except (tomllib.TOMLDecodeError, tomlkit.exceptions.ParseError) as exc:
        errors = [p for p in catalog_problems(text, path=path) if p.kind == "error"]
        raise CatalogErrors(errors or [CatalogError(f"TOML syntax: {exc}", location=Location(path))]) from None


def _check_value(id: str, field: str, value: Any, kinds: dict[str, type]) -> None:
    if field not in kinds:
        raise CatalogError(f"cannot set {field!r} of {id}", entry=id,
                           hint=f"fields: {', '.join(kinds)}; approve with approve(), per locale with locale=")
    if field == "text" and not isinstance(value, str):
        raise CatalogError(f"the text of {id} must be a string", entry=id)
    if value is not None and not isinstance(value, kinds[field]):
        raise CatalogError(f"{field} of {id} must be a {kinds[field].__name__}, not {type(value).__name__}",
                           entry=id)
    if field == "status" and value not in STATUSES:
        raise CatalogError(f"bad status {value!r} for {id}", entry=id, hint=f"one of {', '.join(STATUSES)}")


# --- tomlkit and TOML text ---------------------------------------------------------------------


def _key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else tomlkit.items.String.from_raw(key).as_string()


def _value_toml(value: Any) -> str:
    """A value as TOML text; tables inline, in the ``{ a = 1 }`` style of the example catalogs."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value_toml(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_value_toml(v) for v in value) + "]"
    return tomlkit.item(value).as_string()


def _keys_toml(table: dict[str, Any]) -> str:
    return "".join(f"{_key(k)} = {_value_toml(v)}\n" for k, v in table.items() if v is not None)


def _item(value: Any) -> Any:
    """A tomlkit item for `value` that ends its line."""
    return tomlkit.parse(f"x = {_value_toml(value)}\n").item("x")


def _put(table: Any, key: str, value: Any, order: tuple[str, ...]) -> None:
    """Set `key`: in place where present, else after the last key that comes before it in `order`."""
    if key in table:
        table[key] = _item(value)
        return
    earlier = order[:order.index(key)] if key in order else ()
    before = [k for k in earlier if k in table and not isinstance(table[k], tomlkit.items.Table)]
    container = getattr(table, "value", table)
    if before and hasattr(container, "_insert_after"):
        container._insert_after(before[-1], key, _item(value))
    else:
        table[key] = _item(value)


def _plain(item: Any) -> Any:
    """A tomlkit item as plain Python data."""
    return item.unwrap() if hasattr(item, "unwrap") else item


def _remove(table: Any, key: str) -> None:
    if key in table:
        del table[key]


def _response_toml(response: dict[str, Any]) -> str:
    """A new ``[[response]]`` block as TOML text."""
    keys = {k: response[k] for k in RESPONSE_KEYS if k in response and k not in ("slots", "locales")}
    out = "[[response]]\n" + _keys_toml(keys)
    slots = response.get("slots") or {}
    if slots:
        out += "[response.slots]\n" + _keys_toml(slots)
    lock = _raw_lock(response)
    translations = response.get("translations") or response.get("locales") or {}
    for locale, entry in translations.items():
        entry = {"text": entry} if isinstance(entry, str) else dict(entry)
        entry.setdefault("source_lock", lock)
        out += f"[response.locales.{_key(locale)}]\n" + _keys_toml({k: entry.get(k) for k in LOCALE_KEYS})
    return out


# --- plain data of a line ------------------------------------------------------------------------


def _raw_lock(raw: dict[str, Any]) -> str | None:
    """The lock of a line from its raw table, or None while its id, text or slots are invalid."""
    if not isinstance(raw.get("id"), str) or not isinstance(raw.get("text"), str):
        return None
    slots = raw.get("slots") or {}
    try:
        parsed = {name: parse_slot(decl) for name, decl in slots.items()} if isinstance(slots, dict) else None
    except (ValidationError, TypeError):
        return None
    return None if parsed is None else line_lock(raw["id"], raw["text"], parsed)


def _line_data(raw: dict[str, Any], header: dict[str, Any], line: int | None) -> dict[str, Any]:
    lock = _raw_lock(raw)
    approval = raw.get("approval") if isinstance(raw.get("approval"), dict) else None
    status = raw.get("status", "draft")
    state = _state(status, approval, lock, bool(header.get("require_approval")))
    default = header.get("locale")
    locales = [x for x in (header.get("locales") or [default]) if x != default]
    entries = raw.get("locales") if isinstance(raw.get("locales"), dict) else {}
    return {
        "id": raw.get("id"), "line": line, "text": raw.get("text"), "when": raw.get("when", ""),
        "status": status, "state": state, "approved": state == "approved",
        "approval": dict(approval) if approval else None,
        "approval_stale": bool(approval and lock and approval.get("lock") != lock),
        "lock": lock, "tags": list(raw.get("tags", [])), "examples": list(raw.get("examples", [])),
        "character": raw.get("character"), "slots": dict(raw.get("slots") or {}),
        "required_before": list(raw.get("required_before", [])),
        "audio": raw.get("audio"), "audio_stale": _audio_stale(raw, raw),
        "translations": {x: _translation(raw, entries.get(x), lock)
                         for x in locales + sorted(set(entries) - set(locales))},
    }


def _state(status: str, approval: dict | None, lock: str | None, required: bool) -> str:
    if status != "approved":
        return status
    if approval is not None:
        return "approved" if approval.get("lock") == lock else "changed"
    return "unrecorded" if required else "approved"


def _translation(raw: dict[str, Any], entry: Any, lock: str | None) -> dict[str, Any]:
    if not isinstance(entry, dict):
        return {"text": None, "audio": None, "source_lock": None, "missing": True, "stale": False,
                "audio_stale": False}
    source = entry.get("source_lock")
    return {"text": entry.get("text"), "audio": entry.get("audio"), "source_lock": source, "missing": False,
            "stale": bool(source and lock and source != lock), "audio_stale": _audio_stale(raw, entry)}


def _audio_stale(raw: dict[str, Any], entry: dict[str, Any]) -> bool:
    recorded = entry.get("audio_lock") if entry.get("audio") else None
    current = _raw_lock(dict(raw, text=entry.get("text")))
    return bool(recorded and current and recorded != current)


# --- check ---------------------------------------------------------------------------------------


def check_catalog(path: str | Path, text: str | None = None) -> list[CatalogError]:
    """What stops a catalog from shipping: its errors, a locale without a current text for a
    line in use, and, where the catalog declares voice, an approved line without its recording
    (missing, not on disk, or made for an earlier text). Warnings of `dialogue lint` are left out."""
    path = Path(path)
    problems = catalog_problems(text, path=str(path)) if text is not None else catalog_problems(path)
    errors = [p for p in problems if p.kind == "error"]
    if errors:
        return errors
    catalog = Catalog.from_text(text, str(path)) if text is not None else Catalog.load(path)
    found: list[CatalogError] = []
    for response in catalog:
        if response.declared_status != "retired":
            found += _locale_gaps(catalog, response)
        if response.status == "approved":
            found += _voice_gaps(catalog, response)
    return found


def _at(catalog: Catalog, id: str) -> Location:
    line = catalog.line_of(id)
    lines = catalog.source.splitlines()
    return Location(str(catalog.path or "<string>"), line, None, lines[line - 1] if line else None)


def _locale_gaps(catalog: Catalog, response: Any) -> list[CatalogError]:
    found = []
    for locale in catalog.locales:
        if locale == catalog.locale:
            continue
        if locale not in response.locales:
            found.append(CatalogError(f"{response.id} has no {locale} text", location=_at(catalog, response.id),
                                      entry=response.id, hint=f"add [response.locales.{locale}] text = ..."))
        elif response.translation_stale(locale):
            found.append(CatalogError(f"the {locale} text of {response.id} is stale: it was translated from an "
                                      "earlier text", location=_at(catalog, response.id), entry=response.id,
                                      hint="translate it again (`dialogue catalog export` and `import`)"))
    return found


def _voice_gaps(catalog: Catalog, response: Any) -> list[CatalogError]:
    found = []
    for locale in catalog.voice:
        audio = response.audio if locale == catalog.locale else getattr(response.locales.get(locale), "audio", None)
        problem = None
        if audio is None:
            problem = f"{response.id} has no {locale} recording"
        elif catalog.path is not None and not (catalog.path.parent / audio).exists():
            problem = f"the {locale} recording of {response.id}, {audio!r}, does not exist"
        elif response.audio_stale(locale):
            problem = f"the {locale} recording of {response.id} voices an earlier text"
        if problem:
            found.append(CatalogError(problem, location=_at(catalog, response.id), entry=response.id,
                                      hint="record it (`dialogue catalog export --for voice`), then set audio "
                                           "(audio paths are relative to the catalog file)"))
    return found


# --- diff ----------------------------------------------------------------------------------------


@dataclass
class LineChange:
    """One line changed between two versions: its field changes and what they make stale."""

    id: str
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)  # (field, old, new)
    stale: list[str] = field(default_factory=list)  # "de translation", "en audio", ...


@dataclass
class CatalogDiff:
    """Lines added, removed and changed (by id) between two versions of a catalog."""

    old_name: str
    new_name: str
    header: list[tuple[str, Any, Any]]
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    changed: list[LineChange]

    @property
    def empty(self) -> bool:
        return not (self.header or self.added or self.removed or self.changed)

    def render(self, color: bool = False) -> str:
        """The diff as text; changed words as ``[-old-]{+new+}``, or in red and green with `color`."""
        out = [f"--- {self.old_name}", f"+++ {self.new_name}"]
        out += [f"  [catalog] {key}: {_show(old)} -> {_show(new)}" for key, old, new in self.header]
        out += [_paint(f"+ {r['id']}: {r.get('text', '')!s}", "32", color) for r in self.added]
        out += [_paint(f"- {r['id']}: {r.get('text', '')!s}", "31", color) for r in self.removed]
        for change in self.changed:
            out.append(f"~ {change.id}")
            out += [f"    {name}: {_field_diff(old, new, color)}" for name, old, new in change.fields]
            if change.stale:
                out.append(f"    stale: {', '.join(change.stale)}")
        out.append(f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed")
        return "\n".join(out)


def diff_catalogs(old: str, new: str, old_name: str = "old", new_name: str = "new") -> CatalogDiff:
    """Compare two catalog texts by response id; CatalogErrors when either is not TOML."""
    before, after = _toml_of(old, old_name), _toml_of(new, new_name)
    old_lines, new_lines = _by_id(before), _by_id(after)
    keys = sorted(set(before.get("catalog", {})) | set(after.get("catalog", {})))
    header = [(k, before.get("catalog", {}).get(k), after.get("catalog", {}).get(k)) for k in keys
              if before.get("catalog", {}).get(k) != after.get("catalog", {}).get(k)]
    changed = [c for id in new_lines if id in old_lines if (c := _line_change(old_lines[id], new_lines[id])).fields]
    return CatalogDiff(old_name, new_name, header, [r for id, r in new_lines.items() if id not in old_lines],
                       [r for id, r in old_lines.items() if id not in new_lines], changed)


def read_revision(spec: str) -> tuple[str, str]:
    """The text and name of a catalog given as a file path or as a git revision ``REV:PATH``."""
    path = Path(spec)
    if path.exists() or ":" not in spec:
        try:
            return path.read_text(encoding="utf-8-sig"), spec
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"cannot read {spec}: {exc}", hint="give a catalog file, or a git revision "
                               "like HEAD~1:catalogs/shop.toml") from None
    try:
        done = subprocess.run(["git", "show", spec], capture_output=True, text=True, encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot run git to read {spec}: {exc}") from None
    if done.returncode != 0:
        raise CatalogError(f"git cannot read {spec}: {done.stderr.strip()}",
                           hint="REV:PATH with PATH from the repository root, or ./PATH from here")
    return done.stdout, spec


def _toml_of(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise CatalogErrors([p for p in catalog_problems(text, path=name) if p.kind == "error"]) from None


def _by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tables = data.get("response", [])
    return {r["id"]: r for r in tables if isinstance(r, dict) and isinstance(r.get("id"), str)}


def _line_change(old: dict[str, Any], new: dict[str, Any]) -> LineChange:
    change = LineChange(new["id"])
    for key in RESPONSE_KEYS[1:-1]:
        if old.get(key) != new.get(key):
            change.fields.append((key, old.get(key), new.get(key)))
    old_locales, new_locales = old.get("locales", {}), new.get("locales", {})
    for locale in sorted(set(old_locales) | set(new_locales)):
        before, after = old_locales.get(locale, {}), new_locales.get(locale, {})
        for key in LOCALE_KEYS:
            if before.get(key) != after.get(key):
                change.fields.append((f"{locale} {key}", before.get(key), after.get(key)))
    if change.fields:
        change.stale = _made_stale(old, new)
    return change


def _made_stale(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The translations and recordings in `new` made from an earlier text than `new`'s.

    What each was made from is its recorded lock, or, where it records none and is unchanged
    from `old`, the lock of `old`'s text.
    """
    lock, stale = _raw_lock(new), []
    if _made_from(old, new, "audio", "audio_lock", _raw_lock(old)) not in (None, lock):
        stale.append("audio")
    old_locales = old.get("locales", {})
    for locale, entry in new.get("locales", {}).items():
        before = old_locales.get(locale, {})
        if _made_from(before, entry, "text", "source_lock", _raw_lock(old)) not in (None, lock):
            stale.append(f"{locale} translation")
        was_voiced = _raw_lock(dict(old, text=before.get("text"))) if before.get("text") else None
        voiced = _raw_lock(dict(new, text=entry.get("text")))
        if _made_from(before, entry, "audio", "audio_lock", was_voiced) not in (None, voiced):
            stale.append(f"{locale} audio")
    return stale


def _made_from(old: dict[str, Any], new: dict[str, Any], key: str, lock_key: str, old_lock: str | None) -> str | None:
    """The lock `new[key]` was made from: its recorded lock, else `old_lock` where it is unchanged."""
    if not new.get(key):
        return None
    return new.get(lock_key) or (old_lock if new.get(key) == old.get(key) else None)


def _show(value: Any) -> str:
    return "(none)" if value is None else repr(value) if not isinstance(value, str) else f'"{value}"'


_WORDS = re.compile(r"\s+|\w+|[^\w\s]")


def _field_diff(old: Any, new: Any, color: bool) -> str:
    if not (isinstance(old, str) and isinstance(new, str)):
        return f"{_show(old)} -> {_show(new)}"
    return word_diff(old, new, color)


def word_diff(old: str, new: str, color: bool = False) -> str:
    """`new` with the words changed from `old` marked: ``[-gone-]{+added+}``, or coloured."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append("".join(a[i1:i2]))
            continue
        if i2 > i1:
            out.append(_paint("".join(a[i1:i2]), "31", color) if color else f"[-{''.join(a[i1:i2])}-]")
        if j2 > j1:
            out.append(_paint("".join(b[j1:j2]), "32", color) if color else f"{{+{''.join(b[j1:j2])}+}}")
    return "".join(out)


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


# --- export --------------------------------------------------------------------------------------


@dataclass
class _Row:
    """One line of an export: what a translator or a voice actor needs, and what import checks."""

    id: str
    locale: str
    source: str
    context: str
    slots: str
    character: str
    translation: str = ""
    audio: str = ""
    stale: bool = False
    status: str = ""
    reference: str = ""


TRANSLATION_COLUMNS = ("id", "locale", "source", "context", "slots", "character", "translation", "stale")
VOICE_COLUMNS = ("id", "locale", "character", "text", "context", "slots", "status", "audio", "stale")


def export_catalog(catalog: Catalog, purpose: str = "translation", format: str = "csv",
                   locale: str | None = None) -> str:
    """A file for translators (``purpose="translation"``: csv, xliff or po) or a voice script
    (``purpose="voice"``: csv) with id, text, context (`when`), slots, character, the existing
    translation or recording and a stale flag. Retired lines are left out."""
    if format not in EXPORT_FORMATS:
        raise CatalogError(f"unknown export format {format!r}", hint=f"one of {', '.join(EXPORT_FORMATS)}")
    if purpose == "voice":
        if format != "csv":
            raise CatalogError(f"a voice script is exported as csv, not {format}", hint="--format csv")
        return _csv(VOICE_COLUMNS, _voice_rows(catalog, _voice_locales(catalog, locale)))
    if purpose != "translation":
        raise CatalogError(f"unknown export purpose {purpose!r}", hint="--for translation or --for voice")
    locales = _target_locales(catalog, locale, format)
    if format == "po":
        return _po(catalog, locales[0], _translation_rows(catalog, locales))
    if format == "xliff":
        return _xliff(catalog, locales, _translation_rows(catalog, locales))
    return _csv(TRANSLATION_COLUMNS, _translation_rows(catalog, locales))


def _target_locales(catalog: Catalog, locale: str | None, format: str) -> list[str]:
    targets = [x for x in catalog.locales if x != catalog.locale]
    if locale is not None:
        if locale not in targets:
            raise CatalogError(f"catalog {catalog.id!r} has no locale {locale!r} to translate into",
                               hint=f"translatable locales: {', '.join(targets) or 'none (add [catalog] locales)'}")
        return [locale]
    if not targets:
        raise CatalogError(f"catalog {catalog.id!r} has only its default locale {catalog.locale!r}",
                           hint='add the target locales: [catalog] locales = ["en", "de"]')
    if format == "po" and len(targets) > 1:
        raise CatalogError("a PO file holds one language", hint=f"--locale one of {', '.join(targets)}")
    return targets


def _voice_locales(catalog: Catalog, locale: str | None) -> list[str]:
    if locale is not None:
        if locale not in catalog.locales:
            raise CatalogError(f"catalog {catalog.id!r} has no locale {locale!r}",
                               hint=f"locales: {', '.join(catalog.locales)}")
        return [locale]
    return list(catalog.voice or catalog.locales)


def _slot_notes(response: Any) -> str:
    return "; ".join(f"{{{name}}}: {slot.describe()}" for name, slot in response.slots.items())


def _reference(catalog: Catalog, id: str) -> str:
    return f"{catalog.path or catalog.id}:{catalog.line_of(id) or 0}"


def _translation_rows(catalog: Catalog, locales: list[str]) -> list[_Row]:
    rows = []
    for locale in locales:
        for r in catalog:
            if r.declared_status == "retired":
                continue
            entry = r.locales.get(locale)
            rows.append(_Row(r.id, locale, r.text, r.when, _slot_notes(r), r.character or "",
                             translation=entry.text if entry else "", stale=r.translation_stale(locale),
                             reference=_reference(catalog, r.id)))
    return rows


def _voice_rows(catalog: Catalog, locales: list[str]) -> list[_Row]:
    rows = []
    for locale in locales:
        for r in catalog:
            text = r.text_for(locale)
            if r.declared_status == "retired" or text is None:
                continue
            audio = r.audio if locale == catalog.locale else r.locales[locale].audio
            rows.append(_Row(r.id, locale, text, r.when, _slot_notes(r), r.character or "", audio=audio or "",
                             stale=bool(audio) and r.audio_stale(locale), status=r.status))
    return rows


def _cell(row: _Row, column: str) -> str:
    value = {"text": row.source, "stale": "yes" if row.stale else ""}.get(column, getattr(row, column, ""))
    return str(value)


def _csv(columns: tuple[str, ...], rows: list[_Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(row, c) for c in columns] for row in rows)
    return out.getvalue()


def _po_string(text: str) -> str:
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{body}"'


def _po(catalog: Catalog, locale: str, rows: list[_Row]) -> str:
    head = [f"# {catalog.name or catalog.id}: {catalog.locale} -> {locale}, catalog {catalog.id} {catalog.version}",
            'msgid ""', 'msgstr ""', _po_string("Content-Type: text/plain; charset=UTF-8\n"),
            _po_string(f"Language: {locale}\n"), _po_string(f"X-Catalog: {catalog.id}\n"), ""]
    for row in rows:
        notes = [row.context, f"slots: {row.slots}" if row.slots else "",
                 f"character: {row.character}" if row.character else ""]
        head += [f"#. {note}" for note in notes if note] + [f"#: {row.reference}"]
        head += ["#, fuzzy"] if row.stale else []
        head += [f"msgctxt {_po_string(row.id)}", f"msgid {_po_string(row.source)}",
                 f"msgstr {_po_string(row.translation)}", ""]
    return "\n".join(head)


def _xliff(catalog: Catalog, locales: list[str], rows: list[_Row]) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">']
    for locale in locales:
        out.append(f'  <file original={quoteattr(catalog.id)} source-language={quoteattr(catalog.locale)} '
                   f'target-language={quoteattr(locale)} datatype="plaintext">')
        out.append("    <body>")
        for row in (r for r in rows if r.locale == locale):
            out += _trans_unit(row)
        out += ["    </body>", "  </file>"]
    out.append("</xliff>")
    return "\n".join(out) + "\n"


def _trans_unit(row: _Row) -> list[str]:
    state = "needs-review-translation" if row.stale else "translated" if row.translation else "new"
    notes = [("context", row.context), ("slots", row.slots), ("character", row.character)]
    return ([f"      <trans-unit id={quoteattr(row.id)} resname={quoteattr(row.id)}>",
             f"        <source>{escape(row.source)}</source>",
             f"        <target state={quoteattr(state)}>{escape(row.translation)}</target>"]
            + [f"        <note from={quoteattr(k)}>{escape(v)}</note>" for k, v in notes if v]
            + ["      </trans-unit>"])


# --- import --------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One row read back from a translator's or studio's file, with where it is."""

    line: int
    id: str
    locale: str
    source: str | None
    value: str  # the translation, or the audio path
    stale: bool
    kind: str = "translation"


@dataclass
class ImportChange:
    """A translation or recording an import set: which line, locale and field, old and new value."""

    id: str
    locale: str
    field: str
    old: str | None
    new: str


def import_file(document: CatalogDocument, path: str | Path, format: str | None = None) -> list[ImportChange]:
    """Apply a translated (csv, xliff, po) or recorded (voice csv) export to the document.

    A row counts where its value changed, or its stale flag was cleared (the translator or
    studio confirmed it for the current text); others leave the file untouched. The whole file
    is refused, with file:line for each fault, when a row would change a source text, names an
    unknown line or locale, or a translation's placeholders differ from its source's.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read {path}: {exc}", location=Location(str(path))) from None
    format = format or _format_of(path)
    entries = _READERS[format](text, str(path))
    catalog = document.catalog()
    errors = [e for entry in entries if (e := _import_error(catalog, entry, str(path)))]
    if errors:
        raise CatalogErrors(errors)
    return [change for entry in entries if (change := _apply(document, catalog, entry))]


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    format = {"xlf": "xliff", "xliff": "xliff", "csv": "csv", "po": "po"}.get(suffix)
    if format is None:
        raise CatalogError(f"cannot tell the format of {path} from its name",
                           hint="name it .csv, .xliff (.xlf) or .po, or pass --format")
    return format


def _import_error(catalog: Catalog, entry: _Entry, file: str) -> CatalogError | None:
    where = Location(file, entry.line)
    if entry.id not in catalog:
        close = difflib.get_close_matches(entry.id, list(catalog.responses), n=1)
        return CatalogError(f"catalog {catalog.id!r} has no response {entry.id}", location=where, entry=entry.id,
                            hint=f"did you mean {close[0]}?" if close else "export again from the current catalog")
    if entry.locale not in catalog.locales or (entry.locale == catalog.locale and entry.kind == "translation"):
        targets = [x for x in catalog.locales if x != catalog.locale or entry.kind == "voice"]
        return CatalogError(f"cannot import {entry.locale!r} {entry.kind} into catalog {catalog.id!r}",
                            location=where, entry=entry.id, hint=f"locales: {', '.join(targets)}")
    response = catalog[entry.id]
    expected = response.text if entry.kind == "translation" else response.text_for(entry.locale)
    if entry.source is not None and entry.source != expected:
        return CatalogError(f"the file changes the {'source ' if entry.kind == 'translation' else ''}text of "
                            f"{entry.id}; an import never changes source texts", location=where, entry=entry.id,
                            hint="edit source texts in the catalog, or export again: the catalog text is "
                                 f"{expected!r}")
    if entry.kind == "translation" and entry.value:
        return _placeholder_error(response, entry, where)
    return None


def _placeholder_error(response: Any, entry: _Entry, where: Location) -> CatalogError | None:
    template = parse_template(entry.value)
    hint = f"use exactly the source's placeholders: {', '.join(f'{{{p}}}' for p in response.placeholders) or 'none'}"
    if template.faults:
        return CatalogError(f"{entry.locale} text of {entry.id}: {template.faults[0].message}", location=where,
                            entry=entry.id, hint=template.faults[0].hint)
    missing = [p for p in response.placeholders if p not in template.placeholders]
    extra = [p for p in template.placeholders if p not in response.placeholders]
    if not (missing or extra):
        return None
    detail = "; ".join(f"{word} " + ", ".join(f"{{{p}}}" for p in names)
                       for word, names in (("missing", missing), ("unknown", extra)) if names)
    return CatalogError(f"{entry.locale} text of {entry.id} has other placeholders than its source: {detail}",
                        location=where, entry=entry.id, hint=hint)


def _apply(document: CatalogDocument, catalog: Catalog, entry: _Entry) -> ImportChange | None:
    response = catalog[entry.id]
    if entry.kind == "voice":
        return _apply_audio(document, response, entry)
    current = response.locales.get(entry.locale)
    old = current.text if current else None
    if not entry.value or (entry.value == old and (entry.stale or not response.translation_stale(entry.locale))):
        return None
    document.set(entry.id, "text", entry.value, locale=entry.locale)
    return ImportChange(entry.id, entry.locale, "text", old, entry.value)


def _apply_audio(document: CatalogDocument, response: Any, entry: _Entry) -> ImportChange | None:
    default = entry.locale == response.default_locale
    old = response.audio if default else response.locales[entry.locale].audio
    if not entry.value or (entry.value == old and (entry.stale or not response.audio_stale(entry.locale))):
        return None
    document.set(entry.id, "audio", entry.value, locale=None if default else entry.locale)
    return ImportChange(entry.id, entry.locale, "audio", old, entry.value)


def _flag(value: str) -> bool:
    return value.strip().lower() in ("yes", "y", "true", "1", "stale", "x")


def _read_csv(text: str, file: str) -> list[_Entry]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None) or []
    kind = "voice" if "audio" in header and "translation" not in header else "translation"
    needed = ("id", "locale", "source", "translation") if kind == "translation" else ("id", "locale", "text", "audio")
    missing = [c for c in needed if c not in header]
    if missing:
        raise CatalogErrors([CatalogError(f"the csv has no column {', '.join(missing)}", location=Location(file, 1),
                                          hint=f"the header of an export: {', '.join(needed)}, ...")])
    return list(_csv_entries(reader, header, kind))


def _csv_entries(reader: Any, header: list[str], kind: str) -> Iterator[_Entry]:
    column = {name: i for i, name in enumerate(header)}
    source, value = ("source", "translation") if kind == "translation" else ("text", "audio")
    while True:
        line = reader.line_num + 1
        row = next(reader, None)
        if row is None:
            return
        if not any(cell.strip() for cell in row):
            continue
        cells = {name: row[i] if i < len(row) else "" for name, i in column.items()}
        yield _Entry(line, cells["id"], cells["locale"], cells[source], cells[value],
                     _flag(cells.get("stale", "")), kind)


_PO_LINE = re.compile(r'^(msgctxt|msgid|msgstr|")')


def _read_po(text: str, file: str) -> list[_Entry]:
    entries, locale = [], None
    for block in _po_blocks(text.splitlines(), file):
        if block["msgid"] == "" and "msgctxt" not in block:
            locale = _po_language(block["msgstr"])
            continue
        if "msgctxt" not in block:
            raise CatalogErrors([CatalogError("a PO entry without msgctxt (the response id)",
                                              location=Location(file, block["line"]),
                                              hint="export again: each entry's msgctxt is its response id")])
        entries.append(_Entry(block["line"], block["msgctxt"], locale or "", block["msgid"], block["msgstr"],
                              "fuzzy" in block["flags"]))
    if locale is None:
        raise CatalogErrors([CatalogError("the PO file names no language", location=Location(file, 1),
                                          hint='its header needs "Language: de\\n"')])
    return entries


def _po_language(header: str) -> str | None:
    match = re.search(r"^Language:\s*(\S+)", header, re.M)
    return match.group(1) if match else None


def _po_blocks(lines: list[str], file: str) -> Iterator[dict[str, Any]]:
    """PO entries as dicts of msgctxt, msgid, msgstr (unescaped), flags, and the msgstr's line."""
    block: dict[str, Any] = {"flags": set()}
    key = None
    for number, raw in enumerate(lines + [""], 1):
        line = raw.strip()
        if not line:
            if "msgid" in block:
                yield block
            block, key = {"flags": set()}, None
        elif line.startswith("#,"):
            block["flags"].update(f.strip() for f in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif match := _PO_LINE.match(line):
            key = match.group(1) if match.group(1) != '"' else key
            if key is None:
                raise CatalogErrors([CatalogError("a string outside any msgid or msgstr",
                                                  location=Location(file, number))])
            if match.group(1) in ("msgctxt", "msgid") and "line" not in block or match.group(1) == "msgstr":
                block["line"] = number
            block[key] = block.get(key, "") if match.group(1) == '"' else ""
            block[key] += _po_unquote(line[len(match.group(1)):].strip() if match.group(1) != '"' else line,
                                      file, number)
        else:
            raise CatalogErrors([CatalogError(f"not a PO line: {line[:40]!r}", location=Location(file, number),
                                              hint="msgctxt, msgid, msgstr, a quoted string, or a # comment")])


def _po_unquote(text: str, file: str, number: int) -> str:
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise CatalogErrors([CatalogError("a PO string must be in double quotes", location=Location(file, number))])
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    return re.sub(r'\\(.)', lambda m: escapes.get(m.group(1), m.group(0)), text[1:-1])


class _XliffReader:
    """Reads trans-units of an XLIFF 1.2 file with expat, which reports the line of each element."""

    def __init__(self, file: str) -> None:
        self.file, self.entries, self.locale = file, [], ""
        self.unit: dict[str, Any] | None = None
        self.into: str | None = None
        self.parser = expat.ParserCreate()
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.parser.CharacterDataHandler = self.text
        self.parser.StartDoctypeDeclHandler = self.doctype

    def read(self, text: str) -> list[_Entry]:
        try:
            self.parser.Parse(text.encode("utf-8"), True)
        except expat.ExpatError as exc:
            raise CatalogErrors([CatalogError(f"not well-formed XML: {expat.ErrorString(exc.code)}",
                                              location=Location(self.file, exc.lineno, exc.offset + 1))]) from None
        return self.entries

    def doctype(self, *args: Any) -> None:
        raise CatalogErrors([CatalogError("an XLIFF file with a DOCTYPE is refused",
                                          location=Location(self.file, self.parser.CurrentLineNumber))])

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = name.rsplit(":", 1)[-1]
        if tag == "file":
            self.locale = attrs.get("target-language", "")
        elif tag == "trans-unit":
            self.unit = {"id": attrs.get("resname") or attrs.get("id", ""), "source": "", "target": None,
                         "state": "", "line": self.parser.CurrentLineNumber}
        elif tag in ("source", "target") and self.unit is not None:
            self.into = tag
            if tag == "target":
                self.unit.update(target="", state=attrs.get("state", ""), line=self.parser.CurrentLineNumber)

    def end(self, name: str) -> None:
        tag = name.rsplit(":", 1)[-1]
        if tag in ("source", "target"):
            self.into = None
        elif tag == "trans-unit" and self.unit is not None:
            unit = self.unit
            self.entries.append(_Entry(unit["line"], unit["id"], self.locale, unit["source"], unit["target"] or "",
                                       unit["state"].startswith("needs-")))
            self.unit = None

    def text(self, data: str) -> None:
        if self.unit is not None and self.into is not None:
            self.unit[self.into] += data


def _read_xliff(text: str, file: str) -> list[_Entry]:
    return _XliffReader(file).read(text)


_READERS = {"csv": _read_csv, "po": _read_po, "xliff": _read_xliff}
