"""Reviewed examples: messages people typed and the reply they should have had.

They live beside the policy, in `policies/NAME.examples.toml`, reviewable in git; the
matcher learns from them on load. Nothing writes them silently: `dialogue learn` appends
reviewed turns (corrections from the store, test-case turns) and says what it added.

```toml
[[example]]
message = "do u fix helmets"
reply = "REPAIRED"                # the catalog id the message should have led to
slots = { price = 5 }             # optional: slot values, to tell apart paths that share the id
node = "main"                     # optional: the node it was said in (default: the start node)
state = { gold = 3 }              # optional: the state before the turn
source = "correction"             # correction | test | manual
session = "player-7"              # optional provenance: session, turn, by, at
turn = 2
by = "j.doe"
at = "2026-12-04T10:00:00Z"
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import Location, PolicyError

__all__ = ["Example", "append_examples", "examples_path", "load_examples", "new_examples"]

SOURCES = ("correction", "test", "manual")
_KEYS = {"message", "reply", "slots", "node", "state", "source", "session", "turn", "by", "at"}
HEADER = ("# Reviewed examples for {policy}: what people typed and the reply it should lead to.\n"
          "# The matcher learns from these when the policy loads; `dialogue learn` appends to this file.\n")


@dataclass(frozen=True)
class Example:
    """One reviewed message and the reply id it should lead to."""

    message: str
    reply: str
    node: str | None = None
    state: dict = field(default_factory=dict, hash=False)
    slots: dict = field(default_factory=dict, hash=False)
    source: str = "manual"
    session: str | None = None
    turn: int | None = None
    by: str | None = None
    at: str | None = None

    def key(self) -> tuple:
        return (self.message, self.reply, self.node)


def examples_path(policy_file: str | Path) -> Path:
    """`policies/NAME.examples.toml` for `policies/NAME.py` (or `NAME.tree.toml`)."""
    path = Path(policy_file)
    stem = path.name.removesuffix(".tree.toml").removesuffix(".py")
    return path.with_name(f"{stem}.examples.toml")


def load_examples(path: str | Path) -> list[Example]:
    """The examples in `path` ([] when there is no such file); a broken file is a PolicyError."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"examples file is not valid TOML: {exc}", location=Location(str(path))) from None
    unknown = set(data) - {"example"}
    if unknown:
        raise PolicyError(f"examples file has unknown table {sorted(unknown)[0]!r}", location=Location(str(path)),
                          hint="the file holds [[example]] tables only")
    return [_example(entry, path, i) for i, entry in enumerate(data.get("example", []), 1)]


def _example(entry: Any, path: Path, number: int) -> Example:
    where = Location(str(path))
    if not isinstance(entry, dict):
        raise PolicyError(f"example {number} is not a table", location=where)
    unknown = set(entry) - _KEYS
    if unknown:
        raise PolicyError(f"example {number} has unknown key {sorted(unknown)[0]!r}", location=where,
                          hint=f"keys: {', '.join(sorted(_KEYS))}")
    for key in ("message", "reply"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise PolicyError(f"example {number} needs {key} = \"...\"", location=where)
    if entry.get("source", "manual") not in SOURCES:
        raise PolicyError(f"example {number} has source {entry['source']!r}", location=where,
                          hint=f"one of {', '.join(SOURCES)}")
    for key in ("state", "slots"):
        if not isinstance(entry.get(key, {}), dict):
            raise PolicyError(f"example {number}: {key} is a table, e.g. {key} = {{ gold = 3 }}", location=where)
    return Example(**entry)


def new_examples(path: str | Path, examples: Iterable[Example]) -> list[Example]:
    """The examples not in the file yet (same message, reply and node), each once, in order."""
    existing = {e.key() for e in load_examples(path)}
    new: list[Example] = []
    for example in examples:
        if example.key() not in existing:
            existing.add(example.key())
            new.append(example)
    return new


def append_examples(path: str | Path, examples: Iterable[Example], *, policy_name: str = "") -> list[Example]:
    """Append the examples not in the file yet (same message, reply and node); returns them."""
    import tomlkit

    path = Path(path)
    new = new_examples(path, examples)
    if not new:
        return []
    text = path.read_text(encoding="utf-8") if path.is_file() else HEADER.format(policy=policy_name or path.name)
    document = tomlkit.parse(text)
    tables = document.get("example")
    if tables is None:
        tables = tomlkit.aot()
        document.append("example", tables)
    for example in new:
        table = tomlkit.table()
        for key in ("message", "reply", "node", "state", "source", "session", "turn", "by", "at"):
            value = getattr(example, key)
            if key == "state":
                value = _without_none(value)
            if value not in (None, {}):
                table[key] = tomlkit.inline_table() if key == "state" else value
                if key == "state":
                    table[key].update(value)
        tables.append(table)
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    return new


def _without_none(value: Any) -> Any:
    """TOML has no null: a state field that is None is left out (the state model's default)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value
