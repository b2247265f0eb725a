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
