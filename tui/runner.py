"""The test runner: the policy's conversation tests, run all or one, expected against got.

A thin layer over `dialogue.testing`: `load_tests` lists the cases, `run_tests` runs them
in a worker thread (reporting progress), replayed from the file's cassette or live on the
workspace's backend; `record=True` re-records the cassette.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Label, LoadingIndicator, Static

from dialogue.errors import DialogueError

from .workspace import Workspace


SOURCES = ("replay", "live")


def _name(case: Any) -> str:
    return case["name"] if isinstance(case, dict) else getattr(case, "name")


def cassette_of(tests_path: Path) -> Path:
    """The cassette beside a tests file: NAME.cassette.json for NAME.tests.toml."""
    from dialogue.testing import TestFile

    return TestFile(tests_path, [], None).cassette_path


class TestsScreen(Screen):
    """Run the conversation tests of the policy and read why one failed."""

    BINDINGS = [
        Binding("ctrl+r", "run_all", "Run all"),
        Binding("ctrl+o", "run_one", "Run one"),
        Binding("ctrl+e", "record", "Re-record"),
        Binding("ctrl+t", "toggle_source", "Replay/live"),
        Binding("ctrl+l", "reload", "Reload", show=False),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(name="tests")
        self.workspace = workspace
        self.cases: list[Any] = []
        self.results: dict[str, Any] = {}
        self.coverage: Any = None
        self.source: str | None = None  # "replay" or "live"; None until the tests file is read
        self._read: tuple | None = None  # the tests file's mtime and size when it was read

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="tests-status")
        with Horizontal(id="runner"):
            with Vertical(id="cases-column"):
                yield DataTable(id="cases", cursor_type="row")
                yield LoadingIndicator(id="running")
            with VerticalScroll(id="result-column"):
                yield Static("Select a test; ctrl+r runs them all.", id="result")
                yield Static(id="coverage")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Tests"
        table = self.query_one("#cases", DataTable)
        table.add_column("test", key="test")
        table.add_column("result", key="result")
        self.query_one("#running").display = False
        self.action_reload()

    # -- cases ---------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        """Coming back to the runner: read the tests file again if it changed (a case saved meanwhile)."""
        if self._stamp() != self._read and not any(w.group == "tests" and w.is_running for w in self.workers):
            self.action_reload()

    def _stamp(self) -> tuple | None:
        path = self.workspace.tests_path
        try:
            found = path.stat() if path is not None else None
        except OSError:
            return None
        return (found.st_mtime_ns, found.st_size) if found is not None else None

    def action_reload(self) -> None:
        path = self.workspace.tests_path
        self.cases, self.results = [], {}
        self._read = self._stamp()
        if path is None:
            return self._status(Text("No tests file: open a policy or pass --tests FILE.", style="red"))
        try:
            from dialogue.testing import load_tests
        except ImportError as exc:
            return self._status(Text(f"The test runner needs dialogue.testing: {exc}", style="red"))
        if not path.exists():
            self._fill()
            return self._status(f"{path.name}: no tests yet. Save a conversation in the playground (ctrl+s).")
        try:
            self.cases = list(load_tests(path))
        except DialogueError as exc:
            return self._status(Text(str(exc), style="red"))
        if self.source is None:  # as `dialogue test`: replay when the file has a cassette
            self.source = "replay" if self._cassette().exists() else "live"
        self._fill()
        self._summary()

    def _cassette(self) -> Path:
        return cassette_of(self.workspace.tests_path)

    def _source_text(self) -> str:
        """How the tests run: replayed from the cassette, or live on the backend."""
        if self.source == "replay":
            return f"replay from {self._cassette().name}"
        return f"live on {self.workspace.backend_name} ({self.workspace.mode})"

    def action_toggle_source(self) -> None:
        """Switch between replaying the cassette and running live on the backend."""
        if self.source is None:
            return
        self.source = SOURCES[(SOURCES.index(self.source) + 1) % len(SOURCES)]
        if self.source == "replay" and not self._cassette().exists():
            self.notify(f"No cassette at {self._cassette()} yet: ctrl+e records one from a live run.",
                        severity="warning", markup=False)
        self._summary()

    def _status(self, text: Text | str) -> None:
        self.query_one("#tests-status", Static).update(text)

    def _fill(self) -> None:
        table = self.query_one("#cases", DataTable)
        table.clear()
        for case in self.cases:
            table.add_row(_name(case), self._result_text(_name(case)), key=_name(case))

    def _result_text(self, name: str) -> Text:
        result = self.results.get(name)
        if result is None:
            return Text("-", style="dim")
        status = _status_of(result)
        return Text(status, style=STATUS_STYLES.get(status, "bold red"))

    def _summary(self) -> None:
        done = [self.results[_name(c)] for c in self.cases if _name(c) in self.results]
        statuses = [_status_of(r) for r in done]
        passed, known = statuses.count("pass"), statuses.count("xfail")
        failed = len(done) - passed - known
        text = Text(f"{self.workspace.tests_path.name}  {len(self.cases)} tests")
        text.append(f"  {self._source_text()}", style="bold")
        if done:
            text.append(f"  {passed} passed", style="green")
            text.append(f"  {failed} failed", style="bold red" if failed else "")
            if known:
                text.append(f"  {known} known misses", style="yellow")
        self._status(text)

    @on(DataTable.RowSelected, "#cases")
    def _row_selected(self) -> None:
        self.action_run_one()

    @on(DataTable.RowHighlighted, "#cases")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None:
            self._show(event.row_key.value)

    def _selected(self) -> str | None:
        table = self.query_one("#cases", DataTable)
        if not self.cases or table.cursor_row is None or table.cursor_row >= len(self.cases):
            return None
        return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value

    def _show(self, name: str) -> None:
        result = self.results.get(name)
        box = self.query_one("#result", Static)
        if result is None:
            return box.update(Text.assemble((name, "bold"), "\nnot run yet: ctrl+o runs it"))
        text = Text.assemble((name, "bold"), "  ", self._result_text(name), "\n")
        if _status_of(result) == "xfail":
            text.append(f"known miss of the model: {result.xfail}\n", style="yellow")
        mismatch = getattr(result, "mismatch", None)
        if mismatch:
            text.append(f"{mismatch}\n", style="red")
        for turn in getattr(result, "turns", None) or []:
            text.append_text(_turn_text(turn))
        box.update(text)

    # -- running -------------------------------------------------------------------

    def action_run_all(self) -> None:
        self._start(None, record=False)

    def action_run_one(self) -> None:
        name = self._selected()
        if name is not None:
            self._start(name, record=False)

    def action_record(self) -> None:
        name = self._selected()
        what = f"the expected replies of {name!r}" if name else "every test's expected replies"
        self.app.push_screen(ConfirmScreen(f"Re-record {what} from what the model says now?"),
                             lambda yes: yes and self._start(name, record=True))

    def _start(self, name: str | None, *, record: bool) -> None:
        if not self.cases or self.workspace.tests_path is None:
            self.notify("No tests to run.", severity="warning")
            return
        if any(w.group == "tests" and w.is_running for w in self.workers):
            self.notify("The tests are running already.", severity="warning")
            return
        self.query_one("#running").display = True
        how = f"recording on {self.workspace.backend_name}" if record else self._source_text()
        self._status(f"running {name or 'all tests'}, {how}...")
        self._run(name, record)

    @work(thread=True, group="tests")
    def _run(self, name: str | None, record: bool) -> None:
        from dialogue.testing import run_tests

        ws = self.workspace

        def progress(result: Any) -> None:
            self.app.call_from_thread(self._progress, result)

        try:
            if self.source == "replay" and not record:
                # The cassette answers; the mode is the file's, as the cassette was recorded.
                run = run_tests([ws.tests_path], replay=True, k=name, coverage=True, progress=progress)
            elif record:
                run = run_tests([ws.tests_path], backend=ws.backend(), k=name, record=True, coverage=True,
                                understanding=self._recorded_understanding(name), progress=progress)
            else:
                run = run_tests([ws.tests_path], backend=ws.backend(), mode=ws.mode, k=name, replay=False,
                                coverage=True, progress=progress)
        except DialogueError as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._finished, run, record)

    def _recorded_understanding(self, name: str | None) -> str | None:
        """Re-recording some cases keeps the understanding the cassette's other cases replay with."""
        path = self._cassette()
        if name is None or not path.exists():
            return None
        from dialogue.testing import Cassette

        return Cassette(path, policy_hash="", catalog_hash="").understanding

    def _progress(self, result: Any) -> None:
        name = getattr(result, "name", None)
        if name is None:
            return
        self.results[name] = result
        table = self.query_one("#cases", DataTable)
        if name in table.rows:
            table.update_cell(name, "result", self._result_text(name))

    def _failed(self, exc: DialogueError) -> None:
        self.query_one("#running").display = False
        self._status(Text(str(exc), style="red"))

    def _finished(self, run: Any, record: bool) -> None:
        self.query_one("#running").display = False
        for result in run.results:
            self._progress(result)
        self.coverage = getattr(run, "coverage", None)
        if record:
            self.action_reload()
            self.notify("Re-recorded the cassette: the model's choices now are what the tests replay.")
        self._summary()
        self._show_coverage()
        name = self._selected()
        if name is not None:
            self._show(name)

    def _show_coverage(self) -> None:
        box = self.query_one("#coverage", Static)
        if self.coverage is None:
            return box.update("")
        box.update(Text.assemble(("coverage\n", "bold underline"), str(self.coverage)))

    def commands(self):
        yield SystemCommand("Run all tests", "Run every conversation test of the policy", self.action_run_all)
        yield SystemCommand("Run the selected test", "Run one conversation test", self.action_run_one)
        yield SystemCommand("Re-record", "Record the replies the model gives now as expected",
                            self.action_record)
        yield SystemCommand("Replay or run live", "Switch between the cassette and the backend",
                            self.action_toggle_source)


STATUS_STYLES = {"pass": "bold green", "xfail": "yellow", "XPASS": "bold yellow"}


def _status_of(result: Any) -> str:
    """pass, FAIL, ERROR, xfail (a known miss of the model) or XPASS."""
    return getattr(result, "status", None) or ("pass" if result.passed else "FAIL")


def _turn_text(turn: Any) -> Text:
    """One turn of a result: the message, and what was expected against what came."""
    if not isinstance(turn, dict):
        return Text(f"{turn}\n")
    out = Text()
    out.append("you ", style="bold")
    out.append(f"{turn.get('user', turn.get('message', ''))}\n")
    expected, got = turn.get("expected"), turn.get("got")
    ok = turn.get("passed", expected == got)
    out.append("  expected ", style="dim")
    out.append(f"{expected}\n")
    out.append("  got      ", style="dim")
    out.append(f"{got}\n", style="green" if ok else "bold red")
    return out


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; No has the focus, so a reflexive Enter changes nothing."""

    BINDINGS = [Binding("escape,n", "answer(False)", "No"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question)
            with Horizontal(id="buttons"):
                yield Button("Yes", id="yes", variant="warning")
                yield Button("No", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
