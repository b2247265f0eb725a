"""The pytest plugin (entry point `pytest11`): `*.tests.toml` files are collected as tests.

Each case is one test item, run like `dialogue test` runs it: replayed from the file's
cassette when there is one, else live on the embedded model (those items are marked
`model`). A failing case shows its first mismatch and the turn's reachable replies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SUFFIX = ".tests.toml"


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.name.endswith(SUFFIX):
        return ConversationTests.from_parent(parent, path=file_path)
    return None


class ConversationTests(pytest.File):
    """One tests file; its cases share one engine and cassette."""

    _runner: Any = None

    def collect(self):
        from ..testing.cases import load_test_file

        self.tests_file = load_test_file(self.path)
        live = not self.tests_file.cassette_path.exists()
        for case in self.tests_file.cases:
            item = ConversationCase.from_parent(self, name=case.name, case=case)
            if live:
                item.add_marker(pytest.mark.model)
            yield item

    def runner(self):
        if self._runner is None:
            from ..testing.runner import FileRunner

            self._runner = FileRunner(self.tests_file)
        return self._runner


class ConversationCase(pytest.Item):
    """One case of a tests file."""

    def __init__(self, *, case, **kwargs) -> None:
        super().__init__(**kwargs)
        self.case = case
        if case.xfail is not None:
            self.add_marker(pytest.mark.xfail(reason=case.xfail, strict=False, raises=CaseFailed))

    def runtest(self) -> None:
        result = self.parent.runner().run_case(self.case)
        if not result.passed:
            raise CaseFailed(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailed):
            result = excinfo.value.result
            head = f"{self.case.file}:{self.case.line}: case {self.case.name!r} failed"
            return f"{head}\n{result.mismatch}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, (self.case.line or 1) - 1, f"case: {self.case.name}"


class CaseFailed(Exception):
    """A conversation case that did not pass (its result holds why)."""

    def __init__(self, result) -> None:
        super().__init__(result.mismatch)
        self.result = result
