"""The catalog editor: the lines in a filterable table, a form to edit one, live validation.

A thin layer over `dialogue.authoring.CatalogDocument`: every edit goes through
`document.set(...)`, problems come from `document.problems()` (the loader `dialogue lint`
uses), and `document.save()` writes the file with its layout kept.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, Static, TextArea

from dialogue.errors import DialogueError

from .fields import LineField
from .history import EditHistory
from .json_text import JsonTextError, parse_json
from .runner import ConfirmScreen
from .workspace import Workspace

COLUMNS = ("ok", "id", "state", "locales", "stale", "tags")
SECTION = re.compile(r"\[+\s*response(?:\.(\w+)(?:\.([\w-]+))?)?\s*\]+")


def sample_value(slot: Any) -> str:
    """A value to preview a slot with: the first option, the lower bound, or one."""
    options = getattr(slot, "options", None)
    if options:
        return str(options[0])
    low = getattr(slot, "min", None)
    if getattr(slot, "regex", None) is not None:
        return ""
    if type(slot).__name__ == "DateSlot":
        return str(low or "2026-01-01")
    return str(low if low is not None else 1)


def parse_samples(text: str) -> dict[str, str]:
    """`item=sword price=50` as a dict; a value may be quoted to hold spaces."""
    import shlex

    pairs = [part.partition("=") for part in shlex.split(text)]
    return {name.strip(): value for name, _, value in pairs if name.strip()}


def matches(response: dict, words: list[str], default_locale: str = "*") -> bool:
    """Whether a line passes the filter: every word matches id, text, status, a tag or locale.

    `status:draft`, `tag:trade`, `locale:de` and `stale` narrow to one column.
    """
    for word in words:
        key, _, value = word.partition(":")
        if value and key == "status":
            ok = response.get("status") == value
        elif value and key == "tag":
            ok = value in (response.get("tags") or [])
        elif value and key == "locale":
            ok = value in present_locales(response, default_locale)
        elif word == "stale":
            ok = bool(stale_parts(response))
        else:
            hay = " ".join([response.get("id", ""), response.get("text", ""), response.get("when", ""),
                            response.get("status", ""), *(response.get("tags") or [])])
            ok = word.lower() in hay.lower()
        if not ok:
            return False
    return True


def present_locales(response: dict, default_locale: str = "*") -> list[str]:
    """The locales a line has a text in, the default one first."""
    return [default_locale] + [loc for loc, t in (response.get("translations") or {}).items() if not t.get("missing")]


def stale_parts(response: dict) -> list[str]:
    """What is out of date in a line: translations, recordings, the approval."""
    parts = [loc for loc, t in (response.get("translations") or {}).items() if t.get("stale")]
    if response.get("audio_stale") or any(t.get("audio_stale") for t in (response.get("translations") or {}).values()):
        parts.append("audio")
    if response.get("approval_stale"):
        parts.append("approval")
    return parts


def field_lines(source: str, start: int, end: int) -> dict[int, str]:
    """Which form field each source line of a response block (lines start..end) belongs to.

    `text`, `when`, `slots`, `locale-XX`; anything else is `other`.
    """
    lines = source.splitlines()
    found, section = {}, ""
    for number in range(start, min(end, len(lines)) + 1):
        line = lines[number - 1].strip()
        match = SECTION.match(line)
        if match:
            kind, locale = match.groups()
            section = "slots" if kind == "slots" else f"locale-{locale}" if kind == "locales" and locale else ""
            found[number] = section or "other"
            continue
        key = line.partition("=")[0].strip()
        found[number] = section or (key if key in ("text", "when") else "other")
    return found


class CatalogScreen(Screen):
    """Browse, edit, approve, retire and add catalog lines; save keeps the file's layout."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+f", "focus_filter", "Filter"),
        Binding("ctrl+o", "approve", "Approve"),
        Binding("ctrl+r", "retire", "Retire"),
        Binding("ctrl+n", "add", "Add"),
        Binding("ctrl+z", "undo", "Undo"),
        Binding("ctrl+y", "redo", "Redo", show=False),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(name="catalog")
        self.workspace = workspace
        self.document: Any = None
        self.current: str | None = None
        self.saved_text: str | None = None  # the document as last read or written
        self.disk: str | None = None  # a digest of the file as last read or written
        self.history = EditHistory()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="catalog-status")
        yield Input(placeholder="filter: words, status:draft, tag:trade, locale:de, stale", id="filter")
        with Horizontal(id="catalog"):
            yield DataTable(id="lines", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="editor"):
                yield Static(id="line-title")
                yield Label("text")
                yield LineField(id="field-text")  # Tab in, then a key: no line lost
                yield Static(id="error-text", classes="field-error")
                yield Label("when")
                yield LineField(id="field-when")
                yield Static(id="error-when", classes="field-error")
                yield Label("slots (JSON)")
                yield TextArea(id="field-slots", soft_wrap=True, show_line_numbers=False)
                yield Static(id="error-slots", classes="field-error")
                yield Vertical(id="translations")
                yield Label("preview with", id="samples-label")
                yield Input(id="samples")
                yield Static(id="preview")
                yield Static(id="problems")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Catalog"
        table = self.query_one("#lines", DataTable)
        for column in COLUMNS:
            table.add_column("" if column == "ok" else column, key=column)
        self.load()

    # -- loading and the table -----------------------------------------------------

    def load(self) -> None:
        path = self.workspace.catalog_path
        if path is None:
            return self._status(Text("No catalog: open a policy or pass --catalog FILE.", style="red"))
        try:
            from dialogue.authoring import CatalogDocument
        except ImportError as exc:
            return self._status(Text(f"The catalog editor needs dialogue.authoring: {exc}", style="red"))
        disk = _digest_of(path)  # before reading: a change in between shows as a change on disk
        try:
            self.document = CatalogDocument.load(path)
        except DialogueError as exc:
            return self._status(Text(str(exc), style="red"))
        self.saved_text, self.disk = self.document.dumps(), disk
        self.history.clear()
        self.refresh_table()
        self._show_current_or_first()

    def _show_current_or_first(self) -> None:
        responses = self.document.responses()
        if self.current is not None and self.response(self.current) is not None:
            self.show(self.current)
        elif responses:
            self.show(responses[0]["id"])

    @property
    def dirty(self) -> bool:
        """Whether the document has edits the file does not have."""
        return self.document is not None and self.document.dumps() != self.saved_text

    def _status(self, text: Text | str) -> None:
        self.query_one("#catalog-status", Static).update(text)

    def _default_locale(self) -> str:
        """The `[catalog]` locale as written, even while the catalog has errors."""
        try:
            header = tomllib.loads(self.document.dumps()).get("catalog")
        except tomllib.TOMLDecodeError:
            return "*"
        return str(header.get("locale", "*")) if isinstance(header, dict) else "*"

    def _problems_by_id(self) -> dict[str | None, list]:
        found: dict[str | None, list] = {}
        for problem in self.document.problems():
            found.setdefault(getattr(problem, "entry", None), []).append(problem)
        return found

    def refresh_table(self) -> None:
        """Fill the table with the lines that pass the filter, keeping the cursor's line."""
        table = self.query_one("#lines", DataTable)
        words = self.query_one("#filter", Input).value.split()
        problems = self._problems_by_id()
        default = self._default_locale()
        rows = {r["id"]: self._row(r, problems, default) for r in self.document.responses()
                if matches(r, words, default)}
        if list(rows) == [key.value for key in table.rows]:
            for rid, cells in rows.items():  # the same lines: update in place, the cursor stays
                for column, value in zip(COLUMNS, cells):
                    table.update_cell(rid, column, value)
        else:
            table.clear()
            for rid, cells in rows.items():
                table.add_row(*cells, key=rid)
            if self.current in rows:
                table.move_cursor(row=table.get_row_index(self.current), animate=False)
        self._show_file_status(problems)

    @staticmethod
    def _row(response: dict, problems: dict, default: str) -> tuple:
        mine = problems.get(response["id"], [])
        errors = sum(1 for p in mine if getattr(p, "kind", "error") == "error")
        ok = Text("✗", style="bold red") if errors else Text("!", style="yellow") if mine else Text("✓")
        return (ok, response["id"], _status_text(response.get("state", "draft")),
                ",".join(present_locales(response, default)), ",".join(stale_parts(response)) or "-",
                ",".join(response.get("tags") or []) or "-")

    def _show_file_status(self, problems: dict) -> None:
        everything = [p for ps in problems.values() for p in ps]
        errors = sum(1 for p in everything if getattr(p, "kind", "error") == "error")
        warnings = len(everything) - errors
        text = Text(f"{self.workspace.catalog_path.name}  ")
        text.append(f"{errors} error{'s' * (errors != 1)}", style="bold red" if errors else "green")
        text.append(f", {warnings} warning{'s' * (warnings != 1)}")
        if self.dirty:
            text.append("  modified (ctrl+s saves)", style="bold yellow")
        self._status(text)

    @on(Input.Changed, "#filter")
    def _filtered(self) -> None:
        if self.document is not None:
            self.refresh_table()

    @on(DataTable.RowHighlighted, "#lines")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if event.cursor_row != table.cursor_row or event.row_key.value == self.current:
            return  # an earlier cursor position (the table was refilled), or the line shown
        self.show(event.row_key.value)

    # -- the form ------------------------------------------------------------------

    def response(self, rid: str) -> dict | None:
        return next((r for r in self.document.responses() if r["id"] == rid), None)

    def _block_fields(self, rid: str) -> dict[int, str]:
        """Source line -> form field, for the lines of one response."""
        responses = self.document.responses()
        starts = [r.get("line") or 0 for r in responses]
        n = next(i for i, r in enumerate(responses) if r["id"] == rid)
        end = starts[n + 1] - 1 if n + 1 < len(starts) else 10**9
        return field_lines(self.document.dumps(), starts[n], end)

    def show(self, rid: str) -> None:
        """Fill the form with one line."""
        response = self.response(rid)
        if response is None:
            return
        self.current = rid
        self.history.break_group()
        approval = response.get("approval") or {}
        by = f"  by {approval['by']}" if approval.get("by") else ""
        self.query_one("#line-title", Static).update(Text.assemble(
            (rid, "bold"), "  ", _status_text(response.get("state", "draft")), (by, "dim")))
        self.query_one("#field-text", LineField).fill(response.get("text"))
        self.query_one("#field-when", LineField).fill(response.get("when"))
        slots = response.get("slots") or {}
        self.query_one("#field-slots", TextArea).load_text(json.dumps(slots, ensure_ascii=False)
                                                           if slots else "{}")
        self._show_translations(response)
        self._show_samples(rid)
        self._validate()

    def _show_translations(self, response: dict) -> None:
        """One input per locale of the catalog but the default; made once, then refilled."""
        box = self.query_one("#translations", Vertical)
        translations = response.get("translations") or {}
        for locale in translations:
            if not box.query(f"#locale-{locale}"):
                box.mount_all([Label(id=f"label-{locale}"),
                               LineField(id=f"locale-{locale}", classes="translation"),
                               Static(id=f"error-locale-{locale}", classes="field-error")])
        for locale, entry in translations.items():
            note = " (missing)" if entry.get("missing") else " (stale)" if entry.get("stale") else ""
            box.query_one(f"#label-{locale}", Label).update(f"text [{locale}]{note}")
            box.query_one(f"#locale-{locale}", LineField).fill(entry.get("text"))

    def _catalog(self):
        try:
            return self.document.catalog()
        except DialogueError:
            return None

    def _slots_of(self, rid: str) -> dict:
        catalog = self._catalog()
        return dict(catalog[rid].slots) if catalog is not None and rid in catalog else {}

    def _show_samples(self, rid: str) -> None:
        """Sample values to preview a line with; a line without slots has none to show."""
        slots = self._slots_of(rid)
        samples = self.query_one("#samples", Input)
        samples.value = " ".join(f"{name}={sample_value(slot)}" for name, slot in slots.items())
        samples.placeholder = " ".join(f"{name}=..." for name in slots)
        samples.display = bool(slots)
        self.query_one("#samples-label", Label).update("preview with" if slots else "preview (no slots)")

    @on(TextArea.Changed, "#field-text, #field-when, .translation")
    def _edited(self, event: TextArea.Changed) -> None:
        if self.current is None:
            return
        field, locale = event.text_area.id.removeprefix("field-"), None
        if event.text_area.id.startswith("locale-"):
            field, locale = "text", event.text_area.id.removeprefix("locale-")
        self._set(field, event.text_area.text, locale)

    @on(TextArea.Changed, "#field-slots")
    def _slots_edited(self, event: TextArea.Changed) -> None:
        if self.current is None:
            return
        try:
            slots = parse_json(event.text_area.text or "{}")
        except JsonTextError as exc:
            self._problems([f"slots: {exc}"])
            return
        self._set("slots", slots, None)

    def _set(self, field: str, value: Any, locale: str | None) -> None:
        """One edit from the form; a value equal to the file's (the form being filled) is no edit."""
        if value == self._value(field, locale):
            return
        before = self.document.dumps()
        try:
            self.document.set(self.current, field, value, locale=locale)
        except DialogueError as exc:
            self._problems([str(exc)])
            return
        self.history.record(before, group=(self.current, field, locale))
        self.refresh_table()
        self._validate()

    def _value(self, field: str, locale: str | None) -> Any:
        response = self.response(self.current) or {}
        if locale is not None:
            return ((response.get("translations") or {}).get(locale) or {}).get("text") or ""
        if field == "slots":
            return response.get("slots") or {}
        return response.get(field) or ""

    @on(Input.Changed, "#samples")
    def _samples_changed(self) -> None:
        if self.current is not None:
            self._preview()

    def _validate(self) -> None:
        """Show each problem of the line under the field it is in; the rest below the form."""
        problems = self._problems_by_id()
        fields = self._block_fields(self.current)
        placed: dict[str, list[str]] = {}
        rest = []
        for problem in problems.get(self.current, []) + problems.get(None, []):
            line = getattr(getattr(problem, "location", None), "line", None)
            field = fields.get(line, "other")
            if field != "other" and self.query(f"#error-{field}"):
                placed.setdefault(field, []).append(_one_line(problem))
            else:
                rest.append(str(problem))
        for box in self.query(".field-error"):
            messages = placed.get(box.id.removeprefix("error-"), [])
            box.update(Text("\n".join(messages), style="red"))
            box.display = bool(messages)
        self._problems(rest)
        self._preview()

    def _problems(self, messages: list[str]) -> None:
        box = self.query_one("#problems", Static)
        box.update(Text("\n".join(messages), style="red") if messages else "")
        box.set_class(bool(messages), "invalid")

    def _preview(self) -> None:
        preview = self.query_one("#preview", Static)
        catalog = self._catalog()
        if catalog is None or self.current not in catalog:
            return preview.update(Text("(no preview while the catalog has errors)", style="dim"))
        try:
            samples = parse_samples(self.query_one("#samples", Input).value)
        except ValueError as exc:
            return preview.update(Text(f"samples: {exc}", style="yellow"))
        lines = Text()
        for locale in catalog.locales:
            try:
                lines.append(f"{locale}: ", style="bold")
                lines.append(catalog.render(self.current, samples, locale) + "\n")
            except DialogueError as exc:
                lines.append(f"{getattr(exc, 'message', exc)}\n", style="yellow")
        preview.update(lines)

    # -- actions -------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_save(self) -> None:
        """Write the file, unless the catalog would not load; ask first when it changed on disk."""
        if self.document is None:
            return
        errors = [p for p in self.document.problems() if getattr(p, "kind", "error") == "error"]
        if errors:
            count = f"{len(errors)} error{'s' * (len(errors) != 1)}"
            self.notify(f"The catalog has {count} and would not load. The first: {_one_line(errors[0])}. "
                        "Fix them (ctrl+z undoes) and save again.", title="Not saved", severity="error",
                        markup=False)
            return
        if _digest_of(self.workspace.catalog_path) != self.disk:
            question = (f"{self.workspace.catalog_path.name} changed on disk since it was read. Overwrite "
                        "it with your edits? (No writes nothing; Reload catalog reads the file instead.)")
            self.app.push_screen(ConfirmScreen(question), lambda yes: self._write() if yes else None)
            return
        self._write()

    def _write(self) -> None:
        text = self.document.dumps()
        try:
            self.document.save()
        except DialogueError as exc:
            self.notify(str(exc), title="Not saved", severity="error", markup=False)
            return
        self.saved_text, self.disk = text, _digest(text.encode("utf-8"))  # the bytes save wrote
        self.refresh_table()
        self.notify(f"Saved {self.workspace.catalog_path}.", markup=False)

    def action_reload(self) -> None:
        """Read the file again; with unsaved edits, ask first."""
        if not self.dirty:
            return self.load()
        self.app.push_screen(ConfirmScreen("Drop your unsaved edits and read the catalog file again?"),
                             lambda yes: self.load() if yes else None)

    def action_undo(self) -> None:
        self._step(self.history.undo, "Nothing to undo.")

    def action_redo(self) -> None:
        self._step(self.history.redo, "Nothing to redo.")

    def _step(self, step, nothing: str) -> None:
        """Go back (or forward) to a text from the history, showing the same line if it is there."""
        if self.document is None:
            return
        text = step(self.document.dumps())
        if text is None:
            self.notify(nothing)
            return
        self.document = type(self.document)(text, self.document.path)  # a CatalogDocument of that text
        self.refresh_table()
        self._show_current_or_first()

    def action_approve(self) -> None:
        self._change(lambda: self.document.approve([self.current], by=_reviewer()), "approved")

    def action_retire(self) -> None:
        self._change(lambda: self.document.retire(self.current), "retired")

    def _change(self, change, what: str) -> None:
        if self.document is None or self.current is None:
            return
        before = self.document.dumps()
        try:
            change()
        except DialogueError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.history.record(before)
        self.refresh_table()
        self.show(self.current)
        self.notify(f"{self.current} {what} (ctrl+s saves, ctrl+z undoes).")

    def action_add(self) -> None:
        if self.document is not None:
            self.app.push_screen(NewLineScreen(), self._added)

    def _added(self, rid: str | None) -> None:
        if not rid:
            return
        before = self.document.dumps()
        try:
            self.document.add({"id": rid, "text": "", "status": "draft"})
        except DialogueError as exc:
            self.notify(str(exc), title="Not added", severity="error", markup=False)
            return
        self.history.record(before)
        self.current = rid
        self.query_one("#filter", Input).value = ""
        self.refresh_table()
        self.show(rid)
        self.query_one("#field-text", LineField).focus()

    def commands(self):
        from textual.app import SystemCommand

        yield SystemCommand("Save catalog", "Write the catalog file, keeping its layout", self.action_save)
        yield SystemCommand("Undo", "Undo the last edit of the catalog", self.action_undo)
        yield SystemCommand("Redo", "Redo the last undone edit", self.action_redo)
        yield SystemCommand("Approve line", "Mark the selected line approved", self.action_approve)
        yield SystemCommand("Retire line", "Mark the selected line retired", self.action_retire)
        yield SystemCommand("Add line", "Add a new draft line", self.action_add)
        yield SystemCommand("Reload catalog", "Read the file again, dropping unsaved edits", self.action_reload)


class NewLineScreen(ModalScreen[str | None]):
    """Ask for a new line's id."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("The new line's id (UPPER_SNAKE):")
            yield Input(id="new-id", placeholder="NEW_LINE")

    @on(Input.Submitted, "#new-id")
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _status_text(status: str) -> Text:
    style = {"approved": "green", "draft": "yellow", "retired": "dim strike", "changed": "bold red",
             "unrecorded": "red"}.get(status, "")
    return Text(status, style=style)


def _one_line(problem: Any) -> str:
    """A problem under its field: line, column, message and hint; the field shows the source."""
    where = getattr(problem, "location", None)
    at = f"{where.line}:{where.column}: " if where and where.column else f"{where.line}: " if where else ""
    hint = f" ({problem.hint})" if getattr(problem, "hint", None) else ""
    return f"{at}{getattr(problem, 'kind', 'error')}: {getattr(problem, 'message', problem)}{hint}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest_of(path: Path | None) -> str | None:
    """A digest of the file's bytes, or None when it cannot be read: compared before each save."""
    try:
        return _digest(path.read_bytes()) if path is not None else None
    except OSError:
        return None


def _reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "tui"
