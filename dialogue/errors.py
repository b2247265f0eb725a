"""The one error tree of `dialogue`.

::

    DialogueError                      root: catch this to catch everything
    ├── AuthorError                    a mistake in files people wrote; fix the file
    │   ├── CatalogError               a catalog that cannot be loaded or used
    │   ├── PolicyError                a policy module, its replies or its effects
    │   │   └── ExplorationError       a decision function that cannot be explored
    │   └── TestFileError              a conversation test file
    └── RunError                       a failure while serving a turn
        ├── BackendError               the model or server failed (unreachable, crashed)
        │   ├── ConstraintError        the backend cannot enforce a constraint
        │   ├── MissingExtra           an optional part is not installed; names the pip install
        │   └── ResponseInvalid        a server answer not in the API's shape; the turn falls back
        ├── OutputInvalid              model output that failed validation
        ├── MessageRejected            a user message refused before any model call
        ├── EffectError                an effect raised; the state is unchanged
        ├── SessionError               an unknown, ended or mismatched session
        └── StoreError                 the database failed or is unusable

Author errors carry a location (file, line, column), the entry they concern and a
hint; ``str(err)`` renders all of it compiler-style, with a caret under the fault
when the source line is known.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AuthorError",
    "BackendError",
    "CatalogError",
    "ConstraintError",
    "DialogueError",
    "EffectError",
    "ExplorationError",
    "Location",
    "MessageRejected",
    "MissingExtra",
    "OutputInvalid",
    "PolicyError",
    "ResponseInvalid",
    "RunError",
    "SessionError",
    "StoreError",
    "TestFileError",
]


EXCERPT_CHARS = 160  # characters of a source line shown under an error


@dataclass(frozen=True)
class Location:
    """Where an author error is: a file and, when known, a 1-based line and column."""

    file: str
    line: int | None = None
    column: int | None = None
    source_line: str | None = None
    span: int = 1

    def __str__(self) -> str:
        out = self.file
        if self.line is not None:
            out += f":{self.line}"
            if self.column is not None:
                out += f":{self.column}"
        return out

    def excerpt(self) -> str:
        """The source line with a caret under the fault, or '' when unknown."""
        if self.source_line is None or self.line is None:
            return ""
        text = self.source_line.rstrip("\n").expandtabs(1)
        column = self.column
        if len(text) > EXCERPT_CHARS:  # a very long line is shown around the fault
            start = max(0, (column or 1) - 1 - EXCERPT_CHARS // 3)
            head = "..." if start else ""
            text = head + text[start:start + EXCERPT_CHARS] + ("..." if start + EXCERPT_CHARS < len(text) else "")
            column = None if column is None else column - start + len(head)
        gutter = f"{self.line:>5} | "
        caret = ""
        if column is not None:
            caret = "\n" + " " * (len(gutter) - 2) + "| " + " " * (column - 1)
            caret += "^" * max(1, min(self.span, max(1, len(text) - column + 1)))
        return gutter + text + caret


class DialogueError(Exception):
    """Root of every error that `dialogue` raises on purpose."""


class AuthorError(DialogueError):
    """A mistake in a file that a person wrote: a catalog, a policy, a test file.

    ``message`` says what is wrong, ``location`` where, ``entry`` which response,
    node or case, and ``hint`` how to fix it.
    """

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        entry: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.location = location
        self.entry = entry
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.location}: " if self.location else ""
        head += f"{self.kind}: {self.message}"
        if self.entry:
            head += f" [{self.entry}]"
        parts = [head]
        if self.location is not None and (excerpt := self.location.excerpt()):
            parts.append(excerpt)
        if self.hint:
            parts.append(f"  hint: {self.hint}")
        return "\n".join(parts)


class CatalogError(AuthorError):
    """A catalog file that cannot be loaded, or a use of it that it does not allow."""


class PolicyError(AuthorError):
    """A policy module that is broken or disagrees with its catalog."""


class ExplorationError(PolicyError):
    """A decision function that cannot be explored (bounds, mutation, symbolic values)."""


class TestFileError(AuthorError):
    """A conversation test file that cannot be loaded."""

    __test__ = False  # not a pytest test class


class RunError(DialogueError):
    """A failure while serving a turn; the session's state is left as it was."""


class BackendError(RunError):
    """The model or server failed: not loadable, unreachable, refused, timed out."""


class ConstraintError(BackendError):
    """The backend cannot enforce the constraint it was given (it would run unconstrained)."""


class MissingExtra(BackendError):
    """An optional part (the embedded models, the encoder, the TUI) whose packages are not
    installed; the message names the `pip install 'dialogue[EXTRA]'` that installs them."""

    def __init__(self, what: str, extra: str, module: str | None = None) -> None:
        self.what, self.extra, self.module = what, extra, module
        missing = f" ({module} is not installed)" if module else ""
        super().__init__(f"{what} needs dialogue's [{extra}] extra{missing}; "
                         f"run: pip install 'dialogue[{extra}]'")


class ResponseInvalid(BackendError):
    """A server's answer that is not the API's shape (an HTML page, cut-off JSON, a field of
    the wrong type) or is over the size limit; a turn retries and then falls back, as for
    output that fails validation."""


class OutputInvalid(RunError):
    """Model output that does not parse under the turn's grammar or fails its slot types."""

    def __init__(self, message: str, *, raw: str | None = None) -> None:
        self.raw = raw
        super().__init__(message)


class MessageRejected(RunError):
    """A user message refused before any model call (too long, not text)."""


class EffectError(RunError):
    """An effect raised; the session's state is unchanged."""


class SessionError(RunError):
    """An unknown, ended or mismatched session."""


class StoreError(RunError):
    """The database failed, is corrupt, read-only or from a newer schema."""
