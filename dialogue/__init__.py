"""dialogue: a language model understands what people type; it answers only with approved lines.

The public face is small; everything else is importable but private in spirit.
"""

from __future__ import annotations

import logging as _logging
from typing import TYPE_CHECKING, Any

from .errors import DialogueError
from .explore import explore
from .policy import Policy, load_policy
from .reply import Reply, reply
from .said import Said

# The library logs under "dialogue" and leaves showing it to the application (`dialogue -v`).
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

if TYPE_CHECKING:
    from .backends.llamacpp import LlamaCppBackend
    from .backends.openai import OpenAIBackend
    from .backends.scripted import ScriptedBackend
    from .backends.transformers import TransformersBackend
    from .catalog import Catalog, load_catalog
    from .engine import Engine, Session, Turn

__all__ = [
    "Catalog",
    "DialogueError",
    "Engine",
    "LlamaCppBackend",
    "OpenAIBackend",
    "Policy",
    "Reply",
    "Said",
    "ScriptedBackend",
    "Session",
    "TransformersBackend",
    "Turn",
    "explore",
    "load_catalog",
    "load_policy",
    "reply",
]

__version__ = "0.1.0"

_LAZY = {
    "Catalog": "dialogue.catalog",
    "load_catalog": "dialogue.catalog",
    "Engine": "dialogue.engine",
    "Session": "dialogue.engine",
    "Turn": "dialogue.engine",
    "LlamaCppBackend": "dialogue.backends.llamacpp",
    "ScriptedBackend": "dialogue.backends.scripted",
    "OpenAIBackend": "dialogue.backends.openai",
    "TransformersBackend": "dialogue.backends.transformers",
}


def __getattr__(name: str) -> Any:
    """Import the heavier parts on first use, so `import dialogue` stays fast."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dialogue' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
