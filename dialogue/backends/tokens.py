"""Token-level automata for constrained choice: a trie of literal alternatives.

The embedded backend walks one of these inside its own generation loop: where a
node has one admissible token it is forced (appended without a forward step);
where the admitted continuations branch, the model chooses among them only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

__all__ = ["TokenTrie", "TrieNode"]


@dataclass
class TrieNode:
    """A prefix of one or more alternatives, as token ids."""

    children: dict[int, TrieNode] = field(default_factory=dict)
    terminal: int | None = None  # index of the alternative that ends here
    leaves: int = 0  # how many alternatives run through this node
    only: int | None = None  # the alternative, when exactly one runs through


class TokenTrie:
    """A trie over the tokenizations of a set of strings."""

    def __init__(self, alternatives: Sequence[str], tokenize: Callable[[str], list[int]]) -> None:
        self.alternatives = tuple(alternatives)
        self.tokens = [tokenize(a) for a in self.alternatives]
        self.root = TrieNode()
        for index, ids in enumerate(self.tokens):
            self._insert(index, ids)

    def _insert(self, index: int, ids: list[int]) -> None:
        node = self.root
        node.leaves += 1
        node.only = index if node.leaves == 1 else None
        for token in ids:
            node = node.children.setdefault(token, TrieNode())
            node.leaves += 1
            node.only = index if node.leaves == 1 else None
        if node.terminal is not None:
            raise ValueError(f"alternatives {self.alternatives[node.terminal]!r} and "
                             f"{self.alternatives[index]!r} tokenize the same")
        node.terminal = index

    def branch_points(self, node: TrieNode | None = None) -> int:
        """How many nodes where the walk must ask the model (for cost estimates)."""
        node = node or self.root
        own = 1 if len(node.children) + (node.terminal is not None) > 1 else 0
        return own + sum(self.branch_points(c) for c in node.children.values())
