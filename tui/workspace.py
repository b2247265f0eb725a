"""What the three screens share: the policy, its catalog and tests files, and the backends."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dialogue.backends import available_backends, create_backend
from dialogue.engine import MODES, Engine
from dialogue.errors import DialogueError
from dialogue.policy import Policy, load_policy

# Backends that read the terminal (the manual one asks for each reply), which the TUI owns.
TERMINAL_BACKENDS = {"manual"}


class Workspace:
    """The files a designer works on and the settings every screen runs with.

    `backend` is a backend object, a registered name, or None for the embedded model;
    named backends are created on first use (in a worker thread: the embedded model takes
    seconds to load) and kept, so switching back is instant.
    """

    def __init__(self, policy_path: str | Path | None = None, *, backend: Any = None,
                 mode: str = "prompted", locale: str | None = None,
                 catalog_path: str | Path | None = None, tests_path: str | Path | None = None,
                 backend_options: dict | None = None, allow_drafts: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.policy_path = Path(policy_path) if policy_path else None
        self.mode = mode
        self.locale = locale
        self.allow_drafts = allow_drafts
        self.backend_options = dict(backend_options or {})
        self._backends: dict[str, Any] = {}
        self._lock = threading.Lock()
        if backend is None or isinstance(backend, str):
            self.backend_name = backend or "llamacpp"
        else:
            self.backend_name = getattr(backend, "name", type(backend).__name__)
            self._backends[self.backend_name] = backend
        self._options_for = self.backend_name
        self.policy: Policy | None = None
        self.policy_error: DialogueError | None = None
        self._catalog_path = Path(catalog_path) if catalog_path else None
        self._tests_path = Path(tests_path) if tests_path else None
        self.reload_policy()

    def reload_policy(self) -> None:
        """Load (again) the policy file; a broken one leaves `policy_error` set."""
        self.policy, self.policy_error = None, None
        if self.policy_path is None:
            return
        try:
            self.policy = load_policy(self.policy_path)
        except DialogueError as exc:
            self.policy_error = exc

    @property
    def name(self) -> str:
        """The policy's file name without suffixes: `blacksmith`, `card_block`."""
        if self.policy_path is None:
            return "dialogue"
        return self.policy_path.name.removesuffix(".py").removesuffix(".toml").removesuffix(".tree")

    @property
    def catalog_path(self) -> Path | None:
        if self._catalog_path is not None:
            return self._catalog_path
        return self.policy.catalog_path if self.policy else None

    @property
    def tests_path(self) -> Path | None:
        """`policies/NAME.tests.toml` beside the policy, unless given."""
        if self._tests_path is not None:
            return self._tests_path
        if self.policy_path is None:
            return None
        return self.policy_path.parent / f"{self.name}.tests.toml"

    @property
    def locales(self) -> tuple[str, ...]:
        return self.policy.catalog.locales if self.policy else ()

    def backend_names(self) -> list[str]:
        names = (set(available_backends()) - TERMINAL_BACKENDS) | set(self._backends) | {self.backend_name}
        return sorted(names)

    def backend(self) -> Any:
        """The current backend, created now if it is named and new (slow: call from a worker)."""
        with self._lock:
            found = self._backends.get(self.backend_name)
            if found is None:
                found = self._create(self.backend_name)
                self._backends[self.backend_name] = found
            return found

    def backend_ready(self) -> bool:
        return self.backend_name in self._backends

    def _create(self, name: str) -> Any:
        # "scripted" without a script answers the first reachable reply, as on the command line.
        # The command line's options (--base-url, --model) belong to the backend it named.
        options = self.backend_options if name == self._options_for else {}
        return create_backend(name, **options)

    def engine(self) -> Engine:
        """An engine for the current policy, mode, backend and locale."""
        if self.policy is None:
            raise DialogueError("no policy is loaded")
        return Engine(self.policy, mode=self.mode, backend=self.backend(), locale=self.locale,
                      allow_drafts=self.allow_drafts)
