"""Author patterns (slot `regex`, `said.extract`) matched in linear time.

A pattern a catalog or a policy supplies meets text a user typed or a model wrote, so it
is matched with RE2 (the `google-re2` package), whose time grows with the text and never
with backtracking: `(a+)+$` over "a" * 30 + "!" answers at once. A pattern must also be a
Python regular expression, because the grammar and the decoders read it with Python's
syntax. What RE2 cannot run (back-references, lookaround) is refused when the catalog or
the policy loads, with the reason; `check` says why in words an author can act on.
RE2's ``\\d`` and ``\\w`` are ASCII, so a pattern admits the same or fewer strings here.
"""

from __future__ import annotations

import re
from functools import lru_cache

import re2

__all__ = ["check", "compiled", "fullmatches", "program", "search_full", "word_spans"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print its own message to stderr besides raising
_LARGE = re2.Options()
_LARGE.log_errors = False
_LARGE.max_mem = 64 << 20  # a turn's alternatives together, each with its holes
_WORD = r"\p{L}\p{N}_"  # Python's \w for text: letters, digits, the underscore


def check(pattern: str) -> str | None:
    """Why `pattern` cannot be an author pattern, or None when it can."""
    try:
        named = re.compile(pattern).groupindex
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        return f"{exc.msg}{where}"
    except (OverflowError, RecursionError, MemoryError):
        return "it is too large (a repeat count or nesting beyond what the regex engine takes)"
    if named:
        return f"it names a group ({', '.join(named)}); write (?:...) or (...) instead"
    try:
        compiled(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return (f"it cannot be matched in linear time ({reason}); back-references, lookahead and "
                "lookbehind are not supported, and a repeat count is at most 1000")
    return None


@lru_cache(maxsize=512)
def compiled(pattern: str):
    """The RE2 program for `pattern` (raises `re2.error`)."""
    return re2.compile(pattern, _OPTIONS)


def program(pattern: str):
    """An RE2 program for a pattern the code assembled from author patterns; None when RE2
    cannot build it within its memory bound."""
    try:
        return re2.compile(pattern, _LARGE)
    except re2.error:
        return None


def search_full(program, text: str):
    """The match of all of `text` by `program`, or None (also for text that is not valid Unicode)."""
    try:
        return program.fullmatch(text)
    except UnicodeEncodeError:
        return None


def fullmatches(pattern: str, text: str) -> bool:
    """Whether all of `text` matches `pattern`; text that is not valid Unicode never does."""
    try:
        return compiled(pattern).fullmatch(text) is not None
    except (re2.error, UnicodeEncodeError):
        return False


@lru_cache(maxsize=256)
def _word_finder(pattern: str):
    # RE2 has no lookaround: the characters either side are matched instead, and the
    # text is searched with one non-word character in front of it.
    return re2.compile(rf"[^{_WORD}]((?:{pattern}))(?:[^{_WORD}]|$)", _OPTIONS)


def word_spans(pattern: str, text: str):
    """Each match of `pattern` in `text` that is not part of a longer word, in order
    (what ``(?<!\\w)(?:pattern)(?!\\w)`` finds), as (start, end) pairs."""
    try:
        finder = _word_finder(pattern)
        padded = " " + text
        padded.encode("utf-8")
    except (re2.error, UnicodeEncodeError):
        return
    at = 0
    while at < len(padded):
        found = finder.search(padded, at)
        if found is None:
            return
        start, end = found.span(1)
        yield start - 1, end - 1
        at = end if end > start else end + 1
