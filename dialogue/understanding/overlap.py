"""Questions the matcher cannot tell apart: rival `said` questions whose examples overlap.

Two questions of a node are rivals when a yes to each selects a different reply (they are
the intents of paths, as the matcher sees them, that end in different replies in one
state); two options of one `pick` are rivals when they lead to different replies. The
matcher learns each from its text and examples, so rivals whose examples say the same
thing cannot be told apart, and a message meant for one is as likely to reach the other.

The overlap of two rivals is the mean, over one side's texts (the question or option
itself and its examples), of the cosine to the closest text of the other side; the larger
of the two directions counts, since one question whose examples all sit inside another's
is swallowed by it. Every text having a near-paraphrase on the other side scores 0.8 and
more with all-MiniLM-L6-v2 (two questions with reworded copies of each other's examples:
about 0.9); the closest rivals of the example policies stay at 0.75 and under (a sword
that is "a blade" against a dagger that is "a small blade"), unrelated ones under 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from ..checks import PolicyWarning
from ..errors import DialogueError, Location
from ..explore import explore
from ..said import ASK, PICK
from .encoder import Encoder, default_encoder
from .training import NONE, intent_of

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["THRESHOLD", "overlapping_questions"]

THRESHOLD = 0.8


@dataclass(frozen=True)
class Rival:
    """One side of a pair: a yes/no question, or one option of a pick."""

    question: str
    option: str | None  # None for a yes/no question
    texts: tuple[str, ...]  # the question (or option) first, then its examples
    line: int | None

    @property
    def name(self) -> str:
        return repr(self.question) if self.option is None else repr(self.option)


@dataclass(frozen=True)
class Overlap:
    """How alike the texts of two rivals are, and their most alike pair of texts."""

    score: float
    closest: tuple[str, str, float]


def overlapping_questions(policy: Policy, encoder: Encoder | None = None,
                          threshold: float = THRESHOLD) -> list[DialogueError]:
    """A warning for each pair of rival questions (or pick options) whose examples overlap
    `threshold` or more, naming both, the nodes, the overlap and the most alike examples."""
    encoder = encoder or default_encoder()
    found: dict[tuple[Rival, Rival], list[str]] = {}
    for node in policy.nodes:
        for pair in rival_pairs(policy, node):
            found.setdefault(pair, []).append(node)
    vectors = _embedded(encoder, {t for pair in found for rival in pair for t in rival.texts})
    warnings = []
    for (a, b), nodes in found.items():
        overlap = measure(a.texts, b.texts, vectors)
        if overlap.score >= threshold:
            warnings.append(_warning(policy, a, b, nodes, overlap))
    return warnings


def rival_pairs(policy: Policy, node: str) -> list[tuple[Rival, Rival]]:
    """Pairs of questions, and of options of one pick, that select different replies of `node`."""
    questions = {(q.kind, q.text): q for q in policy.questions_of(node)}
    pairs: dict[tuple[Rival, Rival], None] = {}
    for paths in _explorations(policy, node):
        for kind, replies in ((ASK, _replies_by_intent(paths)), (PICK, _replies_by_option(paths))):
            for x, y in combinations(replies, 2):
                same_pick = kind == ASK or x[0] == y[0]
                if same_pick and replies[x] != replies[y]:
                    pair = sorted((_rival(questions, kind, x), _rival(questions, kind, y)),
                                  key=lambda r: _order(questions, r))
                    pairs.setdefault(tuple(pair))
    return list(pairs)


def measure(a: Iterable[str], b: Iterable[str], vectors: dict[str, Any]) -> Overlap:
    """The overlap of two sets of texts (see the module's docstring) and their closest pair."""
    a, b = list(dict.fromkeys(a)), list(dict.fromkeys(b))
    cosines = np.stack([vectors[t] for t in a]) @ np.stack([vectors[t] for t in b]).T
    score = max(float(cosines.max(axis=1).mean()), float(cosines.max(axis=0).mean()))
    i, j = np.unravel_index(int(cosines.argmax()), cosines.shape)
    return Overlap(score, (a[i], b[j], float(cosines[i, j])))


def _explorations(policy: Policy, node: str) -> list[tuple]:
    """The paths of `node` in its default state and each sample state it can take."""
    found = []
    for data in (None, *policy.sample_states):
        try:
            found.append(explore(policy, data, node=node).paths)
        except DialogueError:  # a state that does not validate or explore: lint reports it
            continue
    return found


def _replies_by_intent(paths: tuple) -> dict[tuple, frozenset]:
    """(question,) -> the replies of the paths a yes to it selects."""
    out: dict[tuple, set] = {}
    for path in paths:
        intent = intent_of(path)
        if intent != NONE:
            out.setdefault((intent,), set()).add(path.reply)
    return {k: frozenset(v) for k, v in out.items()}


def _replies_by_option(paths: tuple) -> dict[tuple, frozenset]:
    """(pick question, option) -> the replies of the paths on which it was picked."""
    out: dict[tuple, set] = {}
    for path in paths:
        for step in path.steps:
            if step.kind == PICK:
                out.setdefault((step.question, step.answer), set()).add(path.reply)
    return {k: frozenset(v) for k, v in out.items()}


def _rival(questions: dict, kind: str, key: tuple) -> Rival:
    question = questions.get((kind, key[0]))
    line = question.line if question is not None else None
    if kind == ASK:
        examples = list(question.examples) if question is not None else []
        return Rival(key[0], None, (key[0], *examples), line)
    option = str(key[1])
    groups = question.examples if question is not None and isinstance(question.examples, dict) else {}
    return Rival(key[0], option, (option, *groups.get(option, ())), line)


def _order(questions: dict, rival: Rival) -> tuple:
    """Where a rival is written: its line, then its place among the options of its pick."""
    pick = questions.get((PICK, rival.question)) if rival.option is not None else None
    place = pick.options.index(rival.option) if pick and rival.option in pick.options else 0
    return (rival.line or 0, place, rival.question)


def _embedded(encoder: Encoder, texts: set[str]) -> dict[str, Any]:
    ordered = sorted(texts)
    return dict(zip(ordered, encoder.embed(ordered))) if ordered else {}


def _warning(policy: Policy, a: Rival, b: Rival, nodes: list[str], overlap: Overlap) -> PolicyWarning:
    first, second, cosine = overlap.closest
    where = ", ".join(repr(n) for n in nodes)
    if a.option is None:
        what = f"questions {a.name} and {b.name}" + (f" (line {b.line})" if b.line else "")
        hint = "give each question examples that only it would answer yes to"
    else:
        what = f"options {a.name} and {b.name} of said.pick({a.question!r})"
        hint = "give each option examples that only it would be picked for"
    return PolicyWarning(
        f"{what} in node{'s' * (len(nodes) > 1)} {where} overlap {overlap.score:.2f}: the matcher "
        f"cannot tell them apart (most alike: {first!r} ~ {second!r}, cosine {cosine:.2f})",
        location=Location(str(policy.file), a.line) if policy.file else None, entry=nodes[0], hint=hint)
