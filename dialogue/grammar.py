"""The grammar of a turn: exactly the serialized forms of its reachable replies.

`serialize` writes a reply as the model must emit it: `GREETING`, or
`OFFER(item=sword, price=50)`; a slot the model fills from the message (an
extracted value) is a hole constrained by its regex. `reply_grammar` builds the Lark
grammar that admits exactly those strings; validation parses model output with it.
"""

from __future__ import annotations

import datetime as _dt
import re
import threading
from collections import OrderedDict
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any, Sequence

from .backends.base import Constraint, Hole, Piece, _merge
from .errors import OutputInvalid
from . import patterns
from .patterns import fullmatches, word_spans
from .reply import Reply
from .said import Extracted

__all__ = ["ReplyGrammar", "constraint_for", "display", "extracted_in_order", "narrowed", "reply_grammar",
           "serialize", "value_text"]


def value_text(value: Any) -> str:
    """A slot value as the model reads and writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return str(value)


class _IdentityCache:
    """Results remembered by the identity of their inputs (replies, catalogs are immutable).

    Each entry keeps its inputs alive and is checked with `is`, so a reused `id()` never
    returns another object's result. Bounded: cleared wholesale when full.
    """

    def __init__(self, size: int) -> None:
        self.size, self.entries = size, {}

    def get(self, key: tuple, inputs: tuple) -> Any:
        entry = self.entries.get(key)
        if entry is not None and len(entry[0]) == len(inputs) and all(a is b for a, b in zip(entry[0], inputs)):
            return entry[1]
        return None

    def put(self, key: tuple, inputs: tuple, value: Any) -> Any:
        if len(self.entries) >= self.size:
            self.entries.clear()
        self.entries[key] = (inputs, value)
        return value


_SERIALIZED = _IdentityCache(8192)
_CONSTRAINTS = _IdentityCache(256)


def serialize(reply: Reply, catalog=None) -> tuple[Piece, ...]:
    """The model-facing form of `reply`: literal text, with holes for extracted slots.

    Slots follow the catalog's declaration order; the lines of a multi-line reply are
    joined by " + ". Remembered per reply object: a turn's history and reachable set
    reuse the same objects.
    """
    key = (id(reply), id(catalog))
    entry = _SERIALIZED.entries.get(key)
    if entry is not None and entry[0][0] is reply and entry[0][1] is catalog:
        return entry[1]
    return _SERIALIZED.put(key, (reply, catalog), _serialize(reply, catalog))


def _serialize(reply: Reply, catalog=None) -> tuple[Piece, ...]:
    pieces: list[Piece] = []
    for n, line in enumerate(reply.lines):
        if n:
            pieces.append(" + ")
        pieces.extend(_line_pieces(line, slot_names(line, catalog)))
    return _merge(tuple(pieces))


def slot_names(line: Reply, catalog=None) -> list[str]:
    """The slot names of one line in serialization order: the catalog's, then any others."""
    order = list(catalog[line.id].slots) if catalog is not None and line.id in catalog else []
    names = [n for n in order if n in line.slots]
    return names + [n for n in line.slots if n not in names]


def _line_pieces(line: Reply, names: list[str]) -> list[Piece]:
    if not line.slots:
        return [line.id]
    pieces: list[Piece] = [f"{line.id}("]
    for i, name in enumerate(names):
        pieces.append(f"{', ' if i else ''}{name}=")
        value = line.slots[name]
        pieces.append(Hole(value.pattern, value.max_length) if isinstance(value, Extracted)
                      else value_text(value))
    pieces.append(")")
    return pieces


def extracted_in_order(reply: Reply, catalog=None) -> list[Extracted]:
    """The symbolic extracted values of `reply`, in the order its holes are serialized."""
    out = []
    for line in reply.lines:
        out.extend(line.slots[n] for n in slot_names(line, catalog)
                   if isinstance(line.slots[n], Extracted))
    return out


def constraint_for(replies: Sequence[Reply], catalog=None) -> Constraint:
    """The constraint admitting exactly `replies` (in their order).

    Remembered by the identity of the replies: an exploration cached by the engine hands
    the same reply objects to every turn in the same state, so a repeat costs a lookup.
    """
    inputs = (catalog, *replies)
    key = tuple(map(id, inputs))
    found = _CONSTRAINTS.get(key, inputs)
    if found is None:
        found = _CONSTRAINTS.put(key, inputs, Constraint(tuple(serialize(r, catalog) for r in replies)))
    return found


_SCAN_CHARS = 4000


def narrowed(constraint: Constraint, message: str, earlier: Sequence[str] = (), most: int = 8) -> Constraint:
    """The constraint to decode in: each hole cut down to the spans the person typed.

    An extracted value is something the person wrote. Where the message holds text of a
    hole's pattern (a ZIP code, an order number), decoding chooses among those spans
    instead of writing characters of its own: a small model copies badly but chooses well.
    Without such a span in the message, the spans of `earlier` messages (newest first) are
    the choices; a reply whose hole has no span anywhere would be an invented value, so it
    is left out (unless every reply would be). A hole stays as it is when its pattern can
    match a space (names, free text) or when there are more than `most` spans. Only
    decoding is narrowed: the output is validated against the reachable replies, so a
    backend that ignores the guide is judged as before.
    """
    if not any(isinstance(p, Hole) for alt in constraint.alternatives for p in alt):
        return constraint
    texts = [t[:_SCAN_CHARS] for t in (message, *reversed(earlier)) if t]
    spans: dict[Hole, Hole | None] = {}
    changed = False
    alternatives = []
    for alt in constraint.alternatives:
        pieces: list[Piece] | None = []
        for piece in alt:
            if isinstance(piece, Hole):
                if piece not in spans:
                    spans[piece] = _narrow_hole(piece, texts, most)
                if spans[piece] is None:
                    pieces = None
                    break
                changed = changed or spans[piece] is not piece
                piece = spans[piece]
            pieces.append(piece)
        if pieces is None:
            changed = True
        else:
            alternatives.append(tuple(pieces))
    if not changed or not alternatives:
        return constraint
    return Constraint(tuple(alternatives))


def _narrow_hole(hole: Hole, texts: list[str], most: int) -> Hole | None:
    """The hole narrowed to the spans of the first text that has some; None: no text has one."""
    spans = hole_spans(hole, texts, most)
    if spans is None:
        return hole
    if not spans:
        return None
    return Hole("|".join(_literal(span) for span in spans), hole.max_length)


def hole_spans(hole: Hole, texts: Sequence[str], most: int = 8) -> list[str] | None:
    """The spans of the first of `texts` that holds text of the hole's pattern ([] when none
    does); None when the hole cannot be narrowed (its pattern can match a space, or there are
    more than `most` spans)."""
    if not _narrowable(hole.pattern):
        return None
    for text in texts:
        found: list[str] = []
        text = text[:_SCAN_CHARS]
        for start, end in word_spans(hole.pattern, text):
            span = text[start:end]
            if span and len(span) <= hole.max_length and not any(c.isspace() for c in span) and span not in found:
                found.append(span)
                if len(found) > most:
                    return None
        if found:
            return found
    return []


_SPACES = [9, 10, 11, 12, 13, 32]


@lru_cache(maxsize=256)
def _narrowable(pattern: str) -> bool:
    """Whether whole-word spans of `pattern` can narrow a hole: not when the pattern can
    match a space (or is not a Python regex). The spans are found by RE2, in linear time."""
    from re import _parser  # the stdlib's own regex parser

    try:
        return not _may_match_space(_parser.parse(pattern))
    except (re.error, OverflowError, RecursionError):
        return False


def _may_match_space(items) -> bool:
    """Whether a parsed regex can match a whitespace character anywhere."""
    from re import _constants as c

    for op, av in items:
        if op in (c.ANY, c.NOT_LITERAL):
            return True
        if op is c.LITERAL and chr(av).isspace():
            return True
        if op is c.IN and any(_class_item_space(o, a) for o, a in av):
            return True
        if op is c.CATEGORY and _class_item_space(op, av):
            return True
        if op is c.BRANCH and any(_may_match_space(branch) for branch in av[1]):
            return True
        if op is c.SUBPATTERN and _may_match_space(av[3]):
            return True
        if op is c.ATOMIC_GROUP and _may_match_space(av):
            return True
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and _may_match_space(av[2]):
            return True
    return False


def _class_item_space(op, av) -> bool:
    from re import _constants as c

    if op is c.NEGATE:
        return True
    if op is c.LITERAL:
        return chr(av).isspace()
    if op is c.RANGE:
        return any(av[0] <= code <= av[1] for code in _SPACES)
    if op is c.CATEGORY:
        return av in (c.CATEGORY_SPACE, c.CATEGORY_NOT_WORD, c.CATEGORY_NOT_DIGIT, c.CATEGORY_NOT_LINEBREAK)
    return False


def _literal(text: str) -> str:
    """`text` as a regex every backend reads (only the metacharacters escaped)."""
    return "".join("\\" + c if c in "\\.^$*+?()[]{}|" else c for c in text)


def display(pieces: Sequence[Piece]) -> str:
    """A serialized reply for people and prompts: holes shown as <regex>."""
    if len(pieces) == 1 and isinstance(pieces[0], str):
        return pieces[0]
    return "".join(f"<{p.pattern}>" if isinstance(p, Hole) else p for p in pieces)


class ReplyGrammar:
    """A compiled grammar for one constraint; `parse` maps output to one alternative.

    The Lark grammar is the definition. Two exact shortcuts give the same answers for
    far less: a choice of distinct literal strings is a dictionary lookup (the Lark
    parser is built only if two alternatives spell the same string, where it reports
    the conflict as before), and output with holes is first matched with one Python
    regex of the alternatives (Lark's Earley parser runs where that finds nothing).
    """

    def __init__(self, constraint: Constraint) -> None:
        self.constraint = constraint
        self.has_holes = not constraint.is_choice
        self._lark = None
        self._literals: dict[str, int] | None = None
        self._regex = None
        if self.has_holes:
            self._regex = _alternatives_regex(constraint)
        else:
            literals = {a[0] if a else "": i for i, a in enumerate(constraint.alternatives)}
            if len(literals) == len(constraint.alternatives):
                self._literals = literals
            else:
                self._lark = self._build()

    @cached_property
    def source(self) -> str:
        return lark_source(self.constraint)

    def _build(self):
        from lark import Lark

        parser = "earley" if self.has_holes else "lalr"
        lexer = "dynamic" if self.has_holes else "contextual"
        return Lark(self.source, parser=parser, lexer=lexer, start="start")

    def parse(self, raw: str) -> tuple[int, tuple[str, ...]]:
        """The index of the alternative `raw` spells, and the text of its holes.

        Raises `OutputInvalid` when `raw` is not exactly one admitted string.
        """
        from lark.exceptions import LarkError

        if not isinstance(raw, str):
            raise OutputInvalid(f"model output is {type(raw).__name__}, not text", raw=None)
        if self._literals is not None:
            index = self._literals.get(raw)
            if index is None:
                raise OutputInvalid(f"output is not one of the {len(self.constraint.alternatives)} "
                                    f"admitted replies (UnexpectedInput)", raw=raw)
            return index, ()
        if self.has_holes:
            return self._parse_holes(raw)
        try:
            tree = self._lark.parse(raw)
        except LarkError as exc:
            raise OutputInvalid(f"output is not one of the {len(self.constraint.alternatives)} "
                                f"admitted replies ({type(exc).__name__})", raw=raw) from None
        alt = tree.children[0]
        index = int(alt.data[1:])
        holes = tuple(str(tok) for tok in alt.children if getattr(tok, "type", "").startswith("H"))
        self._check_holes(index, holes, raw)
        return index, holes

    def _parse_holes(self, raw: str) -> tuple[int, tuple[str, ...]]:
        """`parse` where holes hold author patterns: matched by RE2 in linear time, never by
        a backtracking engine, since the output may repeat whatever the user typed."""
        found = patterns.search_full(self._regex, raw) if self._regex is not None else None
        if found is None and self._regex is None:
            found = self._alternative_by_alternative(raw)
        if found is None:
            raise OutputInvalid(f"output is not one of the {len(self.constraint.alternatives)} "
                                f"admitted replies (UnexpectedInput)", raw=raw)
        index = int(found.lastgroup[1:])
        holes = tuple(found.group(f"h{index}_{j}") for j, p in enumerate(self.constraint.alternatives[index])
                      if isinstance(p, Hole))
        self._check_holes(index, holes, raw)
        return index, holes

    def _alternative_by_alternative(self, raw: str):
        for i, alt in enumerate(self.constraint.alternatives):
            one = Constraint((alt,))
            program = _alternatives_regex(one)
            found = patterns.search_full(program, raw) if program is not None else None
            if found is not None:
                return _Renumbered(found, i)
        return None

    def _check_holes(self, index: int, holes: tuple[str, ...], raw: str) -> None:
        specs = [p for p in self.constraint.alternatives[index] if isinstance(p, Hole)]
        for spec, text in zip(specs, holes):
            if len(text) > spec.max_length or not fullmatches(spec.pattern, text):
                raise OutputInvalid(f"extracted value does not match /{spec.pattern}/", raw=raw)


def lark_source(constraint: Constraint) -> str:
    """Lark grammar text: `start` is one rule per alternative, holes as regex terminals."""
    rules, terminals = [], []
    for i, alt in enumerate(constraint.alternatives):
        parts = []
        for j, piece in enumerate(alt):
            if isinstance(piece, Hole):
                name = f"H{i}_{j}"
                terminals.append(f"{name}: /{_regex_literal(piece.pattern)}/")
                parts.append(name)
            elif piece:
                parts.append(_string_literal(piece))
        rules.append(f"a{i}: " + " ".join(parts))
    start = "start: " + " | ".join(f"a{i}" for i in range(len(rules)))
    return "\n".join([start, *rules, *terminals]) + "\n"


def _string_literal(text: str) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{out}"'


def _regex_literal(pattern: str) -> str:
    return "(?:" + pattern.replace("/", "\\/") + ")"


def _alternatives_regex(constraint: Constraint):
    """One RE2 program: a named group per alternative (`aI`), and per hole (`hI_J`).

    Author patterns have no named groups of their own (`patterns.check`), so the names
    cannot clash. None when RE2 cannot build the whole program (the parse then matches
    one alternative at a time, still in RE2).
    """
    parts = []
    for i, alt in enumerate(constraint.alternatives):
        pieces = [f"(?P<h{i}_{j}>(?:{piece.pattern}))" if isinstance(piece, Hole) else re.escape(piece)
                  for j, piece in enumerate(alt)]
        parts.append(f"(?P<a{i}>{''.join(pieces)})")
    return patterns.program("|".join(parts))


class _Renumbered:
    """A match of alternative `index` alone, answering as the match of the whole program."""

    def __init__(self, found, index: int) -> None:
        self.found, self.index, self.lastgroup = found, index, f"a{index}"

    def group(self, name: str) -> str:
        return self.found.group("h0_" + name.split("_", 1)[1])


_GRAMMARS: OrderedDict[str, ReplyGrammar] = OrderedDict()
_GRAMMARS_LOCK = threading.Lock()


def reply_grammar(constraint: Constraint) -> ReplyGrammar:
    """The compiled grammar for `constraint`, cached by the set it admits (its key)."""
    found = _GRAMMARS.get(constraint.key)
    if found is None:
        found = ReplyGrammar(constraint)
        with _GRAMMARS_LOCK:
            _GRAMMARS[constraint.key] = found
            while len(_GRAMMARS) > 256:
                _GRAMMARS.popitem(last=False)
    return found


def clear_caches() -> None:
    """Forget every remembered serialization, constraint and grammar (for cold measurements)."""
    _SERIALIZED.entries.clear()
    _CONSTRAINTS.entries.clear()
    with _GRAMMARS_LOCK:
        _GRAMMARS.clear()


def parse_output(constraint: Constraint, raw: str) -> tuple[int, tuple[str, ...]]:
    return reply_grammar(constraint).parse(raw)


