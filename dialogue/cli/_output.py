"""What the commands print: colour on terminals (never with NO_COLOR or into a pipe), JSON for
scripts, author errors with paths relative to the working folder, and the `-v` log handler."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

__all__ = ["color_enabled", "paint", "print_json", "problem_dict", "problem_key", "problem_text",
           "set_verbosity", "shown_path"]

_STYLES = {"error": "1;31", "warning": "1;33", "hint": "36", "pass": "32", "fail": "1;31", "dim": "2"}


def color_enabled(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, and never where NO_COLOR is set (https://no-color.org) or TERM=dumb."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def paint(text: str, style: str, on: bool) -> str:
    """`text` in the ANSI colour of `style` ("error", "warning", "hint", "pass", "fail", "dim") when `on`."""
    return f"\033[{_STYLES[style]}m{text}\033[0m" if on and text else text


def print_json(value: Any) -> None:
    """One JSON document on stdout: the `--json` output of a command."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def shown_path(file: str) -> str:
    """`file` relative to the working folder when it lies inside it, else as given."""
    try:
        return str(Path(file).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return file


def _shown_location(problem: Any) -> Any:
    location = getattr(problem, "location", None)
    return replace(location, file=shown_path(location.file)) if location is not None else None


def problem_key(problem: Any) -> tuple:
    """What makes two reports the same problem, however the file was named (for de-duplication)."""
    location = getattr(problem, "location", None)
    where = (str(Path(location.file).resolve()), location.line, location.column) if location else None
    return (getattr(problem, "kind", "error"), where, getattr(problem, "message", str(problem)),
            getattr(problem, "entry", None))


def problem_text(problem: Any, color: bool = False) -> str:
    """An error or warning as lint prints it, compiler-style, kind and hint coloured when `color`."""
    if not hasattr(problem, "message"):
        return paint("error:", "error", color) + f" {problem}"
    location, kind = _shown_location(problem), getattr(problem, "kind", "error")
    head = (f"{location}: " if location else "") + paint(f"{kind}:", kind, color)
    head += f" {problem.message}" + (f" [{problem.entry}]" if problem.entry else "")
    parts = [head]
    if location is not None and (excerpt := location.excerpt()):
        parts.append(excerpt)
    if problem.hint:
        parts.append(paint("  hint:", "hint", color) + f" {problem.hint}")
    return "\n".join(parts)


def problem_dict(problem: Any) -> dict[str, Any]:
    """An error or warning as `--json` writes it: kind, file, line, column, entry, message, hint."""
    location = getattr(problem, "location", None)
    return {"kind": getattr(problem, "kind", "error"),
            "file": shown_path(location.file) if location else None,
            "line": location.line if location else None,
            "column": location.column if location else None,
            "entry": getattr(problem, "entry", None),
            "message": getattr(problem, "message", str(problem)),
            "hint": getattr(problem, "hint", None)}


def set_verbosity(level: int) -> None:
    """Show the library's log on stderr: warnings by default, -v info, -vv debug."""
    logger = logging.getLogger("dialogue")
    logger.setLevel(logging.WARNING if level <= 0 else logging.INFO if level == 1 else logging.DEBUG)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (tests swap it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("dialogue: %(levelname)s: %(message)s"))

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass
