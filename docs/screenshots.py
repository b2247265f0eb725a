"""Make the README's screenshots of the TUI: `python docs/screenshots.py [playground|catalog|tests]`.

Each screen is driven by Pilot on the scripted backend (no model, so the pictures are the
same on every machine, timings masked) and saved as SVG with `App.save_screenshot`.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from textual.widgets import DataTable, Input, TextArea

from dialogue.backends.scripted import ScriptedBackend
from dialogue.tui import make_app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
POLICY = ROOT / "dialogue" / "examples" / "policies" / "blacksmith.py"
SIZE = (100, 30)


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def playground(work: Path) -> None:
    app = make_app(POLICY, backend=ScriptedBackend(["GREETING", "TOO_POOR(item=shield, price=30)"]),
                   tests_path=work / "blacksmith.tests.toml")
    app.mask_latency = True
    async with app.run_test(size=SIZE) as pilot:
        for message in ("hello there", "how much for a shield?"):
            app.screen.query_one("#message", Input).focus()
            await pilot.press(*message, "enter")
            await settle(pilot)
        app.save_screenshot("tui-playground.svg", str(DOCS))


async def catalog(work: Path) -> None:
    path = work / "blacksmith.toml"
    shutil.copy(ROOT / "dialogue" / "examples" / "catalogs" / "blacksmith.toml", path)
    app = make_app(POLICY, backend=ScriptedBackend([]), catalog_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        table = app.screen.query_one("#lines", DataTable)
        table.move_cursor(row=table.get_row_index("OFFER"))
        await pilot.pause()
        field = app.screen.query_one("#field-text", TextArea)
        field.focus()
        field.text = "The {item}? {prize}. My own work. Want it?"
        await pilot.pause()
        field.move_cursor((0, 0))
        await pilot.pause()
        app.save_screenshot("tui-catalog.svg", str(DOCS))


async def tests(work: Path) -> None:
    """The runner after running a tests file with one passing and one failing case."""
    path = work / "blacksmith.tests.toml"
    path.write_text(TESTS, encoding="utf-8")
    answers = lambda prompt, constraint: "GREETING"  # noqa: E731 - the second case expects OFFER
    app = make_app(POLICY, backend=ScriptedBackend(answers), tests_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        await pilot.press("ctrl+r")
        await settle(pilot)
        await pilot.press("down")
        await pilot.pause()
        app.save_screenshot("tui-tests.svg", str(DOCS))


TESTS = '''\
[[test]]
name = "greeting"
state = {}
[[test.turn]]
user = "hello"
reply = "GREETING"

[[test]]
name = "a shield"
state = { gold = 60 }
[[test.turn]]
user = "how much for a shield?"
reply = "OFFER"
slots = { item = "shield", price = 30 }
'''


async def main(names: list[str]) -> None:
    scenes = [s for s in (playground, catalog, tests) if not names or s.__name__ in names]
    with tempfile.TemporaryDirectory() as tmp:
        for scene in scenes:
            await scene(Path(tmp))
            print(f"docs/tui-{scene.__name__}.svg", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
