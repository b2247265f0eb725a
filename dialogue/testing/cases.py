"""Conversation test files: `policies/NAME.tests.toml`, loaded and checked with file:line.

::

    policy = "blacksmith.py"          # optional: NAME.py (or NAME.tree.toml) beside this file
    mode = "executed"                 # optional: the mode the file runs in unless told otherwise

    [[case]]
    name = "a poor player cannot buy a sword"
    state = { gold = 10 }
    node = "shop"                     # optional: the node the case starts in (default: the start node)

    [[case.turn]]
    user = "how much for a sword?"
    reply = "TOO_POOR(item=sword, price=50)"   # an id (of the last line) or the serialized reply
    slots = { item = "sword" }                 # slot values of the last line
    not = ["OFFER", "SOLD"]                    # ids the reply must not have
    state = { gold = 10 }                      # fields of the state after the turn
    node = "shop"                              # the node the conversation is in after the turn
    fallback = false                           # whether the turn fell back
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..locator import HEADER as _HEADER, KEY as _KEY, key_parts as _key_parts, scan_value as _scan_value
from ..engine import MODES
from ..errors import DialogueError, Location, TestFileError

__all__ = ["Case", "Expected", "ExpectedLine", "TestFile", "case_to_toml", "load_test_file", "load_tests"]

TOP_KEYS = ("policy", "mode", "case")
CASE_KEYS = ("name", "state", "node", "turn", "xfail")
TURN_KEYS = ("user", "reply", "slots", "not", "state", "node", "fallback")
SUFFIX = ".tests.toml"


@dataclass(frozen=True)
class ExpectedLine:
    """One line of an expected reply: its id, and its slot values as text when written."""

    id: str
    slots: dict[str, str] | None = None  # None: only the id is expected


@dataclass(frozen=True)
class Expected:
    """What one turn must produce; every field is optional."""

    user: str
    reply: tuple[ExpectedLine, ...] = ()
    slots: dict[str, Any] = field(default_factory=dict)
    not_ids: tuple[str, ...] = ()
    state: dict[str, Any] = field(default_factory=dict)
    fallback: bool | None = None
    line: int | None = None  # where the turn is written
    node: str | None = None  # the node after the turn

    def describe(self) -> str:
        """The expectation in one line, as the runner prints it."""
        parts = [_reply_text(self.reply)] if self.reply else []
        if self.slots:
            parts.append("slots " + ", ".join(f"{k}={v}" for k, v in self.slots.items()))
        if self.not_ids:
            parts.append("not " + ", ".join(self.not_ids))
        if self.state:
            parts.append("state " + ", ".join(f"{k}={v}" for k, v in self.state.items()))
        if self.node is not None:
            parts.append(f"node {self.node}")
        if self.fallback is not None:
            parts.append(f"fallback={'true' if self.fallback else 'false'}")
        return "; ".join(parts) or "(anything)"


@dataclass(frozen=True)
class Case:
    """One conversation test: a name, a starting state and turns with expectations."""

    name: str
    state: dict[str, Any]
    turns: tuple[Expected, ...]
    file: Path
    line: int | None = None
    xfail: str | None = None  # a known miss of the model, with the reason; still run and reported
    node: str | None = None  # the node the case starts in; None: the policy's start node


@dataclass
class TestFile:
    """A loaded tests file: its cases, the policy they test and the mode it runs in."""

    __test__ = False  # not a pytest test class

    path: Path
    cases: list[Case]
    policy_path: Path | None
    mode: str | None = None
    policy: Any = None  # the loaded Policy the cases were checked against, when found

    @property
    def cassette_path(self) -> Path:
        """`NAME.cassette.json` beside `NAME.tests.toml`."""
        return self.path.with_name(self.path.name.removesuffix(SUFFIX).removesuffix(".toml") + ".cassette.json")


def load_tests(path: str | Path, policy: Any = None) -> list[Case]:
    """The cases of a tests file, checked against its policy when the policy is found."""
    return load_test_file(path, policy).cases


def load_test_file(path: str | Path, policy: Any = None) -> TestFile:
    """Load and check a tests file; raises `TestFileError` with file:line at the first fault.

    `policy` (a loaded Policy) is used when given; else the file's `policy = "..."`, else
    NAME.py or NAME.tree.toml beside it. Without a policy only the file's shape is checked.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TestFileError(f"cannot read {path}: {exc.strerror or exc}", location=Location(str(path))) from None
    return _Loader(path, text, policy).load()


class _Loader:
    def __init__(self, path: Path, text: str, policy: Any) -> None:
        self.path, self.text, self.policy = path, text, policy
        self.where = _Locator(text)

    def load(self) -> TestFile:
        data = self._parse()
        self._keys(data, (), TOP_KEYS, "a tests file has `policy`, `mode` and [[case]] tables")
        mode = data.get("mode")
        if mode is not None and mode not in MODES:
            self.fail(("mode",), f"unknown mode {mode!r}", f"mode is one of {', '.join(MODES)}")
        policy_path = self._policy_path(data.get("policy"))
        if self.policy is None and policy_path is not None:
            from ..policy import load_policy

            self.policy = load_policy(policy_path)
        cases = self._cases(data.get("case", []))
        return TestFile(self.path, cases, policy_path, mode, self.policy)

    # -- faults ------------------------------------------------------------------

    def fail(self, path: tuple, message: str, hint: str | None = None, *, entry: str | None = None):
        raise TestFileError(message, location=self.where.location(str(self.path), path), entry=entry,
                            hint=hint)

    def _parse(self) -> dict:
        try:
            return tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
            line, column = (int(match.group(1)), int(match.group(2))) if match else (None, None)
            source = self.where.lines[line - 1] if line and line <= len(self.where.lines) else None
            raise TestFileError(f"TOML syntax: {message[:match.start()] if match else message}",
                                location=Location(str(self.path), line, column, source)) from None

    def _keys(self, table: dict, path: tuple, allowed: tuple[str, ...], hint: str, entry: str | None = None) -> None:
        for key in table:
            if key not in allowed:
                close = [a for a in allowed if a.startswith(key[:2])]
                extra = f"; did you mean {close[0]!r}?" if close else ""
                self.fail((*path, key), f"unknown key {key!r}", hint + extra, entry=entry)

    def _policy_path(self, named: Any) -> Path | None:
        if named is not None:
            if not isinstance(named, str):
                self.fail(("policy",), "`policy` is the path of the policy file, as text")
            found = (self.path.parent / named)
            if not found.is_file():
                self.fail(("policy",), f"no policy file at {found}", "the path is relative to the tests file")
            return found
        stem = self.path.name.removesuffix(SUFFIX).removesuffix(".toml")
        for candidate in (f"{stem}.py", f"{stem}.tree.toml"):
            if (self.path.parent / candidate).is_file():
                return self.path.parent / candidate
        return None

    # -- cases -------------------------------------------------------------------

    def _cases(self, raw: Any) -> list[Case]:
        if not isinstance(raw, list):
            self.fail(("case",), "`case` is an array of tables: write [[case]]")
        cases, names = [], {}
        for n, table in enumerate(raw):
            case = self._case(n, table)
            if case.name in names:
                self.fail(("case", n, "name"), f"two cases named {case.name!r}",
                          f"the first is on line {names[case.name]}", entry=case.name)
            names[case.name] = case.line
            cases.append(case)
        return cases

    def _case(self, n: int, table: dict) -> Case:
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            self.fail(("case", n, "name") if "name" in table else ("case", n),
                      "a case needs a `name`", 'name = "what the case shows"')
        self._keys(table, ("case", n), CASE_KEYS, "a case has name, state, node, xfail and [[case.turn]] tables",
                   name)
        node = self._node(table.get("node"), ("case", n, "node"), name)
        state = self._state(table.get("state", {}), ("case", n, "state"), name, start=True)
        turns = table.get("turn", [])
        if not isinstance(turns, list) or not turns:
            self.fail(("case", n), "a case needs at least one turn", "add [[case.turn]] with user = \"...\"",
                      entry=name)
        xfail = table.get("xfail")
        if xfail is not None and not isinstance(xfail, str):
            self.fail(("case", n, "xfail"), "`xfail` is the reason the model is known to miss, as text",
                      entry=name)
        expected = tuple(self._turn(("case", n, "turn", i), t, name) for i, t in enumerate(turns))
        line = self.where.line_of(("case", n))
        return Case(name, state, expected, self.path, line, xfail, node)

    def _node(self, value: Any, path: tuple, case: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(path, "`node` is the name of a node of the policy, as text", entry=case)
        if self.policy is not None and value not in self.policy.nodes:
            self.fail(path, f"policy {self.policy.name!r} has no node {value!r}",
                      f"nodes: {', '.join(self.policy.nodes)}", entry=case)
        return value

    def _turn(self, path: tuple, table: dict, case: str) -> Expected:
        self._keys(table, path, TURN_KEYS, f"a turn has {', '.join(TURN_KEYS)}", case)
        user = table.get("user")
        if not isinstance(user, str):
            self.fail(path, "a turn needs `user`: the message typed", entry=case)
        reply = self._reply(table.get("reply"), (*path, "reply"), case)
        slots = self._table(table.get("slots", {}), (*path, "slots"), case)
        if slots:
            self._slot_names(reply, slots, path, case)
        not_ids = table.get("not", [])
        if isinstance(not_ids, str):
            not_ids = [not_ids]
        if not isinstance(not_ids, list) or not all(isinstance(i, str) for i in not_ids):
            self.fail((*path, "not"), "`not` is a list of reply ids", entry=case)
        for id in not_ids:
            self._known_id(id, (*path, "not"), case)
        state = self._state(table.get("state", {}), (*path, "state"), case, start=False)
        fallback = table.get("fallback")
        if fallback is not None and not isinstance(fallback, bool):
            self.fail((*path, "fallback"), "`fallback` is true or false", entry=case)
        node = self._node(table.get("node"), (*path, "node"), case)
        return Expected(user, reply, slots, tuple(not_ids), state, fallback, self.where.line_of(path), node)

    def _table(self, value: Any, path: tuple, case: str) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"`{path[-1]}` is a table: {{ name = value, ... }}", entry=case)
        return value

    def _reply(self, value: Any, path: tuple, case: str) -> tuple[ExpectedLine, ...]:
        if value is None:
            return ()
        if not isinstance(value, str):
            self.fail(path, "`reply` is a reply id or a serialized reply, as text",
                      'reply = "GREETING" or reply = "OFFER(item=shield, price=30)"', entry=case)
        try:
            lines = parse_reply(value)
        except ValueError as exc:
            self.fail(path, f"cannot read reply {value!r}: {exc}",
                      'write ID, ID(slot=value, ...) or several joined by " + "', entry=case)
        for line in lines:
            self._known_id(line.id, path, case)
            if line.slots is not None:
                self._slot_names((line,), line.slots, path, case)
        return lines

    def _known_id(self, id: str, path: tuple, case: str) -> None:
        catalog = self.policy.catalog if self.policy is not None else None
        if catalog is not None and id not in catalog:
            close = [r.id for r in catalog if r.id.startswith(id[:3])]
            hint = f"did you mean {close[0]}?" if close else f"ids: {', '.join(r.id for r in catalog)}"
            self.fail(path, f"{id} is not in catalog {catalog.id!r}", hint, entry=case)

    def _slot_names(self, reply: tuple[ExpectedLine, ...], slots: dict, path: tuple, case: str) -> None:
        catalog = self.policy.catalog if self.policy is not None else None
        if catalog is None or not reply or reply[-1].id not in catalog:
            return
        declared = catalog[reply[-1].id].slots
        for name in slots:
            if name not in declared:
                where = (*path, "slots", name) if path[-1] != "reply" else path
                self.fail(where, f"{reply[-1].id} has no slot {name!r}",
                          f"its slots: {', '.join(declared) or '(none)'}", entry=case)

    def _state(self, value: Any, path: tuple, case: str, *, start: bool) -> dict:
        value = self._table(value, path, case)
        if self.policy is None:
            return value
        model = self.policy.state_model
        for key in value:
            if key not in model.model_fields:
                self.fail((*path, key), f"the state of policy {self.policy.name!r} has no field {key!r}",
                          f"fields of {model.__name__}: {', '.join(model.model_fields)}", entry=case)
        try:
            checked = self.policy.new_state(value)
        except DialogueError as exc:
            self.fail(path, getattr(exc, "message", str(exc)), getattr(exc, "hint", None), entry=case)
        dumped = checked.model_dump(mode="json")
        return value if start else {k: dumped[k] for k in value}


def parse_reply(text: str) -> tuple[ExpectedLine, ...]:
    """`A + B(x=1, y=two)` as expected lines; slot values stay text, compared as text."""
    lines = []
    for part in text.split(" + "):
        match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*", part, re.S)
        if match is None:
            raise ValueError(f"{part.strip()!r} is not ID or ID(slot=value, ...)")
        slots = None
        if match.group(2) is not None:
            slots = {}
            for pair in filter(None, (p.strip() for p in match.group(2).split(", "))):
                name, eq, value = pair.partition("=")
                if not eq or not name.strip():
                    raise ValueError(f"{pair!r} is not slot=value")
                slots[name.strip()] = value.strip()
        lines.append(ExpectedLine(match.group(1), slots))
    return tuple(lines)


def _reply_text(lines: tuple[ExpectedLine, ...]) -> str:
    return " + ".join(line.id if line.slots is None else
                      f"{line.id}({', '.join(f'{k}={v}' for k, v in line.slots.items())})" for line in lines)


# -- writing a case: a playground conversation saved as a test ----------------------------------


def case_to_toml(name: str, state: dict[str, Any] | BaseModel | None, turns: list) -> str:
    """A [[case]] expecting the replies of `turns` (dialogue.engine.Turn objects), as TOML text."""
    if isinstance(state, BaseModel):
        state = state.model_dump(mode="json")
    out = ["[[case]]", f"name = {_toml(name)}"]
    state = {k: v for k, v in (state or {}).items() if v is not None}
    if state:
        out.append(f"state = {_toml(state)}")
    for turn in turns:
        lines = turn.lines or [{"id": line.id, "slots": line.slots} for line in turn.reply.lines]
        out += ["", "[[case.turn]]", f"user = {_toml(turn.message)}", f"reply = {_toml(_lines_text(lines))}"]
        if turn.trace.fallback:
            out.append("fallback = true")
    return "\n".join(out) + "\n"


def _lines_text(lines: list[dict]) -> str:
    from ..grammar import value_text

    return " + ".join(line["id"] if not line.get("slots") else
                      f"{line['id']}({', '.join(f'{k}={value_text(v)}' for k, v in line['slots'].items())})"
                      for line in lines)


def _toml(value: Any) -> str:
    """A TOML value for plain data (None has no TOML form; callers drop it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (Decimal, date, datetime)):
        return json.dumps(str(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = [f"{_key(k)} = {_toml(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    return json.dumps(str(value))


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


# -- where keys are: ("case", 2, "turn", 0, "reply") -> line ----------------------------------


class _Locator:
    """Lines and columns of tables and keys in a tests file, by path."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.spots: dict[tuple, tuple[int, int, int]] = {}  # path -> (line, column, length)
        self._scan()

    def _scan(self) -> None:
        table: tuple = ()
        cases, turns = -1, -1
        quote, depth = None, 0
        for number, line in enumerate(self.lines, 1):
            if quote:
                quote = None if quote in line else quote
                continue
            if depth:
                depth = _scan_value(line, 0, depth)[1]
                continue
            header, key = _HEADER.match(line), _KEY.match(line)
            if header and not key:
                parts = _key_parts(header.group(2))
                if header.group(1) == "[[" and parts == ("case",):
                    cases, turns = cases + 1, -1
                    table = ("case", cases)
                elif header.group(1) == "[[" and parts == ("case", "turn") and cases >= 0:
                    turns += 1
                    table = ("case", cases, "turn", turns)
                else:
                    table = parts
                self.spots.setdefault(table, (number, header.start(1) + 1, header.end() - header.start(1)))
            elif key:
                path = table + _key_parts(key.group(1))
                start = len(line) - len(line[key.end():].lstrip())
                _, depth, quote = _scan_value(line, start)
                self.spots.setdefault(path, (number, key.start(1) + 1, len(key.group(1))))
                self._inline(number, line, start, path)

    def _inline(self, number: int, line: str, start: int, prefix: tuple) -> None:
        """Keys of a one-line inline table `{ a = 1, b = 2 }`."""
        if line[start:start + 1] != "{":
            return
        i = start + 1
        while (key := _KEY.match(line, i)) is not None:
            self.spots.setdefault(prefix + _key_parts(key.group(1)), (number, key.start(1) + 1, len(key.group(1))))
            end = _scan_value(line, len(line) - len(line[key.end():].lstrip()))[0]
            if line[end:end + 1] != ",":
                return
            i = end + 1

    def line_of(self, path: tuple) -> int | None:
        found = self.spots.get(path)
        return found[0] if found else None

    def location(self, file: str, path: tuple) -> Location:
        for n in range(len(path), 0, -1):
            if path[:n] in self.spots:
                line, column, length = self.spots[path[:n]]
                return Location(file, line, column, self.lines[line - 1], length)
        return Location(file)
