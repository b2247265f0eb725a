"""Cassettes: the model's choices recorded once, replayed by every later test run.

A `Cassette` is a backend wrapper. Each call is keyed by what produced it: the policy's
hash, the catalog's hash, the prompt (system and user text) and the constraint. Recording
asks the inner backend and keeps its output; replaying answers from the file and never
touches a model. A key that is not in the file means the policy, catalog, prompt or
message changed since the recording: that is `StaleCassette`, never a live call.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from ..backends.base import Backend, Capabilities, Completion, Constraint, Hole, Prompt
from ..errors import RunError

__all__ = ["Cassette", "StaleCassette"]

FORMAT = 1


class StaleCassette(RunError):
    """A replayed test asked the model something the cassette has no answer for."""


class Cassette:
    """A backend that records `inner`'s outputs (`record=True`) or replays them from `path`.

    `context` names what is running now (the case and turn) for error messages;
    `case` tags each recorded entry so re-recording some cases keeps the others.
    """

    name = "cassette"
    capabilities = Capabilities(choice=True, regex=True, grammar=True)

    def __init__(self, path: str | Path, *, policy_hash: str, catalog_hash: str,
                 inner: Backend | None = None, record: bool = False) -> None:
        self.path = Path(path)
        self.policy_hash, self.catalog_hash = policy_hash, catalog_hash
        self.inner, self.recording = inner, record
        if record and inner is None:
            raise ValueError("recording a cassette needs the backend to record")
        self.entries: dict[str, dict[str, Any]] = {}
        self.model = getattr(inner, "model", "")
        self.understanding = ""  # who picked replies when it was recorded (see Engine(understanding=))
        self.context = ""
        self.case = ""
        self.used: set[str] = set()
        self._lock = threading.Lock()
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.entries = dict(data["entries"])
            if not self.recording:
                self.model = data.get("model", "")
                self.understanding = data.get("understanding", "model")  # older cassettes: the model
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StaleCassette(f"cassette {self.path} cannot be read ({exc}); re-record it with "
                                f"`dialogue test --record {self.path.name.replace('.cassette.json', '.tests.toml')}`"
                                ) from None

    def key(self, prompt: Prompt, constraint: Constraint) -> str:
        """What produced a call, as one digest."""
        what = [self.policy_hash, self.catalog_hash, prompt.system, prompt.user, _constraint_data(constraint)]
        return hashlib.sha256(json.dumps(what, ensure_ascii=False).encode()).hexdigest()

    def generate(self, prompt: Prompt, constraint: Constraint) -> Completion:
        key = self.key(prompt, constraint)
        if self.recording:
            completion = self.inner.generate(prompt, constraint)
            with self._lock:
                self.entries[key] = {"case": self.case, "output": completion.text}
                self.used.add(key)
            return completion
        with self._lock:
            entry = self.entries.get(key)
            self.used.add(key)
        if entry is None:
            raise StaleCassette(f"{self.context or 'a test'}: the cassette {self.path} has no recorded "
                                "answer for this prompt (the policy, catalog, prompt or message changed "
                                f"since it was recorded); re-record with `dialogue test --record "
                                f"{self.tests_name}`")
        return Completion(text=entry["output"], detail={"replayed": True})

    @property
    def tests_name(self) -> str:
        return str(self.path).removesuffix(".cassette.json") + ".tests.toml"

    def save(self, cases_run: set[str]) -> None:
        """Write the recording: this run's entries, and the entries of cases not run this time."""
        kept = {k: v for k, v in self.entries.items() if k in self.used or v.get("case") not in cases_run}
        data = {"format": FORMAT, "model": self.model, "backend": getattr(self.inner, "name", ""),
                "understanding": self.understanding, "entries": dict(sorted(kept.items()))}
        self.path.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n",
                             encoding="utf-8")


def _constraint_data(constraint: Constraint) -> list:
    return [[{"regex": p.pattern, "max": p.max_length} if isinstance(p, Hole) else p for p in alt]
            for alt in constraint.alternatives]
