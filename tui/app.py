"""The Textual app: three screens over one workspace, switched with F1, F2, F3."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from .catalog_editor import CatalogScreen
from .playground import PlaygroundScreen
from .runner import ConfirmScreen, TestsScreen
from .workspace import Workspace

SCREENS = {"playground": "Playground", "catalog": "Catalog", "tests": "Tests"}


class DialogueApp(App):
    """Designers test policies and author catalogs: playground, catalog editor, test runner."""

    CSS_PATH = "app.tcss"
    TITLE = "dialogue"
    BINDINGS = [
        Binding("f1", "show('playground')", "Playground"),
        Binding("f2", "show('catalog')", "Catalog"),
        Binding("f3", "show('tests')", "Tests"),
    ]

    def __init__(self, workspace: Workspace, *, start: str = "playground") -> None:
        super().__init__()
        self.workspace = workspace
        self.start = start
        # Screenshots and snapshot tests mask timings so that they are stable.
        self.mask_latency = False

    def on_mount(self) -> None:
        self.sub_title = self.workspace.name
        self.install_screen(PlaygroundScreen(self.workspace), "playground")
        self.install_screen(CatalogScreen(self.workspace), "catalog")
        self.install_screen(TestsScreen(self.workspace), "tests")
        self.push_screen(self.start)

    async def action_quit(self) -> None:
        """Quit (ctrl+q); with unsaved edits in the catalog editor, ask first."""
        if not self._unsaved_catalog():
            self.exit()
        elif not isinstance(self.screen, ConfirmScreen):
            name = self.workspace.catalog_path.name
            self.push_screen(ConfirmScreen(f"{name} has unsaved edits. Quit and lose them?"),
                             lambda yes: self.exit() if yes else None)

    def _unsaved_catalog(self) -> bool:
        try:
            catalog = self.get_screen("catalog")
        except KeyError:  # not installed yet
            return False
        return bool(getattr(catalog, "dirty", False))

    def action_show(self, name: str) -> None:
        if self.screen is not self.get_screen(name):
            self.switch_screen(name)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name, title in SCREENS.items():
            yield SystemCommand(f"Go to {title}", f"Show the {title.lower()} screen",
                                lambda name=name: self.action_show(name))
        for command in getattr(screen, "commands", lambda: ())():
            yield command


def make_app(policy_path: str | Path | None = None, *, backend: Any = None, mode: str = "prompted",
             locale: str | None = None, catalog_path: str | Path | None = None,
             tests_path: str | Path | None = None, backend_options: dict | None = None,
             allow_drafts: bool = False) -> DialogueApp:
    """The TUI for a policy (or only a catalog): what `dialogue tui` runs and the tests drive.

    `backend` is a backend object (a `ScriptedBackend` in tests), a registered name, or None
    for the embedded model; `backend_options` go to a named backend's factory.
    """
    workspace = Workspace(policy_path, backend=backend, mode=mode, locale=locale,
                          catalog_path=catalog_path, tests_path=tests_path,
                          backend_options=backend_options, allow_drafts=allow_drafts)
    start = "catalog" if policy_path is None and catalog_path is not None else "playground"
    return DialogueApp(workspace, start=start)
