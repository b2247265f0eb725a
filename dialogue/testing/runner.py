"""Running conversation tests: each case's turns through the engine, checked as they come.

A file runs on its cassette (replay) when it has one and no backend is named; with
`record=True` the live backend answers and the cassette is written again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterable

from ..engine import Engine, Turn, default_understanding
from ..errors import DialogueError, RunError
from ..grammar import display, serialize, value_text
from .cases import Case, Expected, TestFile, load_test_file
from .cassette import Cassette, StaleCassette
from .coverage import Coverage

__all__ = ["CaseResult", "FileRunner", "Run", "run_tests"]


@dataclass
class CaseResult:
    """One run of one case: passed or not, the first mismatch, and every turn as checked."""

    name: str
    passed: bool
    mismatch: str = ""
    turns: list[dict] = field(default_factory=list)
    file: str = ""
    error: str = ""  # a run error (stale cassette, backend failure), not a mismatch
    xfail: str | None = None
    seconds: float = 0.0
    repeat: int = 0

    @property
    def ok(self) -> bool:
        """Whether the case counts as good: passed, or a known miss of the model (`xfail`).

        A known miss that passes (XPASS: a better model, or a luckier run) is reported but
        is no failure; a run error (stale cassette, backend down) always is.
        """
        return self.passed if self.xfail is None else not self.error

    @property
    def status(self) -> str:
        if self.error:
            return "ERROR"
        if self.xfail is not None:
            return "xfail" if not self.passed else "XPASS"
        return "pass" if self.passed else "FAIL"


@dataclass
class Run:
    """Every case result of a run, with coverage when asked for."""

    results: list[CaseResult] = field(default_factory=list)
    coverage: Coverage | None = None
    mode: str = ""
    source: str = ""  # "replay", "live" or "record"

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def pass_rates(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(file, case) -> (passed, runs), over repeats."""
        rates: dict[tuple[str, str], list[int]] = {}
        for r in self.results:
            rate = rates.setdefault((r.file, r.name), [0, 0])
            rate[0] += r.passed
            rate[1] += 1
        return {k: (v[0], v[1]) for k, v in rates.items()}


def run_tests(paths: Iterable[str | Path], *, backend: Any = None, mode: str | None = None,
              k: str | None = None, record: bool = False, replay: bool | None = None,
              coverage: bool = False, progress: Callable[[CaseResult], Any] | None = None,
              repeat: int = 1, understanding: str | None = None) -> Run:
    """Run the cases of these tests files; returns a `Run`.

    `backend`: a backend object or name to run live; None replays each file's cassette
    when it has one, else runs the embedded model. `mode`: "prompted" or "executed"
    (default: the file's `mode`, else prompted). `k`: run only cases whose name contains it.
    `record`: run live and write each file's cassette again. `replay=True` refuses to run
    a file without a cassette; `replay=False` runs live even where one exists.
    `progress(result)` is called as each case finishes. `repeat`: run each case N times.
    `understanding`: "encoder", "model" or "hybrid" (default: a replay uses the cassette's, so
    it tests the setup that recorded it; a live run what `Engine` chooses for the backend).
    """
    run = Run(coverage=Coverage() if coverage else None)
    shared: dict[str, Any] = {}
    for path in paths:
        file = load_test_file(path)
        runner = FileRunner(file, backend=backend, mode=mode, record=record, replay=replay,
                            coverage=run.coverage, shared=shared, understanding=understanding)
        run.mode, run.source = runner.mode, runner.source
        try:
            for case in file.cases:
                if k is not None and k.lower() not in case.name.lower():
                    continue
                for n in range(repeat):
                    result = runner.run_case(case, repeat=n)
                    run.results.append(result)
                    if progress is not None:
                        progress(result)
        finally:
            runner.finish()
    return run


class FileRunner:
    """Runs the cases of one tests file on one engine (and cassette)."""

    def __init__(self, file: TestFile, *, backend: Any = None, mode: str | None = None, record: bool = False,
                 replay: bool | None = None, coverage: Coverage | None = None,
                 shared: dict[str, Any] | None = None, understanding: str | None = None) -> None:
        from ..policy import load_policy

        if file.policy_path is None:
            raise DialogueError(f"{file.path}: no policy to test; put the tests file beside "
                                "NAME.py, or name it: policy = \"path/to/policy.py\"")
        self.file, self.coverage = file, coverage
        self.policy = file.policy or load_policy(file.policy_path)
        self.mode = mode or file.mode or "prompted"
        self.record = record
        self.cassette: Cassette | None = None
        self.cases_run: set[str] = set()
        cassette_path = file.cassette_path
        if replay is None:
            replay = not record and backend is None and cassette_path.exists()
        if replay and record:
            raise ValueError("record and replay exclude each other")
        if replay:
            if not cassette_path.exists():
                raise StaleCassette(f"{file.path}: no cassette at {cassette_path}; record one with "
                                    f"`dialogue test --record {file.path}`")
            self.cassette = Cassette(cassette_path, policy_hash=self.policy.hash,
                                     catalog_hash=self.policy.catalog.hash)
            engine_backend: Any = self.cassette
            self.source = "replay"
        else:
            live = _live_backend(backend, shared if shared is not None else {})
            engine_backend = live
            self.source = "record" if record else "live"
            if record:
                self.cassette = Cassette(cassette_path, policy_hash=self.policy.hash,
                                         catalog_hash=self.policy.catalog.hash, inner=live, record=True)
                engine_backend = self.cassette
        if replay:
            self.understanding = understanding or self.cassette.understanding
        else:
            self.understanding = understanding or default_understanding(backend or "llamacpp")
            if self.cassette is not None:
                self.cassette.understanding = self.understanding
        self.engine = Engine(self.policy, mode=self.mode, backend=engine_backend,
                             understanding=self.understanding)
        if coverage is not None:
            coverage.add_policy(self.policy)
        self._sessions = 0

    def finish(self) -> None:
        """Write the cassette after recording."""
        if self.record and self.cassette is not None and self.cases_run:
            self.cassette.save(self.cases_run)

    def run_case(self, case: Case, repeat: int = 0) -> CaseResult:
        started = time.perf_counter()
        self.cases_run.add(case.name)
        result = CaseResult(case.name, True, file=str(self.file.path), xfail=case.xfail, repeat=repeat)
        self._sessions += 1
        session = self.engine.session(f"test-{self._sessions}", state=case.state, node=case.node)
        for n, expected in enumerate(case.turns, 1):
            if self.cassette is not None:
                self.cassette.case = case.name
                self.cassette.context = f"{self.file.path}: case {case.name!r}, turn {n} ({expected.user!r})"
            before, node = session.state, session.node
            try:
                turn = session.say(expected.user)
            except RunError as exc:
                result.passed, result.error = False, str(exc)
                result.mismatch = f"turn {n} ({expected.user!r}): {exc}"
                result.turns.append({"user": expected.user, "expected": expected.describe(), "got": "error",
                                     "passed": False})
                break
            problem = check_turn(expected, turn, self.engine.catalog)
            self._cover(before, node, turn)
            result.turns.append({"user": expected.user, "expected": expected.describe(),
                                 "got": got_text(turn, self.engine.catalog), "passed": problem is None})
            if problem is not None:
                result.passed = False
                reachable = self._reachable(before, node)
                result.mismatch = (f"turn {n} ({expected.user!r}): {problem}\n"
                                   f"  reachable: {', '.join(reachable)}")
                break
        result.seconds = time.perf_counter() - started
        return result

    def _reachable(self, state, node: str) -> list[str]:
        exploration = self.engine.explore(state, node)
        return [display(serialize(r, self.engine.catalog)) for r in exploration.reachable]

    def _cover(self, state, node: str, turn: Turn) -> None:
        if self.coverage is None:
            return
        steps = self.coverage.add_exploration(self.policy.name, node, self.engine.explore(state, node))
        if not turn.trace.fallback:
            path = turn.trace.path
            self.coverage.add_turn(self.policy.name, node, turn.lines, path, steps)


def _live_backend(backend: Any, shared: dict[str, Any]) -> Any:
    """A backend object for a live run; named ones are created once per run."""
    if backend is not None and not isinstance(backend, str):
        return backend
    name = backend or "llamacpp"
    if name not in shared:
        from ..backends import create_backend

        shared[name] = create_backend(name)
    return shared[name]


# -- checking one turn ----------------------------------------------------------------------


def got_text(turn: Turn, catalog) -> str:
    """What a turn said, serialized as the model writes replies."""
    text = display(serialize(turn.reply, catalog))
    return text + " (fallback)" if turn.trace.fallback else text


def check_turn(expected: Expected, turn: Turn, catalog) -> str | None:
    """The first way `turn` differs from `expected`, as 'expected X, got Y'; None when it matches."""
    got = got_text(turn, catalog)
    lines = turn.reply.lines
    if expected.reply and not _reply_matches(expected, lines):
        return f"expected {expected.describe().split('; ')[0]}, got {got}"
    last = lines[-1]
    for name, value in expected.slots.items():
        if name not in last.slots or not same_value(value, last.slots[name]):
            shown = value_text(last.slots[name]) if name in last.slots else "(no such slot)"
            return f"expected slot {name}={value_text(value)}, got {name}={shown} in {got}"
    ids = {line.id for line in lines}
    for id in expected.not_ids:
        if id in ids:
            return f"expected not {id}, got {got}"
    if expected.fallback is not None and expected.fallback != turn.trace.fallback:
        why = f" ({turn.trace.fallback_reason})" if turn.trace.fallback_reason else ""
        return f"expected fallback={str(expected.fallback).lower()}, got {got}{why}"
    state = turn.state.model_dump(mode="json")
    for name, value in expected.state.items():
        if state.get(name) != value:
            return f"expected state {name}={value!r}, got {name}={state.get(name)!r} after {got}"
    after = turn.reply.goto or turn.node
    if expected.node is not None and expected.node != after:
        return f"expected node {expected.node}, got node {after} after {got}"
    return None


def _reply_matches(expected: Expected, lines) -> bool:
    want = expected.reply
    if len(want) == 1 and want[0].slots is None:
        return lines[-1].id == want[0].id
    if len(want) != len(lines):
        return False
    for w, line in zip(want, lines):
        if w.id != line.id:
            return False
        if w.slots is not None and (set(w.slots) != set(line.slots) or
                                    not all(same_value(v, line.slots[k]) for k, v in w.slots.items())):
            return False
    return True


def same_value(expected: Any, got: Any) -> bool:
    """Slot values compared as the model writes them; numbers by value (30 == 30.00)."""
    a, b = value_text(expected), value_text(got)
    if a == b:
        return True
    try:
        return Decimal(a) == Decimal(b)
    except (InvalidOperation, ValueError):
        return False
