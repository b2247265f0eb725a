"""JSON typed into an editor (the playground's state, a line's slots): an error, never a crash."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # far beyond any state or slot table; deeper input would overflow the parsers


class JsonTextError(ValueError):
    """What is wrong with the text and where, ready to show under the editor."""


def parse_json(text: str) -> Any:
    """The value of `text`; a JsonTextError for bad JSON, nesting past MAX_DEPTH or huge numbers."""
    too_deep = _too_deep_at(text)
    if too_deep is not None:
        line, column = too_deep
        raise JsonTextError(f"nested more than {MAX_DEPTH} deep at line {line}, column {column}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonTextError(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise JsonTextError(f"not JSON: {exc}") from None


def _too_deep_at(text: str) -> tuple[int, int] | None:
    """Line and column of the first bracket past MAX_DEPTH (strings skipped), or None."""
    depth, line, start = 0, 1, 0
    in_string = escaped = False
    for i, char in enumerate(text):
        if in_string:
            in_string = escaped or char != '"'
            escaped = not escaped and char == "\\"
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line, i - start + 1
        elif char in "]}":
            depth -= 1
        elif char == "\n":
            line, start = line + 1, i + 1
    return None
