"""Where keys, tables and values are in a TOML source: lines and columns for author errors.

`tomllib` gives values without positions; this scanner finds them again, by path
(("response", 2, "slots", "price", "type"), ("node", 0, "branch", 1, "say")), so that an
error in a catalog or a conversation tree points at its line and column.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

from .slots import parse_template

__all__ = ["HEADER", "KEY", "Locator", "MAX_KEY_PARTS", "MAX_NESTING", "Spot", "key_parts", "scan_value"]

MAX_NESTING = 32  # brackets and braces open at once; a catalog or tree needs four or five
MAX_KEY_PARTS = 32  # parts of one dotted key or table header


@dataclass(frozen=True)
class Spot:
    """A key in the source: its line, key column/length and value column/length (1-based)."""

    line: int
    column: int
    length: int
    value_column: int | None = None
    value_length: int = 1


HEADER = re.compile(r"\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
KEY = re.compile(r"""\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
KEY_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")


def key_parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in KEY_PART.findall(dotted))


def scan_value(line: str, i: int, depth: int = 0) -> tuple[int, int, str | None]:
    """From `line[i]`, the value's end, the bracket depth left open and an open multi-line quote."""
    while i < len(line):
        if line.startswith(('"""', "'''"), i):
            close = line.find(line[i:i + 3], i + 3)
            if close < 0:
                return len(line), depth, line[i:i + 3]
            i = close + 3
            continue
        c = line[i]
        if c in "\"'":
            i = _string_end(line, i)
            continue
        if c in "[{":
            depth += 1
        elif c in "]}" or (c == "," and depth == 0):
            if depth == 0:
                return i, 0, None
            depth -= 1
        elif c == "#":
            return len(line[:i].rstrip()), depth, None
        i += 1
    return len(line.rstrip()), depth, None


def _deepest(line: str, depth: int) -> tuple[int, int] | None:
    """The column where `line` (entered `depth` brackets deep) opens more than
    MAX_NESTING brackets at once, and that depth; None when it does not. Linear in the line."""
    if depth + line.count("[") + line.count("{") <= MAX_NESTING:
        return None
    i = 0
    while i < len(line):
        c = line[i]
        if line.startswith(('"""', "'''"), i) or c == "#":
            return None
        if c in "\"'":
            i = _string_end(line, i)
            continue
        depth += 1 if c in "[{" else -1 if c in "]}" else 0
        if depth > MAX_NESTING:
            return i + 1, depth
        i += 1
    return None


def _string_end(line: str, i: int) -> int:
    """The index just past the single-line string starting at `line[i]`."""
    quote, j = line[i], i + 1
    while j < len(line) and line[j] != quote:
        j += 2 if quote == '"' and line[j] == "\\" else 1
    return j + 1


class Locator:
    """Positions of tables, keys and values, by path; an array of tables counts its entries:
    ("response", 2, "slots", "price", "type"), ("node", 0, "branch", 1, "say")."""

    def __init__(self, source: str) -> None:
        self.lines = source.splitlines()
        self.spots: dict[tuple, Spot] = {}
        self.arrays: dict[tuple, list[int]] = {}  # path of an array of tables -> line of each header
        self.faults: list[tuple[int, int, str]] = []  # (line, column, what) past a size bound
        self._table: tuple = ()
        self._scan()

    @property
    def blocks(self) -> list[int]:
        """The line of each [[response]] header (a catalog's entries)."""
        return self.arrays.get(("response",), [])

    def _scan(self) -> None:
        quote, depth = None, 0
        for number, line in enumerate(self.lines, 1):
            if quote:
                quote = None if quote in line else quote
            elif (deep := _deepest(line, depth)) is not None:
                self.faults.append((number, deep[0], f"more than {MAX_NESTING} tables and arrays nested"))
                return  # the rest cannot be located without going as deep
            elif depth:
                depth = scan_value(line, 0, depth)[1]
            elif (header := HEADER.match(line)) and not KEY.match(line):
                if not self._too_many_parts(number, line, header.group(2)):
                    self._header(number, line, header)
            elif key := KEY.match(line):
                if not self._too_many_parts(number, line, key.group(1)):
                    quote, depth = self._key(number, line, key)

    def _too_many_parts(self, number: int, line: str, dotted: str) -> bool:
        if dotted.count(".") < MAX_KEY_PARTS or len(key_parts(dotted)) <= MAX_KEY_PARTS:
            return False
        column = len(line) - len(line.lstrip()) + 1
        self.faults.append((number, column, f"a key or table name of more than {MAX_KEY_PARTS} dotted parts"))
        return True

    def _header(self, number: int, line: str, match: re.Match) -> None:
        names = key_parts(match.group(2))
        spot = Spot(number, match.start(1) + 1, match.end() - match.start(1))
        path = self._indexed(names[:-1]) + names[-1:]
        if match.group(1) == "[[":
            self.spots.setdefault(path, spot)  # the array itself: where its first entry starts
            headers = self.arrays.setdefault(path, [])
            headers.append(number)
            path = (*path, len(headers) - 1)
        else:
            path = self._indexed(names)
        self._table = path
        self.spots.setdefault(path, spot)
        self.spots.setdefault(names[:1], spot)  # where an unknown top-level table first appears

    def _indexed(self, names: tuple) -> tuple:
        """`names` of a table with the index of the last entry of each array of tables on the way."""
        path: tuple = ()
        for name in names:
            path = (*path, name)
            if path in self.arrays:
                path = (*path, len(self.arrays[path]) - 1)
        return path

    def _key(self, number: int, line: str, match: re.Match) -> tuple[str | None, int]:
        path = self._table + key_parts(match.group(1))
        start = len(line) - len(line[match.end():].lstrip())
        end, depth, quote = scan_value(line, start)
        column = len(line) - len(line.lstrip()) + 1
        self.spots.setdefault(path, Spot(number, column, len(match.group(1)), start + 1, max(1, end - start)))
        if line[start:start + 1] == "{":
            self._inline(number, line, start + 1, path)
        return quote, depth

    def _inline(self, number: int, line: str, i: int, prefix: tuple) -> None:
        """Record the keys of an inline table ``{ a = 1, b = { c = 2 } }`` starting after its brace."""
        while (key := KEY.match(line, i)) is not None:
            path = prefix + key_parts(key.group(1))
            start = len(line) - len(line[key.end():].lstrip())
            end = scan_value(line, start)[0]
            column = key.start(1) + 1
            self.spots.setdefault(path, Spot(number, column, len(key.group(1)), start + 1, max(1, end - start)))
            if line[start:start + 1] == "{":
                self._inline(number, line, start + 1, path)
            if line[end:end + 1] != ",":
                return
            i = end + 1

    def find(self, path: tuple) -> tuple[tuple, Spot] | None:
        """The spot of `path`, or of its nearest recorded ancestor."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.spots:
                return path[:n], self.spots[path[:n]]
        return None

    def block_of(self, line: int) -> int | None:
        """The index of the [[response]] block holding `line`, or None."""
        n = bisect.bisect_right(self.blocks, line) - 1
        return n if n >= 0 else None

    def in_string(self, spot: Spot, pick: Any) -> tuple[int, int, int] | None:
        """(line, column, length) of the template token that `pick(raw_template)` returns."""
        raw, places = self._string_source(spot)
        if raw is None:
            return None
        found = pick(parse_template(raw))
        if found is None or found[0] >= len(places):
            return None
        line, column = places[found[0]]
        return line, column, found[1]

    def _string_source(self, spot: Spot) -> tuple[str | None, list[tuple[int, int]]]:
        """The raw text inside the string value at `spot`, and the (line, column) of each character."""
        line = self.lines[spot.line - 1]
        start = (spot.value_column or 1) - 1
        quote = line[start:start + 3] if line.startswith(('"""', "'''"), start) else line[start:start + 1]
        if quote not in ('"', "'", '"""', "'''"):
            return None, []
        chars: list[str] = []
        places: list[tuple[int, int]] = []
        number, i = spot.line, start + len(quote)
        while number <= len(self.lines):
            text = self.lines[number - 1]
            end = self._closing(text, i, quote)
            for j in range(i, end if end >= 0 else len(text)):
                chars.append(text[j])
                places.append((number, j + 1))
            if end >= 0 or len(quote) == 1:
                return "".join(chars), places
            chars.append("\n")
            places.append((number, len(text) + 1))
            number, i = number + 1, 0
        return "".join(chars), places

    @staticmethod
    def _closing(text: str, i: int, quote: str) -> int:
        if len(quote) == 1:
            return _string_end(text, i - 1) - 1
        return text.find(quote, i)


