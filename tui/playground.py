"""The playground: chat with a policy, see each reply's trace, edit the state, save a test,
correct a reply."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (Button, Footer, Header, Input, Label, LoadingIndicator, Select, Static,
                             TabbedContent, TabPane, TextArea)
from textual.worker import get_current_worker

from dialogue.engine import MODES, Session, Turn
from dialogue.errors import DialogueError

from . import trace as traces
from .cases import CaseRequest, Recorded, SaveCaseScreen, record_case, save_case, unrecorded_note
from .corrections import CorrectionScreen, record_correction
from .json_text import JsonTextError, parse_json
from .workspace import Workspace


class TurnView(Static, can_focus=True):
    """One turn in the chat: the message, the reply and a line of its trace."""

    class Selected(Message):
        def __init__(self, view: TurnView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, turn: Turn, speaker: str, masked: bool, state_before: dict | None = None) -> None:
        self.turn = turn
        self.state_before = state_before if state_before is not None else {}  # for a correction
        text = Text()
        text.append("you ", style="bold cyan")
        text.append(f"{turn.message}\n")
        text.append(f"{speaker} ", style="bold")
        text.append(f"{turn.text}\n")
        text.append_text(traces.summary(turn, masked=masked))
        super().__init__(text, classes="turn")
        if turn.trace.fallback:
            self.add_class("fallback")

    def on_focus(self) -> None:
        self.post_message(self.Selected(self))

    def on_click(self) -> None:
        self.focus()


class PendingTurn(Vertical):
    """A message on its way: the text and a spinner until the reply comes."""

    def __init__(self, message: str) -> None:
        super().__init__(classes="turn pending")
        self.message = message

    def compose(self) -> ComposeResult:
        yield Label(Text.assemble(("you ", "bold"), self.message))
        yield LoadingIndicator()


class PlaygroundScreen(Screen):
    """Talk to the policy; the trace, state and settings sit beside the conversation."""

    BINDINGS = [
        Binding("ctrl+s", "save_case", "Save test"),
        Binding("ctrl+n", "new_conversation", "New"),
        Binding("ctrl+t", "toggle_mode", "Mode"),
        Binding("ctrl+o", "correct", "Correct reply", show=False),  # not ctrl+k: the Input deletes to the end with it
        Binding("ctrl+l", "next_locale", "Locale", show=False),
        Binding("ctrl+b", "next_backend", "Backend", show=False),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(name="playground")
        self.workspace = workspace
        self.session: Session | None = None
        self._session_key: tuple | None = None
        self._sessions = 0
        self.state: BaseModel | None = None
        self.initial_state: dict[str, Any] = {}
        self.state_edited_midway = False
        self.selected: TurnView | None = None  # the reply the trace shows, and ctrl+o corrects

    # -- layout --------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="settings-bar")
        with Horizontal(id="playground"):
            with Vertical(id="chat"):
                yield VerticalScroll(id="turns")
                yield Input(placeholder="Say something and press Enter", id="message")
            with TabbedContent(id="side"):
                with TabPane("Trace", id="trace-tab"):
                    with VerticalScroll():
                        yield Static("Send a message: its trace shows here.", id="trace")
                with TabPane("State", id="state-tab"):
                    yield TextArea(id="state", soft_wrap=True, show_line_numbers=False)
                    yield Static(id="state-status")
                    yield Button("Apply state", id="apply-state", variant="primary")
                with TabPane("Settings", id="settings-tab"):
                    yield Label("Mode")
                    yield Select([(m, m) for m in MODES], id="mode", allow_blank=False,
                                 value=self.workspace.mode)
                    yield Label("Backend")
                    yield Select([(b, b) for b in self.workspace.backend_names()], id="backend",
                                 allow_blank=False, value=self.workspace.backend_name)
                    yield Label("Locale")
                    yield Select([(loc, loc) for loc in self.workspace.locales] or [("-", "-")],
                                 id="locale", allow_blank=False, value=self._locale())
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Playground"
        ws = self.workspace
        if ws.policy is None:
            why = str(ws.policy_error) if ws.policy_error else \
                "No policy loaded. Start with: dialogue tui policies/NAME.py"
            self.query_one("#turns").mount(Static(why, classes="error"))
            self.query_one("#message", Input).disabled = True
            self.query_one("#state", TextArea).disabled = True
        else:
            self._start_conversation(ws.policy.new_state())
            self.query_one("#message", Input).focus()
        self._show_settings()

    def _locale(self) -> str:
        ws = self.workspace
        if ws.policy is None:
            return "-"
        return ws.locale or ws.policy.catalog.locale

    def _show_settings(self) -> None:
        ws = self.workspace
        name = ws.policy.name if ws.policy else ws.name
        ready = "" if ws.backend_ready() else " (loads on first message)"
        self.query_one("#settings-bar", Static).update(
            f"[b]{name}[/]  mode [b]{ws.mode}[/]  backend [b]{ws.backend_name}[/]{ready}  "
            f"locale [b]{self._locale()}[/]")

    # -- the conversation ----------------------------------------------------------

    def _start_conversation(self, state: BaseModel) -> None:
        self.session, self._session_key = None, None
        self.state = state
        self.initial_state = state.model_dump(mode="json")
        self.state_edited_midway = False
        self.selected = None
        self.query_one("#turns").remove_children()
        self._show_state()

    @on(Input.Submitted, "#message")
    def send(self, event: Input.Submitted) -> None:
        message = event.value.strip()
        if not message or self.workspace.policy is None:
            return
        if any(w.group == "say" and w.is_running for w in self.workers):
            self.notify("Still waiting for the last reply.", severity="warning")
            return
        if any(w.group == "record" and w.is_running for w in self.workers):  # one backend, one call at a time
            self.notify("Still recording the saved test's cassette entry.", severity="warning")
            return
        if self.session is not None and self.session.ended:
            self.notify("The conversation has ended: ctrl+n starts a new one.", severity="warning")
            return
        event.input.value = ""
        pending = PendingTurn(message)
        turns = self.query_one("#turns")
        turns.mount(pending)
        turns.scroll_end(animate=False)
        self._say(message, pending)

    @work(thread=True, group="say")
    def _say(self, message: str, pending: PendingTurn) -> None:
        """Runs in a thread: the engine (and a first model load) may take seconds."""
        try:
            session = self._current_session()
            before = session.state.model_dump(mode="json")
            turn = session.say(message)
        except DialogueError as exc:
            if not get_current_worker().is_cancelled:
                self.app.call_from_thread(self._failed, pending, exc)
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._replied, pending, turn, before)

    def _current_session(self) -> Session:
        """The session for the current settings; switching a setting keeps the conversation."""
        ws = self.workspace
        key = (ws.mode, ws.backend_name, ws.locale)
        if self.session is not None and self._session_key == key:
            return self.session
        engine = ws.engine()
        self._sessions += 1
        session = engine.session(f"tui-{self._sessions}", state=self.state)
        old = self.session
        if old is not None:
            session.turns, session.node = old.turns, old.node
            session.said_ids, session.ended = old.said_ids, old.ended
        self.session, self._session_key = session, key
        return session

    def _replied(self, pending: PendingTurn, turn: Turn, state_before: dict) -> None:
        speaker = self.workspace.policy.name if self.workspace.policy else "reply"
        view = TurnView(turn, speaker, self.app.mask_latency, state_before)
        self.selected = view
        turns = self.query_one("#turns")
        turns.mount(view, after=pending)
        pending.remove()
        turns.scroll_end(animate=False)
        self.state = turn.state
        self._show_trace(turn)
        self._show_state()
        self._show_settings()

    def _failed(self, pending: PendingTurn, exc: DialogueError) -> None:
        pending.remove()
        error = Static(Text.assemble(("you ", "bold"), pending.message, "\n", (str(exc), "red")),
                       classes="turn error")
        self.query_one("#turns").mount(error)
        self._show_settings()

    def _show_trace(self, turn: Turn) -> None:
        self.query_one("#trace", Static).update(traces.details(turn, masked=self.app.mask_latency))

    @on(TurnView.Selected)
    def _selected(self, event: TurnView.Selected) -> None:
        self.selected = event.view
        self._show_trace(event.view.turn)
        self.query_one("#side", TabbedContent).active = "trace-tab"

    # -- state ---------------------------------------------------------------------

    def _show_state(self) -> None:
        if self.state is None:
            return
        area = self.query_one("#state", TextArea)
        area.load_text(json.dumps(self.state.model_dump(mode="json"), indent=2, ensure_ascii=False))
        self.query_one("#state-status", Static).update("")

    def parse_state(self, text: str) -> BaseModel:
        """The state in the editor, validated by the policy's state model."""
        try:
            data = parse_json(text)
        except JsonTextError as exc:
            raise DialogueError(str(exc)) from None
        if not isinstance(data, dict):
            raise DialogueError("the state is a JSON object: {\"gold\": 10}")
        return self.workspace.policy.new_state(data)

    @on(TextArea.Changed, "#state")
    def _state_changed(self, event: TextArea.Changed) -> None:
        status = self.query_one("#state-status", Static)
        if self.workspace.policy is None:
            return
        try:
            self.parse_state(event.text_area.text)
        except DialogueError as exc:
            status.update(Text(str(exc), style="red"))
            status.add_class("invalid")
        else:
            status.update(Text("valid", style="green"))
            status.remove_class("invalid")

    @on(Button.Pressed, "#apply-state")
    def action_apply_state(self) -> None:
        try:
            state = self.parse_state(self.query_one("#state", TextArea).text)
        except DialogueError as exc:
            self.notify(str(exc), title="State not applied", severity="error")
            return
        self.state = state
        if self.session is None or not self.session.turns:
            self.initial_state = state.model_dump(mode="json")
        else:
            self.state_edited_midway = True
        if self.session is not None:
            self.session.state = state
        self.notify("State applied.")

    # -- settings ------------------------------------------------------------------

    @on(Select.Changed)
    def _setting_changed(self, event: Select.Changed) -> None:
        ws, value = self.workspace, event.value
        if event.select.id == "mode" and value in MODES:
            ws.mode = value
        elif event.select.id == "backend" and isinstance(value, str):
            ws.backend_name = value
        elif event.select.id == "locale" and value in ws.locales:
            ws.locale = value
        self._show_settings()

    def _set(self, select_id: str, value: str) -> None:
        self.query_one(f"#{select_id}", Select).value = value

    def action_toggle_mode(self) -> None:
        self._set("mode", MODES[(MODES.index(self.workspace.mode) + 1) % len(MODES)])

    def action_next_locale(self) -> None:
        locales = self.workspace.locales
        if locales:
            self._set("locale", locales[(locales.index(self._locale()) + 1) % len(locales)])

    def action_next_backend(self) -> None:
        names = self.workspace.backend_names()
        self._set("backend", names[(names.index(self.workspace.backend_name) + 1) % len(names)])

    def action_new_conversation(self) -> None:
        if self.workspace.policy is None:
            return
        for worker in self.workers:
            if worker.group == "say":
                worker.cancel()
        self._start_conversation(self.workspace.policy.new_state(self.initial_state))
        self.query_one("#trace", Static).update("Send a message: its trace shows here.")

    # -- save as a test ------------------------------------------------------------

    def action_save_case(self) -> None:
        """Choose each turn's intended reply, then save the case (and record its cassette entry)."""
        if self.session is None or not self.session.turns:
            self.notify("Nothing to save yet: say something first.", severity="warning")
            return
        if any(w.group == "record" and w.is_running for w in self.workers):
            self.notify("Still recording the last saved test.", severity="warning")
            return
        default = f"conversation {len(self.session.turns)} turns"
        self.app.push_screen(SaveCaseScreen(default, self.workspace.policy, self.initial_state,
                                            list(self.session.turns), self.workspace.locale), self._save_named)

    def _save_named(self, request: CaseRequest | None) -> None:
        if request is None:
            return
        ws, name = self.workspace, request.name
        try:
            save_case(ws.tests_path, name, self.initial_state, request.turns, ws.policy_path)
        except (DialogueError, OSError) as exc:
            self.notify(str(exc), title="Not saved", severity="error", markup=False)
            return
        note = " The state was edited midway; the case starts from the first state." \
            if self.state_edited_midway else ""
        turns = len(request.turns)
        saved = f"Saved test {name!r} ({turns} turn{'s' * (turns != 1)}) to {ws.tests_path}.{note}"
        if not request.record:
            self.notify(f"{saved} {unrecorded_note(ws.tests_path, name)}", title="Saved", markup=False)
            return
        self.notify(f"{saved} Recording its cassette entry...", title="Saved", markup=False)
        self._record(name)

    @work(thread=True, group="record")
    def _record(self, name: str) -> None:
        """Runs in a thread: recording runs the case on the backend (a model, maybe)."""
        ws = self.workspace
        try:
            outcome = record_case(ws.tests_path, name, ws.policy, ws.backend())
        except DialogueError as exc:  # the backend could not be created
            outcome = Recorded(False, f"Recording failed ({exc}). {unrecorded_note(ws.tests_path, name)}")
        self.app.call_from_thread(self._recorded, name, outcome)

    def _recorded(self, name: str, outcome: Recorded) -> None:
        severity = "information" if outcome.passed else "warning"
        title = "Cassette recorded" if outcome.recorded else "No cassette entry"
        self.notify(f"{name!r}: {outcome.message}", title=title, severity=severity, markup=False, timeout=15)

    # -- correct a reply -----------------------------------------------------------

    def action_correct(self) -> None:
        """Pick the line the selected reply should have been: the turn's reachable ones first."""
        if self.selected is None or self.workspace.policy is None:
            self.notify("Nothing to correct yet: say something, then select its reply.", severity="warning")
            return
        view = self.selected
        self.app.push_screen(CorrectionScreen(view.turn, self.workspace.policy.catalog),
                             lambda reply_id: self._correct(view, reply_id))

    def _correct(self, view: TurnView, reply_id: str | None) -> None:
        if not reply_id or self.session is None:
            return
        try:
            written = record_correction(self.session.engine, self.workspace.policy_path, view.turn, reply_id,
                                        view.state_before)
        except (DialogueError, OSError) as exc:
            self.notify(str(exc), title="Correction not recorded", severity="error", markup=False)
            return
        self.notify(f"{written}. The matcher learns it when the policy loads again.", title="Corrected",
                    markup=False)

    def commands(self):
        """Command palette entries: every setting by name, and the screen's actions."""
        from textual.app import SystemCommand

        ws = self.workspace
        for mode in MODES:
            yield SystemCommand(f"Mode: {mode}", f"Run the policy in {mode} mode",
                                lambda mode=mode: self._set("mode", mode))
        for name in ws.backend_names():
            yield SystemCommand(f"Backend: {name}", f"Answer with the {name} backend",
                                lambda name=name: self._set("backend", name))
        for locale in ws.locales:
            yield SystemCommand(f"Locale: {locale}", f"Render replies in {locale}",
                                lambda locale=locale: self._set("locale", locale))
        yield SystemCommand("New conversation", "Start again from the first state",
                            self.action_new_conversation)
        yield SystemCommand("Save as test", "Append this conversation to the policy's tests",
                            self.action_save_case)
        yield SystemCommand("Apply state", "Use the state in the State tab", self.action_apply_state)
        yield SystemCommand("Correct reply", "Record the line the selected reply should have been",
                            self.action_correct)
