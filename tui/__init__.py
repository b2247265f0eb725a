"""The Textual TUI: a policy playground, a catalog editor and a conversation test runner.

Lives in the repository's top-level ``tui/`` folder and installs as ``dialogue.tui``.
``make_app(...)`` builds the app for the ``dialogue tui`` command and for the tests.
"""

from __future__ import annotations

from .app import DialogueApp, make_app

__all__ = ["DialogueApp", "make_app"]
