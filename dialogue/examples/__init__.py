"""The example policies, shipped as data so `dialogue demo` runs wherever dialogue is installed.

`policies/` holds a game NPC (`blacksmith.py`), a refund SOP (`refunds.py`) and a bank's
lost-card procedure as a conversation tree (`card_block.tree.toml`), each with its
conversation tests and their cassette; `catalogs/` holds their lines. Each policy names its
catalog relative to its own file (`../catalogs/NAME.toml`), so the two folders move together.
`templates/` holds the starting points `dialogue init` copies: `support` and `npc`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CATALOGS", "FOLDER", "POLICIES", "TEMPLATES"]

FOLDER = Path(__file__).resolve().parent
POLICIES = FOLDER / "policies"
CATALOGS = FOLDER / "catalogs"
TEMPLATES = FOLDER / "templates"
