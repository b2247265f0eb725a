"""Errors over HTTP: one JSON shape, a stable code per `DialogueError` kind, the right status.

A body is ``{"error": {"code": "...", "message": "...", "status": 422}}``. The message is
one line for the person integrating the client; it never holds a traceback or model text
(what the model emitted is in the audit row and, on request, the turn's trace).
"""

from __future__ import annotations

from ..errors import (AuthorError, BackendError, CatalogError, ConstraintError, DialogueError, EffectError,
                      ExplorationError, MessageRejected, OutputInvalid, PolicyError, RunError, SessionError,
                      StoreError)

__all__ = ["ApiError", "CODES", "error_body", "from_dialogue_error"]

# DialogueError kinds, most specific first: (class, code, HTTP status).
CODES: list[tuple[type[DialogueError], str, int]] = [
    (MessageRejected, "message_rejected", 422),
    (SessionError, "session_conflict", 409),
    (ConstraintError, "constraint_unsupported", 500),
    (BackendError, "backend_unavailable", 503),
    (OutputInvalid, "output_invalid", 502),
    (EffectError, "effect_failed", 500),
    (StoreError, "store_unavailable", 503),
    (RunError, "run_failed", 500),
    (CatalogError, "catalog_error", 500),
    (ExplorationError, "exploration_error", 500),
    (PolicyError, "policy_error", 500),
    (AuthorError, "author_error", 500),
    (DialogueError, "internal_error", 500),
]
# Kinds whose text may quote what a model or a model server said: a fixed message instead.
_QUIET = {OutputInvalid: "the model's output failed validation; the turn was not taken",
          BackendError: "the model backend failed or is unreachable; try again later"}


class ApiError(Exception):
    """An error the API answers with: a stable `code`, an HTTP `status`, a one-line message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def from_dialogue_error(exc: DialogueError) -> ApiError:
    """The API error for a DialogueError, by the most specific kind that matches."""
    for kind, code, status in CODES:
        if isinstance(exc, kind):
            return ApiError(status, code, _message(exc))
    raise AssertionError("DialogueError is the last entry of CODES")  # pragma: no cover


def _message(exc: DialogueError) -> str:
    for kind, fixed in _QUIET.items():
        if isinstance(exc, kind) and not isinstance(exc, ConstraintError):
            return fixed
    if isinstance(exc, AuthorError):
        return exc.render().splitlines()[0]
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def error_body(error: ApiError) -> dict:
    return {"error": {"code": error.code, "message": error.message, "status": error.status}}
