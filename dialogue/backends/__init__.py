"""Backends: models behind one protocol, found by name in one registry.

Built-in and third-party backends register the same way, through the
`dialogue.backends` entry-point group (a factory taking keyword options);
`register_backend` adds one at run time.
"""

from __future__ import annotations

import logging
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Callable

from ..errors import BackendError
from .base import Backend, Capabilities, Completion, Constraint, Hole, Prompt

__all__ = [
    "Backend",
    "Capabilities",
    "Completion",
    "Constraint",
    "Hole",
    "Prompt",
    "available_backends",
    "create_backend",
    "register_backend",
]

log = logging.getLogger(__name__)

GROUP = "dialogue.backends"

# Used when the package metadata is not installed (running from a source tree).
_BUILTIN = {
    "llamacpp": "dialogue.backends.llamacpp:LlamaCppBackend",
    "scripted": "dialogue.backends.scripted:ScriptedBackend",
    "manual": "dialogue.backends.manual:ManualBackend",
    "openai": "dialogue.backends.openai:OpenAIBackend",
    "transformers": "dialogue.backends.transformers:TransformersBackend",
}
_registered: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Make `factory(**options)` available as backend `name`."""
    _registered[name] = factory


def available_backends() -> list[str]:
    names = set(_BUILTIN) | set(_registered) | {ep.name for ep in entry_points(group=GROUP)}
    return sorted(names)


def create_backend(name: str, **options: Any) -> Backend:
    """Build the backend registered as `name` with these options."""
    factory = _registered.get(name) or _from_entry_point(name) or _from_path(_BUILTIN.get(name))
    if factory is None:
        raise BackendError(f"no backend named {name!r}; available: {', '.join(available_backends())}")
    log.info("starting the %s backend", name)
    return factory(**options)


def _from_entry_point(name: str) -> Callable[..., Backend] | None:
    for ep in entry_points(group=GROUP, name=name):
        return ep.load()
    return None


def _from_path(target: str | None) -> Callable[..., Backend] | None:
    if target is None:
        return None
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)
