"""A small voiced, localised catalog and a policy over it, written to tmp_path for each test."""

from __future__ import annotations

from pathlib import Path

import pytest

INN = '''\
# The Crossroads Inn: a test catalog. Comments must survive every edit.
[catalog]
id = "inn"
version = "1.0.0"
locale = "en"
locales = ["en", "de", "fr"]
fallback = "FALLBACK"
voice = ["en"]

[[response]]
id = "GREETING"  # the first thing a guest hears
text = "Welcome to the Crossroads, traveller."
when = "the guest greets the innkeeper"
status = "approved"
character = "Mara"
audio = "audio/en/greeting.ogg"
[response.locales.de]
text = "Willkommen an der Wegkreuzung, Reisender."
audio = "audio/de/greeting.ogg"
[response.locales.fr]
text = "Bienvenue au Carrefour, voyageur."

[[response]]
id = "ROOM"
text = "A room is {price} a night. Breakfast included."
when = "the guest asks for a room"
status = "approved"
character = "Mara"
tags = ["trade"]
audio = "audio/en/room.ogg"
[response.slots]
price = { type = "money", currency = "silver", places = 0, min = 1, max = 50 }
[response.locales.de]
text = "Ein Zimmer kostet {price} die Nacht. Mit Frühstück."
[response.locales.fr]
text = "Une chambre coûte {price} la nuit. Petit-déjeuner compris."

# Said whenever anything fails.
[[response]]
id = "FALLBACK"
text = "Hm? Say that again."
status = "approved"
character = "Mara"
audio = "audio/en/fallback.ogg"
[response.locales.de]
text = "Hm? Sag das noch mal."
[response.locales.fr]
text = "Hein ? Répète ?"
'''

POLICY = '''\
from pydantic import BaseModel

from dialogue import Policy, reply


class Inn(BaseModel):
    silver: int = 10


policy = Policy("inn", catalog="inn.toml", state=Inn, persona="Mara, an innkeeper")


@policy.decide
def decide(said, state):
    if said("the guest asks for a room", examples=["a room, please"]):
        return reply("ROOM", price=5)
    return reply("GREETING")
'''

AUDIO = ("audio/en/greeting.ogg", "audio/de/greeting.ogg", "audio/en/room.ogg", "audio/en/fallback.ogg")


@pytest.fixture
def inn(tmp_path) -> Path:
    """The inn catalog in tmp_path, with its recordings on disk."""
    for name in AUDIO:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"OggS")
    path = tmp_path / "inn.toml"
    path.write_text(INN, encoding="utf-8")
    return path


@pytest.fixture
def inn_policy(inn) -> Path:
    """A policy over the inn catalog, beside it."""
    path = inn.parent / "inn.py"
    path.write_text(POLICY, encoding="utf-8")
    return path


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    """The lines that differ between two texts ('-' gone, '+' new), as unified diff lines."""
    import difflib

    return [(line[0], line[1:].rstrip("\n")) for line in difflib.unified_diff(
        before.splitlines(True), after.splitlines(True), n=0) if line[:1] in "+-" and line[:3] not in ("---", "+++")]
