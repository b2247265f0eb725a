"""The shell of `dialogue chat`: line editing and history, slash commands, progress, exit status.

On a terminal the prompt has readline editing and a history kept under the user's state
folder; piped input is echoed after the prompt so a transcript reads as a conversation.
Lines starting with "/" are commands (`/help`); "//" sends a message that starts with "/".
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from ..errors import DialogueError, RunError
from ..grammar import display, serialize
from ..said import Extracted

__all__ = ["ChatShell", "history_path", "spinner"]

PROMPT = "you> "
HISTORY_LINES = 1000


def history_path() -> Path:
    """Where the chat history is kept: $XDG_STATE_HOME/dialogue, else ~/.local/state/dialogue."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "dialogue" / "chat_history"


class ChatShell:
    """One chat on one engine: reads lines, runs commands and turns, counts failed turns."""

    def __init__(self, engine: Any, *, session_id: Callable[[], str], state: dict | None,
                 trace: bool, format_trace: Callable[[Any], str], show_progress: bool) -> None:
        self.engine, self.state, self.trace = engine, state, trace
        self._new_id, self._format_trace = session_id, format_trace
        self.interactive = sys.stdin.isatty()
        self.show_progress = show_progress and sys.stderr.isatty()
        self.session = engine.session(session_id(), state=state)
        self.turns = self.failed = 0
        self.last_turn = None

    def run(self) -> int:
        """Talk until end of input, /quit or the session's end; 1 when any turn failed."""
        with line_history(self.interactive):
            while not self.session.ended:
                line = self._read()
                if line is None:
                    break
                if line.startswith("/") and not line.startswith("//"):
                    if self.command(line) == "quit":
                        break
                elif line.strip():
                    self.say(line[1:] if line.startswith("//") else line)
        if self.session.ended:
            print("  (the conversation has ended)")
        if self.failed:
            print(f"{self.failed} of {self.turns} turns failed", file=sys.stderr)
            return 1
        return 0

    def _read(self) -> str | None:
        while True:
            try:
                line = input(PROMPT)
            except EOFError:
                print()
                return None
            except KeyboardInterrupt:  # at the prompt Ctrl-C drops the line, as a shell does
                print("\n(/quit or Ctrl-D leaves)")
                continue
            if not self.interactive:
                print(line)
            return line

    def say(self, message: str) -> None:
        """One turn; a failure is shown and counted, and the chat goes on."""
        self.turns += 1
        name = self.engine.policy.name
        try:
            with spinner("thinking", plain=False, enabled=self.show_progress):
                turn = self.session.say(message)
        except RunError as exc:
            self.failed += 1
            print(f"  ! {exc}", file=sys.stderr)
            return
        self.last_turn = turn
        print(f"{name}> {turn.text}")
        if self.trace:
            print(self._format_trace(turn))

    def reply_text(self, shown: str) -> str:
        """What the reachable reply written as `shown` would say now ('' when there is none)."""
        engine, session = self.engine, self.session
        key = _blank_holes(shown)
        for found in engine.explore(session.state, session.node).reachable:
            if _blank_holes(display(serialize(found, engine.catalog))) == key:
                return " / ".join(_line_text(engine.catalog, line, session.locale) for line in found.lines)
        return ""

    # -- slash commands ------------------------------------------------------------------

    def command(self, line: str) -> str | None:
        name, _, rest = line.strip().partition(" ")
        handler = COMMANDS.get(name.lower())
        if handler is None:
            print(f"  unknown command {name}; /help lists them (start a message with // to send it "
                  "as typed)", file=sys.stderr)
            return None
        return handler[0](self, rest.strip())

    def help(self, _: str) -> None:
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:<8} {text}")

    def show_state(self, _: str) -> None:
        print(json.dumps(self.session.state.model_dump(mode="json"), ensure_ascii=False, sort_keys=True))

    def reset(self, _: str) -> None:
        self.session = self.engine.session(self._new_id(), state=self.state)
        self.last_turn = None
        print(f"  new session {self.session.id}: the starting state, node {self.session.node}")

    def node(self, name: str) -> None:
        """/node: where the conversation is; /node NAME: a new session there, keeping the state."""
        nodes = ", ".join(self.engine.policy.nodes)
        if not name:
            print(f"  node {self.session.node} (nodes: {nodes})")
            return
        if name not in self.engine.policy.nodes:
            print(f"  no node {name!r}; nodes: {nodes}", file=sys.stderr)
            return
        state = self.session.state.model_dump(mode="json")
        self.session = self.engine.session(self._new_id(), state=state, node=name)
        print(f"  new session {self.session.id} in node {name}, with the state as it was")

    def show_trace(self, switch: str) -> None:
        """/trace: the last turn's trace; /trace on|off: every turn's."""
        if switch in ("on", "off"):
            self.trace = switch == "on"
            print(f"  trace {switch}")
        elif self.last_turn is None:
            print("  no turn yet")
        else:
            print(self._format_trace(self.last_turn))

    def quit(self, _: str) -> str:
        return "quit"


COMMANDS: dict[str, tuple[Callable[[ChatShell, str], Any], str]] = {
    "/help": (ChatShell.help, "this list"),
    "/state": (ChatShell.show_state, "the session's state as JSON"),
    "/node": (ChatShell.node, "the current node; /node NAME starts a new session there with this state"),
    "/trace": (ChatShell.show_trace, "the last turn's trace; /trace on|off shows every turn's"),
    "/reset": (ChatShell.reset, "a new session from the starting state"),
    "/quit": (ChatShell.quit, "leave (Ctrl-D does too)"),
}


def _blank_holes(shown: str) -> str:
    """A serialized reply with each <pattern> blanked: a hole narrowed to a span still matches."""
    return re.sub(r"<[^<>]*>", "<>", shown)


def _line_text(catalog, line, locale: str) -> str:
    """One line's text: rendered when its values are known, else its template with {slots}."""
    if not any(isinstance(value, Extracted) for value in line.slots.values()):
        try:
            return catalog.render(line.id, line.slots, locale)
        except DialogueError:
            pass
    return catalog[line.id].text_for(locale) or catalog[line.id].text


@contextmanager
def line_history(enabled: bool):
    """readline editing, command completion and a kept history while the chat runs (terminals only)."""
    readline = _readline() if enabled else None
    if readline is None:
        yield
        return
    path = history_path()
    try:
        readline.read_history_file(path)
    except OSError:
        pass  # no history yet, or unreadable: start a fresh one
    readline.set_history_length(HISTORY_LINES)
    readline.set_completer(_complete)
    readline.set_completer_delims(" \t\n")
    readline.parse_and_bind("tab: complete")
    try:
        yield
    finally:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
            path.chmod(0o600)  # what people typed is theirs alone to read
        except OSError as exc:
            print(f"dialogue: the chat history was not saved to {path}: {exc.strerror}", file=sys.stderr)


def _readline():
    try:
        import readline
    except ImportError:  # no readline on this platform: plain input() still works
        return None
    return readline


def _complete(text: str, index: int) -> str | None:
    found = [name for name in COMMANDS if name.startswith(text)] if text.startswith("/") else []
    return found[index] if index < len(found) else None


@contextmanager
def spinner(label: str, *, plain: bool = True, enabled: bool = True):
    """A spinner on stderr while slow work runs. Off a terminal: a plain line, or nothing
    with `plain=False`; `enabled=False` shows nothing at all."""
    if not enabled or not sys.stderr.isatty():
        if enabled and plain:
            print(f"{label}...", file=sys.stderr, flush=True)
        yield
        return
    done = threading.Event()

    def spin() -> None:
        frames, i, start = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", 0, time.monotonic()
        while not done.wait(0.1):
            sys.stderr.write(f"\r{frames[i % len(frames)]} {label} ({time.monotonic() - start:.0f}s)")
            sys.stderr.flush()
            i += 1
        sys.stderr.write("\r" + " " * (len(label) + 12) + "\r")
        sys.stderr.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
