"""What a policy node learns from: texts per intent and per pick option.

A path of the decision function is known by its **intent**, the last `said` question
answered yes on it (the one that selected its reply), and by its picks. A question learns
from its text and examples, a pick option from its name and examples, a catalog line's
`examples` and `when` from the one question or option that leads to it, and a reviewed
example (`NAME.examples.toml`) from the paths to the reply it names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..errors import PolicyError
from ..said import ASK, PICK
from .examples import Example

if TYPE_CHECKING:
    from ..explore import Exploration
    from ..policy import Policy

__all__ = ["NONE", "TrainingTexts", "intent_of", "node_explorations", "training_texts"]

NONE = ""  # the intent of a path on which no question is answered yes
VERSION = 1  # bump when what is learned changes meaning: cached vectors are kept under it


@dataclass
class TrainingTexts:
    """What one node learns from: texts per intent and per pick option."""

    intents: dict[str, list[str]] = field(default_factory=dict)
    picks: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    _known: set[tuple] = field(default_factory=set, repr=False)  # (bucket, text) already added
    _steps: set[tuple] = field(default_factory=set, repr=False)  # steps already learned from

    def add_intent(self, intent: str, texts: Iterable[str]) -> None:
        self._add(self.intents.setdefault(intent, []), ("intent", intent), texts)

    def add_pick(self, question: str, option: str, texts: Iterable[str]) -> None:
        self._add(self.picks.setdefault(question, {}).setdefault(option, []), ("pick", question, option), texts)

    def _add(self, bucket: list[str], name: tuple, texts: Iterable[str]) -> None:
        for text in (t.strip() for t in texts):
            if text and (name, text) not in self._known:
                self._known.add((name, text))
                bucket.append(text)

    def first_time(self, *key: Any) -> bool:
        """Whether `key` (a step, seen from one intent) is new: exploration meets the same pick
        on every path through it, a thousand options each time."""
        if key in self._steps:
            return False
        self._steps.add(key)
        return True

    def all_texts(self) -> list[str]:
        seen: dict[str, None] = {}
        for texts in self.intents.values():
            seen.update(dict.fromkeys(texts))
        for options in self.picks.values():
            for texts in options.values():
                seen.update(dict.fromkeys(texts))
        return list(seen)


def intent_of(path: Any) -> str:
    """The question that selected this path's reply: the last one answered yes, or NONE."""
    for step in reversed(path.steps):
        if step.kind == ASK and step.answer is True:
            return step.question
    return NONE


def node_explorations(policy: Policy, node: str, states: Iterable[Any] = ()) -> list[Exploration]:
    """The node explored in its default state, the policy's sample states and `states`."""
    from ..explore import explore

    found = []
    for data in (None, *policy.sample_states, *states):
        try:
            state = policy.new_state(data)
            found.append(explore(policy, state, node=node))
        except PolicyError:  # a sample state this node cannot take: lint reports it
            continue
    if not found:
        found.append(explore(policy, policy.new_state(None), node=node))
    return found


def training_texts(policy: Policy, node: str, examples: Sequence[Example] = ()) -> TrainingTexts:
    """Everything `node` learns from, grouped by intent and by pick option."""
    mine = [e for e in examples if (e.node or policy.start) == node]
    explorations = node_explorations(policy, node, [e.state for e in mine if e.state])
    texts = TrainingTexts()
    routes: dict[str, set[tuple]] = {}  # reply id -> (intent, picks) of the paths that reach it
    for exploration in explorations:
        for path in exploration.paths:
            intent = intent_of(path)
            picks = tuple((s.question, s.answer) for s in path.steps if s.kind == PICK)
            for line in path.reply.lines:
                routes.setdefault(line.id, set()).add((intent, picks))
            _add_steps(texts, path)
    catalog = policy.catalog
    for reply_id, seen in routes.items():
        if reply_id not in catalog:
            continue
        response = catalog[reply_id]
        written = [*response.examples, *([response.when] if response.when else [])]
        _add_routed(texts, seen, written)
    for example in mine:
        seen = _routes_for(policy, explorations, example) or routes.get(example.reply, set())
        _add_routed(texts, seen, [example.message], exact=True)
    if not texts.intents.get(NONE):
        texts.intents.pop(NONE, None)
    return texts


def _add_steps(texts: TrainingTexts, path: Any) -> None:
    """Each question learns its own text and examples; a pick asked after the question that
    selected the path teaches that question too (naming an item is asking to buy it)."""
    intent = intent_of(path)
    selected = False
    for step in path.steps:
        if step.kind == ASK:
            texts.add_intent(step.question, [step.question, *step.examples])
            selected = selected or step.question == intent
        elif step.kind == PICK:
            pairs = step.examples or tuple((o, ()) for o in step.options)
            if texts.first_time(step.question, pairs):
                for option, examples in pairs:
                    texts.add_pick(step.question, str(option), [str(option), *examples])
            if selected and intent != NONE and texts.first_time(intent, step.question, pairs):
                for option, examples in pairs:
                    texts.add_intent(intent, [str(option), *examples])


def _add_routed(texts: TrainingTexts, seen: set[tuple], written: list[str], exact: bool = False) -> None:
    """Texts of a reply go to its intent when one intent leads to it (a reviewed example, `exact`,
    to every intent its paths take), and to a pick's option when only that option leads to it."""
    intents = {intent for intent, _ in seen}
    if len(intents) == 1 or (exact and intents):
        for intent in intents:
            texts.add_intent(intent, written)
    by_question: dict[str, set[str]] = {}
    for _, picks in seen:
        for question, option in picks:
            by_question.setdefault(question, set()).add(option)
    for question, options in by_question.items():
        if len(options) == 1:
            texts.add_pick(question, str(next(iter(options))), written)


def _routes_for(policy: Policy, explorations: list[Exploration], example: Example) -> set[tuple]:
    """The (intent, picks) of the paths to the example's reply (and slot values, where it gives
    them), in the example's own state where it gives one."""
    if example.state:
        from ..explore import explore

        try:
            explorations = [explore(policy, policy.new_state(example.state), node=example.node or policy.start)]
        except PolicyError:
            return set()
    found = set()
    for exploration in explorations:
        for path in exploration.paths:
            if any(_same_line(line, example) for line in path.reply.lines):
                found.add((intent_of(path), tuple((s.question, s.answer) for s in path.steps if s.kind == PICK)))
    return found


def _same_line(line: Any, example: Example) -> bool:
    if line.id != example.reply:
        return False
    return all(str(line.slots.get(k)) == str(v) for k, v in example.slots.items())
