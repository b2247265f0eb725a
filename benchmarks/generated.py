"""Generated catalogs and policies of a given size, written to a temporary folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

WORDS = ["ASK", "OFFER", "REFUND", "ORDER", "ITEM", "QUEST", "GREET", "STATUS", "PRICE", "CARD"]


def response_ids(n: int) -> list[str]:
    """`n` distinct ids shaped like real ones: WORD_WORD_NNNN."""
    return [f"{WORDS[i % 10]}_{WORDS[(i // 10) % 10]}_{i:05d}" for i in range(n)]


def catalog_text(ids: list[str], name: str = "generated") -> str:
    out = [f'[catalog]\nid = "{name}"\nversion = "1.0.0"\nlocale = "en"\nfallback = "FALLBACK"\n',
           '[[response]]\nid = "FALLBACK"\ntext = "Sorry?"\nstatus = "approved"\n']
    for i, rid in enumerate(ids):
        out.append(f'[[response]]\nid = "{rid}"\ntext = "Line number {i}."\nstatus = "approved"\n')
    return "\n".join(out)


def nested_policy(depth: int, *, tree: bool, folder: Path | None = None) -> Path:
    """A policy with `depth` nested `said` decisions.

    `tree=False`: a chain, each yes-branch asking the next question (depth + 1 paths).
    `tree=True`: a full binary tree, both branches asking the next question (2**depth paths).
    """
    folder = folder or Path(tempfile.mkdtemp(prefix="dialogue-bench-"))
    name = f"{'tree' if tree else 'chain'}{depth}"
    leaves = 2 ** depth if tree else depth + 1
    ids = [f"LEAF_{i:05d}" for i in range(leaves)]
    (folder / f"{name}.toml").write_text(catalog_text(ids, name))
    body = _tree(depth, 0, 1) if tree else _chain(depth)
    source = (
        "from pydantic import BaseModel\n"
        "from dialogue import Policy, reply\n\n\n"
        "class State(BaseModel):\n    level: int = 0\n\n\n"
        f"policy = Policy({name!r}, catalog={name + '.toml'!r}, state=State, persona='a test')\n\n\n"
        "@policy.decide\ndef decide(said, state):\n" + body
    )
    path = folder / f"{name}.py"
    path.write_text(source)
    return path


def _chain(depth: int) -> str:
    lines = []
    for level in range(depth):
        pad = "    " * (level + 1)
        lines.append(f'{pad}if said("question {level}", examples=["example {level}"]):')
    lines.append("    " * (depth + 1) + f'return reply("LEAF_{depth:05d}")')
    for level in range(depth - 1, -1, -1):
        lines.append("    " * (level + 1) + f'return reply("LEAF_{level:05d}")')
    return "\n".join(lines) + "\n"


def _tree(depth: int, level: int, node: int) -> str:
    pad = "    " * (level + 1)
    if level == depth:
        return f'{pad}return reply("LEAF_{node - 2 ** depth:05d}")\n'
    return (f'{pad}if said("question {level}.{node}", examples=["example"]):\n'
            + _tree(depth, level + 1, 2 * node)
            + f"{pad}else:\n" + _tree(depth, level + 1, 2 * node + 1))


MATERIALS = ["iron", "steel", "bronze", "copper", "silver", "gold", "oak", "ash", "yew", "bone", "leather", "wool",
             "linen", "silk", "glass", "clay", "stone", "obsidian", "ivory", "horn", "pine", "birch", "tin", "brass",
             "crystal"]
KINDS = ["sword", "dagger", "axe", "mace", "spear", "bow", "shield", "helmet", "gauntlets", "boots", "belt", "cloak",
         "ring", "amulet", "lantern", "kettle", "pot", "ladle", "hammer", "chisel", "saw", "tongs", "nails", "hinge",
         "lock", "key", "chain", "bucket", "horseshoe", "buckle", "flask", "cup", "plate", "bowl", "comb", "needle",
         "brooch", "candlestick", "trowel", "sickle"]
SHOP_LINES = {  # the lines that are not an item: 1,000 catalog lines in all with the items
    "GREETING": "Welcome to the bazaar. I sell near a thousand things; name one.",
    "GOODBYE": "Come back soon, traveller.",
    "REPAIR": "Leave it with me; it will be mended by nightfall.",
    "FALLBACK": "Hm? Tell me what you want to buy.",
}


def shop_items(n: int) -> list[str]:
    """`n` distinct item names, material x kind: "iron sword", "oak bow", ..."""
    items = [f"{m} {k}" for k in KINDS for m in MATERIALS]
    if n > len(items):
        raise ValueError(f"at most {len(items)} items")
    return items[:n]


def shop_policy(lines: int = 1000, *, folder: Path | None = None) -> Path:
    """A market trader with `lines` catalog lines: one per item (a `said.pick` over all of
    them, two examples each) plus greeting, goodbye, repair and fallback. For load time,
    memory and per-turn latency at catalog scale, not for accuracy."""
    folder = folder or Path(tempfile.mkdtemp(prefix="dialogue-bench-shop-"))
    items = shop_items(lines - len(SHOP_LINES))
    ids = {item: f"ITEM_{i:04d}" for i, item in enumerate(items)}
    name = f"shop{lines}"
    out = [f'[catalog]\nid = "{name}"\nversion = "1.0.0"\nlocale = "en"\nfallback = "FALLBACK"\n']
    for rid, text in SHOP_LINES.items():
        out.append(f'[[response]]\nid = "{rid}"\ntext = "{text}"\nstatus = "approved"\n')
    for i, item in enumerate(items):
        out.append(f'[[response]]\nid = "{ids[item]}"\ntext = "The {item}: {5 + i % 95} silver. Yours?"\n'
                   f'status = "approved"\n')
    (folder / f"{name}.toml").write_text("\n".join(out))
    examples = {item: [f"I'd like the {item}", f"how much is a {item}?"] for item in items}
    source = (
        '"""A market trader with a catalog line per item (generated by benchmarks/generated.py)."""\n\n'
        "from dialogue import Policy, reply\n\n"
        f"policy = Policy({name!r}, catalog={name + '.toml'!r}, persona='a trader in a busy bazaar')\n\n"
        f"LINE_OF = {ids!r}\n"
        "ITEMS = list(LINE_OF)\n"
        f"EXAMPLES = {examples!r}\n\n\n"
        "@policy.decide\n"
        "def decide(said, state):\n"
        '    if said("the player says goodbye", examples=["bye", "see you around"]):\n'
        '        return reply("GOODBYE")\n'
        '    if said("the player wants to buy an item or asks its price",\n'
        '            examples=["I want to buy", "what does this cost?"]):\n'
        '        item = said.pick("which item does the player want?", ITEMS, examples=EXAMPLES)\n'
        "        return reply(LINE_OF[item])\n"
        '    if said("the player wants something repaired", examples=["can you fix this?", "mend my cloak"]):\n'
        '        return reply("REPAIR")\n'
        '    if said("the player greets the trader", examples=["hello", "good day"]):\n'
        '        return reply("GREETING")\n'
        '    return reply("FALLBACK")\n'
    )
    path = folder / f"{name}.py"
    path.write_text(source)
    return path
