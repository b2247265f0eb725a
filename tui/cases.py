"""Saving a playground conversation as a conversation test case.

The designer says, for each turn, which reachable reply was intended (by default the one
the engine gave). The conversation is then run again on those replies, with no model, to
get what each turn could reply and the state after it: a case that expects them. Its
cassette entry is recorded as `dialogue test --record` would, by running the saved case
on the backend, so that it replays.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from dialogue.backends.base import Constraint, Prompt
from dialogue.backends.scripted import ScriptedBackend
from dialogue.engine import Engine, Turn
from dialogue.errors import DialogueError, OutputInvalid
from dialogue.grammar import display, reply_grammar, serialize
from dialogue.policy import Policy

FALLBACK = "(fallback)"  # the intended reply is the catalog's fallback line: nothing fitted
NOT_REPLAYABLE = "\x00 not a reply"  # a scripted answer that no constraint admits: the turn falls back
_HOLE = re.compile(r"=<.*?>")  # a reachable reply with an extracted value still to fill


@dataclass
class Replayed:
    """The conversation run again on the intended replies.

    `turns` stops after the first turn whose intended reply is not reachable any more (an
    earlier turn now goes elsewhere): `intended` is None there, for the designer to choose.
    `engine_reachable[n]`: whether the engine's answer to turn n is reachable in this run.
    """

    turns: list[Turn]
    intended: list[str | None]
    engine_reachable: list[bool]


class _IntendedAnswers:
    """The scripted model of a replay: each turn's intended reply, else the engine's answer,
    where the turn's constraint admits it; else an answer nothing admits (the turn is open)."""

    def __init__(self, intended: list[str | None], answers: list[str]) -> None:
        self.intended, self.answers = intended, answers
        self.turn = 0
        self.chosen: list[str | None] = []
        self.engine_reachable: list[bool] = []

    def start(self, turn: int) -> None:
        self.turn = turn
        self.chosen.append(FALLBACK)  # a turn that never asks (nothing may be said) falls back
        self.engine_reachable.append(False)

    def __call__(self, prompt: Prompt, constraint: Constraint) -> str:
        answer = self.answers[self.turn]
        self.engine_reachable[-1] = answer != FALLBACK and _admits(constraint, answer)
        self.chosen[-1] = None
        for candidate in (self.intended[self.turn], answer):
            if candidate == FALLBACK or (candidate is not None and _admits(constraint, candidate)):
                self.chosen[-1] = candidate
                break
        return self.chosen[-1] if self.chosen[-1] not in (None, FALLBACK) else NOT_REPLAYABLE


def _admits(constraint: Constraint, text: str) -> bool:
    try:
        reply_grammar(constraint).parse(text)
    except OutputInvalid:
        return False
    return True


def replay_intended(policy: Policy, state: dict[str, Any], messages: list[str], intended: list[str | None],
                    answers: list[str], locale: str | None = None) -> Replayed:
    """The conversation again, each turn answering its intended reply: no model, no store.

    Each turn has the replies reachable then (`trace.reachable`) and the state after the
    intended reply's effects. Where the intended reply is not reachable, the engine's
    answer is taken if it is; where neither is, the replay stops at that turn.
    """
    answering = _IntendedAnswers(intended, answers)
    backend = ScriptedBackend(answering, strict=False, model="intended")
    engine = Engine(policy, mode="prompted", understanding="model", backend=backend, locale=locale, retries=0)
    session = engine.session("intended", state=state)
    turns: list[Turn] = []
    for n, message in enumerate(messages):
        answering.start(n)
        turns.append(session.say(message))
        if answering.chosen[-1] is None or session.ended:
            break
    return Replayed(turns, answering.chosen, answering.engine_reachable)


def choices(turn: Turn, engine_answer: str, engine_reachable: bool, catalog) -> list[tuple[str, str]]:
    """(label, value) for a turn's intended reply: the engine's answer where it is reachable,
    the other reachable replies (one with a value to extract only as the engine filled it),
    and the fallback."""
    values = [engine_answer] if engine_reachable else []
    values += [alt for alt in turn.trace.reachable if not _HOLE.search(alt) and alt not in values]
    options = [(_label(value, value == engine_answer), value) for value in values]
    return options + [(_label(f"{catalog.fallback} (fell back: nothing valid)", engine_answer == FALLBACK), FALLBACK)]


def _label(reply: str, engine: bool) -> str:
    return f"{reply}  - the engine's answer" if engine else reply


def state_text(turn: Turn) -> str:
    """The state after a turn, one line: gold=20, offer=dagger."""
    state = turn.state.model_dump(mode="json")
    return ", ".join(f"{k}={v}" for k, v in state.items() if v is not None) or "(empty)"


# -- writing the case ---------------------------------------------------------------------------


def save_case(path: Path | None, name: str, state: dict[str, Any], turns: list[Turn],
              policy_path: Path | None = None) -> str:
    """Append the conversation as a test case to `path` (created when new); returns the TOML.

    Each turn expects its reply and the state after it. A new file names its policy when
    the policy is not NAME.py beside it, so the runner finds it.
    """
    if path is None:
        raise DialogueError("no tests file: open a policy first")
    try:
        from dialogue.testing import case_to_toml
    except ImportError as exc:
        raise DialogueError(f"conversation tests are not available: {exc}") from None
    text = _with_states(case_to_toml(name, state, turns), turns)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if name in _case_names(existing):
        raise DialogueError(f"{path} has a case named {name!r} already: choose another name")
    if not existing.strip():
        existing = _policy_line(path, policy_path)
    if existing and not existing.endswith("\n"):
        existing += "\n"
    separator = "\n" if existing.strip() else ""
    path.write_text(existing + separator + text.lstrip("\n"), encoding="utf-8")
    return text


def _case_names(text: str) -> set[str]:
    try:
        cases = tomllib.loads(text).get("case", [])
    except tomllib.TOMLDecodeError:
        return set()  # the runner reports a broken file with its line
    return {c.get("name") for c in cases if isinstance(c, dict)} if isinstance(cases, list) else set()


def _with_states(text: str, turns: list[Turn]) -> str:
    """The case's turns, each expecting the state after it (its fields that are set)."""
    document = tomlkit.parse(text)
    for table, turn in zip(document["case"][-1]["turn"], turns):
        state = tomlkit.inline_table()
        state.update({k: v for k, v in turn.state.model_dump(mode="json").items() if v is not None})
        table["state"] = state
    return tomlkit.dumps(document)


def _policy_line(tests: Path, policy: Path | None) -> str:
    if policy is None:
        return ""
    stem = tests.name.removesuffix(".tests.toml").removesuffix(".toml")
    if policy.parent.resolve() == tests.parent.resolve() and policy.name in (f"{stem}.py", f"{stem}.tree.toml"):
        return ""
    named = policy.resolve()
    try:
        relative = Path(os.path.relpath(named, tests.parent.resolve()))
    except ValueError:  # another drive
        relative = named
    if relative.parts.count("..") <= 2:  # near by (policies/ and tests/ side by side): relative
        named = relative
    return f"policy = {tomlkit.string(named.as_posix()).as_string()}\n"


# -- recording its cassette entry ---------------------------------------------------------------


@dataclass
class Recorded:
    """What recording a saved case's cassette entry did, for the designer."""

    recorded: bool
    message: str
    passed: bool = False


def record_case(path: Path, name: str, policy: Policy, backend: Any) -> Recorded:
    """Run the saved case on `backend` and write its cassette entry, as `dialogue test --record` does.

    Only this case is recorded: the other cases' entries, and the understanding they replay
    with, are kept. A run that fails (the backend broke off) writes nothing.
    """
    from dialogue.testing import Cassette, FileRunner, load_test_file

    how = f"`dialogue test --record {path} -k {_shell_word(name)}` (or ctrl+e on the Tests screen)"
    try:
        file = load_test_file(path, policy)
        case = next(c for c in file.cases if c.name == name)
        understanding = None
        if file.cassette_path.exists():
            understanding = Cassette(file.cassette_path, policy_hash="", catalog_hash="").understanding
        runner = FileRunner(file, backend=backend, record=True, understanding=understanding)
        result = runner.run_case(case)
        if result.error:
            return Recorded(False, f"It has no cassette entry: recording stopped at {result.mismatch}. "
                                   f"Record it with {how}.")
        runner.finish()
    except DialogueError as exc:
        return Recorded(False, f"It has no cassette entry ({exc}). Record it with {how}.")
    if result.passed:
        return Recorded(True, f"Recorded its cassette entry in {file.cassette_path.name}: it replays and passes.",
                        True)
    return Recorded(True, f"Recorded its cassette entry in {file.cassette_path.name}, but the backend does not "
                          f"give the intended replies, so it fails on replay: {result.mismatch.splitlines()[0]}")


def _shell_word(text: str) -> str:
    return text if re.fullmatch(r"[\w.-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def unrecorded_note(path: Path, name: str) -> str:
    """What a designer reads about a saved case without a cassette entry, and how to record one."""
    return (f"It has no cassette entry, so it does not replay (`dialogue test --live` runs it on a model). "
            f"Record it with `dialogue test --record {path} -k {_shell_word(name)}` "
            "(or ctrl+e on the Tests screen).")


# -- the dialog -----------------------------------------------------------------------------------


@dataclass
class CaseRequest:
    """What the save dialog asked for: a name, the intended turns, whether to record."""

    name: str
    turns: list[Turn] = field(default_factory=list)
    record: bool = True


class SaveCaseScreen(ModalScreen[CaseRequest | None]):
    """Name the case, choose each turn's intended reply, see the state after it; Enter saves."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: str, policy: Policy, state: dict[str, Any], turns: list[Turn],
                 locale: str | None = None) -> None:
        super().__init__()
        self.default, self.policy, self.state, self.locale = default, policy, state, locale
        self.messages = [turn.message for turn in turns]
        catalog = policy.catalog
        self.answers = [FALLBACK if t.trace.fallback else display(serialize(t.reply, catalog)) for t in turns]
        self.wanted: list[str | None] = list(self.answers)  # what the designer chose, turn by turn
        self.replayed = Replayed([], [], [])
        self.error: str | None = None
        self._replay()

    def _replay(self) -> None:
        try:
            self.replayed = replay_intended(self.policy, self.state, self.messages, self.wanted, self.answers,
                                            self.locale)
            self.error = None
        except DialogueError as exc:
            self.replayed, self.error = Replayed([], [], []), str(exc)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="save-case"):
            yield Label("Save the conversation as a test case named:")
            yield Input(self.default, id="case-name")
            with VerticalScroll(id="case-turns"):
                for n, message in enumerate(self.messages):
                    yield Label(Text.assemble((f"{n + 1}. you ", "bold"), message), classes="case-message")
                    yield Select(self._options(n), id=f"intended-{n}", allow_blank=True, compact=True,
                                 value=self._value(n), prompt="(choose the intended reply)")
                    yield Static(id=f"state-{n}", classes="case-state")
            yield Static(id="case-error")
            yield Checkbox("Record its cassette entry now (runs the backend)", True, id="record-cassette",
                           compact=True)
            with Horizontal(id="buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self._show()
        self.query_one("#case-name", Input).focus()

    def _options(self, n: int) -> list[tuple[str, str]]:
        replayed = self.replayed
        if n >= len(replayed.turns):
            return []
        return choices(replayed.turns[n], self.answers[n], replayed.engine_reachable[n], self.policy.catalog)

    def _value(self, n: int) -> Any:
        chosen = self.replayed.intended[n] if n < len(self.replayed.intended) else None
        return Select.NULL if chosen is None else chosen

    def _show(self) -> None:
        """Each turn's choices and the state after its intended reply; an error when the replay failed."""
        turns, intended = self.replayed.turns, self.replayed.intended
        for n in range(len(self.messages)):
            select = self.query_one(f"#intended-{n}", Select)
            with select.prevent(Select.Changed):
                select.set_options(self._options(n))
                select.value = self._value(n)
            if n < len(turns) and intended[n] is not None:
                note = Text(f"state after: {state_text(turns[n])}", style="dim")
            elif n < len(turns):
                note = Text("the engine's answer is not reachable now: choose the intended reply", style="yellow")
            elif turns and turns[-1].reply.end and intended[len(turns) - 1] is not None:
                note = Text("the conversation ends before this turn", style="yellow")
            else:
                note = Text("choose the replies above first", style="dim")
            self.query_one(f"#state-{n}", Static).update(note)
        error = self.query_one("#case-error", Static)
        error.update(Text(self.error or "", style="red"))
        error.display = bool(self.error)

    @on(Select.Changed)
    def _intended_changed(self, event: Select.Changed) -> None:
        n = int(event.select.id.removeprefix("intended-"))
        if event.value is Select.NULL or event.value == self._value(n):
            return
        self.wanted[n] = event.value
        self._replay()  # what later turns can reply, and the states after them, may change
        self._show()

    @on(Input.Submitted, "#case-name")
    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        name = self.query_one("#case-name", Input).value.strip()
        problem = None if name else "The case needs a name."
        turns, intended = self.replayed.turns, self.replayed.intended
        if self.error:
            problem = self.error
        elif None in intended:
            problem = f"Choose the intended reply of turn {intended.index(None) + 1} first."
        elif not turns:
            problem = "Nothing to save."
        if problem:
            self.notify(problem, title="Not saved", severity="warning", markup=False)
            return
        self.dismiss(CaseRequest(name, list(turns), self.query_one("#record-cassette", Checkbox).value))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
