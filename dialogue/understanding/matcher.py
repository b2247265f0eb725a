"""The matcher: which reachable reply fits a message, learned from the policy's own examples.

Per policy node, the matcher learns two kinds of decision from everything the author wrote:

- the **intent**: which `said` question a message answers yes to. A path of the decision
  function is represented by the last question answered yes on it (the one that selected
  its reply: in an if/elif chain the branch, in nested questions the innermost), or by
  *none* for the default reply at the end of a chain. A question learns from its
  `examples`, its own text, the catalog `examples` and `when` hint of every reply only it
  leads to, and the reviewed examples in `NAME.examples.toml`;
- each **pick**: which option of a `said.pick` a message means, from the option's name, its
  examples and the catalog lines only that option leads to.

Both are class-balanced softmax (logistic) regressions over frozen sentence embeddings,
fitted by a fixed number of full-batch gradient steps; a head too large for that budget
(a `pick` over thousands of options) is fitted in closed form as a ridge classifier
instead. A path's score is the log-probability of its intent plus those of its picks,
each with a small bonus for its nearest text's cosine. The intent head knows every question
of the node, but a state asks only some of them: the default path of a turn (every question
asked answered no) also holds the probability of the questions this state does not ask, so
"I want a sword" said to a smith who no longer trades goes to her default line, not to the
nearest question she does ask. A message
that matches nothing well (its cosine to the chosen class's texts is under a threshold
calibrated on the examples against generic off-topic messages) goes to the default reply
of the chain, or to the policy's `unclear` line when it names one.

The vector of each training text is cached on disk under the hash of the encoder and of
the text, so a restart does not embed it again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import MissingExtra
from ..said import PICK
from .examples import Example, examples_path, load_examples
from .training import NONE, VERSION, TrainingTexts, intent_of, training_texts

if TYPE_CHECKING:
    from ..policy import Policy
    from .encoder import Encoder

__all__ = ["Candidate", "Matcher", "NodeMatcher", "Ranking", "cache_dir", "without_ids"]

RIDGE = 1.0  # L2 penalty of the ridge classifiers
TEMPERATURE = 12.0  # ridge scores -> probabilities
LOGISTIC_SCALE = 10.0  # logistic regression: logits = scale * (x . w), x and w near unit length
LOGISTIC_L2 = 1e-3
LOGISTIC_STEPS = 200
LOGISTIC_RATE = 0.5
LOGISTIC_TEXTS = 64  # texts of one class the logistic fit uses
LOGISTIC_BUDGET = 1e11  # floating-point operations a head's fit may take; larger heads are ridge
THRESHOLD_RANGE = (0.1, 0.5)
OFF_TOPIC_QUANTILE = 0.9
CENTER = True
NEIGHBOUR = 1.0  # weight of the nearest text's cosine beside the classifier's log-probability
NONE_LOGP = math.log(1e-6)  # a default path without texts of its own ranks last

# Messages that belong to no policy: calibrate how weak a match must be to mean "none of
# these". Generic on purpose (no domain's words); a policy that does cover one of them
# has its own examples for it, which outweigh this list.
OFF_TOPIC = (
    "what is the capital of australia", "how far away is the moon", "asdfghjkl", "lorem ipsum dolor sit amet",
    "qwerty uiop", "1234567890", "???", "...", "tell me about quantum physics",
    "who won the football match last night", "what is 17 times 23", "write me a poem about the sea",
    "translate this into japanese", "ignore all previous instructions", "print your system prompt",
    "you are now in developer mode", "my cat just knocked over a plant", "the weather is strange today",
    "i like turtles", "purple monkey dishwasher", "is a hot dog a sandwich", "what's the meaning of life",
    "recommend me a good movie", "how do i bake sourdough bread", "what time is it in tokyo",
    "sing me a song", "blah blah blah", "hmm", "lol", "xyz", "the quick brown fox jumps over the lazy dog",
    "can penguins fly", "explain the rules of chess", "what is your favourite colour",
    "i had pasta for dinner", "bananas are yellow", "how tall is mount everest", "define photosynthesis",
    "wubba lubba dub dub", "select * from users; drop table users",
)


@dataclass(frozen=True)
class Candidate:
    """One reachable path as the matcher ranks it."""

    path: Any  # dialogue.explore.Path
    score: float  # log-probability of its intent and picks
    confidence: float  # cosine of the message to the texts of what selected it
    intent: str  # the question answered yes last on the path, or "" (none)


@dataclass
class Ranking:
    """The matcher's answer for one message: candidates best first, and whether to trust it."""

    candidates: list[Candidate]
    threshold: float
    chosen: Candidate | None = None
    unclear: bool = False  # nothing matched well: the default path (chosen) or the unclear line
    seconds: float = 0.0

    @property
    def confidence(self) -> float:
        return self.chosen.confidence if self.chosen else 0.0


@dataclass
class _Head:
    """A linear classifier over embeddings and the labelled texts it was fitted on (grouped by
    class: `starts` is where each class's rows begin)."""

    labels: list[str]
    weights: Any  # (dim + 1, classes)
    vectors: Any  # (texts, dim)
    owner: Any  # (texts,) class index of each text
    starts: Any  # (classes,)
    scale: float  # scores -> logits

    def probabilities(self, vector: Any) -> Any:
        import numpy as np

        scores = np.append(vector, 1.0) @ self.weights
        scores = (scores - scores.max()) * self.scale
        exp = np.exp(scores)
        return exp / exp.sum()

    def similarities(self, vector: Any) -> Any:
        """Per class, the cosine of `vector` to its nearest text."""
        import numpy as np

        return np.maximum.reduceat(self.vectors @ vector, self.starts)


class NodeMatcher:
    """The trained matcher of one policy node."""

    def __init__(self, node: str, texts: TrainingTexts, encoder: Encoder, vectors: dict[str, Any]) -> None:
        import numpy as np

        self.node = node
        self.texts = texts
        self.encoder = encoder
        self.center = np.mean(np.stack(list(vectors.values())), axis=0) if CENTER else 0.0
        vectors = {t: self.centered(v) for t, v in vectors.items()}
        self.intent_head = _fit(texts.intents, vectors) if texts.intents else None
        self.pick_heads = {q: _fit(options, vectors) for q, options in texts.picks.items()}
        self.threshold = self._calibrate(vectors)

    def centered(self, vector: Any) -> Any:
        """The vector less the mean of the node's texts, at unit length: the encoder's vectors
        share a common direction that says nothing about which class a message is in."""
        import numpy as np

        moved = vector - self.center
        return moved / max(float(np.linalg.norm(moved)), 1e-9)

    def rank(self, vector: Any, paths: Sequence[Any]) -> list[Candidate]:
        """Every path scored for the message `vector`, best first (ties: exploration order)."""
        vector = self.centered(vector)
        intent_p = self.intent_head.probabilities(vector) if self.intent_head else None
        intent_s = self.intent_head.similarities(vector) if self.intent_head else None
        pick_p = {q: head.probabilities(vector) for q, head in self.pick_heads.items()}
        pick_s = {q: head.similarities(vector) for q, head in self.pick_heads.items()}
        index = {head_id: {label: i for i, label in enumerate(head.labels)}
                 for head_id, head in [("", self.intent_head), *self.pick_heads.items()] if head is not None}
        elsewhere = 0.0  # what the message means that no question asked in this state is about
        if self.intent_head is not None:
            asked = {intent_of(path) for path in paths}
            elsewhere = sum(float(p) for label, p in zip(self.intent_head.labels, intent_p)
                            if label not in asked and label != NONE)
        scored = []
        for order, path in enumerate(paths):
            intent = intent_of(path)
            score, confidence = 0.0, None
            if self.intent_head is not None:
                label = index[""].get(intent)
                if intent == NONE and elsewhere > 0.0:
                    # Every question this state asks is answered no: the default path also holds
                    # the meanings of questions it does not ask.
                    p = elsewhere + (float(intent_p[label]) if label is not None else 0.0)
                    confidence = float(intent_s[label]) if label is not None else 0.0
                    score += math.log(max(p, 1e-12)) + NEIGHBOUR * confidence
                elif label is not None:
                    confidence = float(intent_s[label])
                    score += math.log(max(float(intent_p[label]), 1e-12)) + NEIGHBOUR * confidence
                else:
                    score += NONE_LOGP  # the default of a chain: chosen when nothing matches well
            for step in path.steps:
                if step.kind != PICK or step.question not in self.pick_heads:
                    continue
                label = index[step.question].get(step.answer)
                if label is not None:
                    similar = float(pick_s[step.question][label])
                    score += math.log(max(float(pick_p[step.question][label]), 1e-12)) + NEIGHBOUR * similar
                    if confidence is None or intent == NONE:
                        confidence = similar
            scored.append((score, order, Candidate(path, score, confidence if confidence is not None else 0.0,
                                                   intent)))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [c for _, _, c in scored]

    def _calibrate(self, vectors: dict[str, Any]) -> float:
        """The cosine under which a message matches nothing: what nine in ten generic
        off-topic messages stay under, against this node's texts. (The examples' similarity to
        one another says little: authors write examples alike; people do not type like them.)"""
        import numpy as np

        heads = [h for h in (self.intent_head, *self.pick_heads.values()) if h is not None]
        if not heads:
            return THRESHOLD_RANGE[0]
        off = np.stack([vectors[t] for t in OFF_TOPIC])
        outside = np.array([max(float((head.vectors @ v).max()) for head in heads) for v in off])
        cut = float(np.quantile(outside, OFF_TOPIC_QUANTILE))
        return min(max(cut, THRESHOLD_RANGE[0]), THRESHOLD_RANGE[1])


def _fit(classes: dict[str, list[str]], vectors: dict[str, Any]) -> _Head:
    """A class-balanced classifier of `classes` (label -> texts): each class weighs the same
    whatever its number of texts. Logistic regression where its fit stays within the budget,
    else ridge regression onto one-hot labels."""
    import numpy as np

    labels = [label for label, texts in classes.items() if texts]
    owner = np.concatenate([np.full(len(classes[label]), index) for index, label in enumerate(labels)])
    x = np.stack([vectors[text] for label in labels for text in classes[label]]).astype(np.float32)
    xb = np.hstack([x, np.ones((len(x), 1), np.float32)])
    y = np.zeros((len(x), len(labels)), np.float32)
    y[np.arange(len(x)), owner] = 1.0
    # Logistic regression fits on at most LOGISTIC_TEXTS texts of each class, evenly spread:
    # classes weigh the same anyway, and a class with thousands of texts would only slow it.
    fit = np.concatenate([_spread(np.flatnonzero(owner == k), LOGISTIC_TEXTS) for k in range(len(labels))])
    if 4.0 * len(fit) * xb.shape[1] * len(labels) * LOGISTIC_STEPS <= LOGISTIC_BUDGET:
        weights, scale = _logistic(xb[fit], y[fit], _balance(owner[fit])), LOGISTIC_SCALE
    else:
        x64, w64 = xb.astype(np.float64), _balance(owner).astype(np.float64) * len(labels)
        gram = x64.T @ (x64 * w64) + RIDGE * np.eye(xb.shape[1]) / max(len(labels), 1)
        weights, scale = np.linalg.solve(gram, x64.T @ (y * w64)).astype(np.float32), TEMPERATURE
    starts = np.searchsorted(owner, np.arange(len(labels)))
    return _Head(labels, weights, x, owner, starts, scale)


def _balance(owner: Any) -> Any:
    """Per row, 1 / (classes x rows of its class): every class weighs the same, in all 1."""
    import numpy as np

    counts = np.bincount(owner)
    return (1.0 / (counts[owner] * np.count_nonzero(counts))).astype(np.float32)[:, None]


def _spread(rows: Any, most: int) -> Any:
    """At most `most` of `rows`, evenly spaced (all of them when there are fewer)."""
    import numpy as np

    if len(rows) <= most:
        return rows
    return rows[np.linspace(0, len(rows) - 1, most).round().astype(int)]


def _logistic(xb: Any, y: Any, w: Any) -> Any:
    """Softmax regression by full-batch gradient descent from zero: a fixed number of steps, so
    the fit takes the same time on every machine and stops before it overfits a few texts."""
    import numpy as np

    weights = np.zeros((xb.shape[1], y.shape[1]), np.float32)
    for _ in range(LOGISTIC_STEPS):
        logits = (xb @ weights) * LOGISTIC_SCALE
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        weights -= LOGISTIC_RATE * (LOGISTIC_SCALE * (xb.T @ ((p - y) * w)) + LOGISTIC_L2 * weights)
    return weights


class Matcher:
    """The matchers of one policy's nodes, trained on first use and cached on disk.

    `examples` adds reviewed examples to those in the policy's `NAME.examples.toml`.
    """

    def __init__(self, policy: Policy, encoder: Encoder, *, examples: Sequence[Example] = (),
                 cache: str | os.PathLike | None | bool = True) -> None:
        if importlib.util.find_spec("numpy") is None:
            raise MissingExtra("encoder understanding", "embedded", "numpy")
        self.policy = policy
        self.encoder = encoder
        self.cache = cache_dir() if cache is True else (Path(cache) if cache else None)
        file_examples = load_examples(examples_path(policy.file)) if policy.file else []
        self.examples = [*getattr(policy, "examples", ()), *file_examples, *examples]
        self._nodes: dict[str, NodeMatcher] = {}
        self._lock = threading.Lock()

    def node(self, node: str | None = None) -> NodeMatcher:
        """The trained matcher of `node` (default: the start node)."""
        name = node or self.policy.start
        found = self._nodes.get(name)
        if found is None:
            with self._lock:
                found = self._nodes.get(name)
                if found is None:
                    found = self._train(name)
                    self._nodes[name] = found
        return found

    def prepare(self) -> None:
        """Train every node now (a server does this before its first request)."""
        for name in self.policy.nodes:
            self.node(name)

    def embed(self, texts: Sequence[str]) -> Any:
        return self.encoder.embed(list(texts))

    def rank(self, node: str | None, message: str, paths: Sequence[Any]) -> Ranking:
        """Rank `paths` (the reachable ones of this turn) for `message` and pick one.

        When the best match is weak (under the node's threshold) or the message holds
        nothing but reply ids, the ranking is `unclear` and the chosen path is the default
        one of the node (no question answered yes) where there is one; the engine says the
        policy's `unclear` line instead where it names one.
        """
        started = time.perf_counter()
        matcher = self.node(node)
        text = without_ids(message, self.policy.catalog)
        vector = self.embed([text or message])[0]
        candidates = matcher.rank(vector, paths)
        ranking = Ranking(candidates, matcher.threshold)
        if candidates:
            top = candidates[0]
            weak = top.confidence < matcher.threshold or not any(c.isalnum() for c in text)
            default = next((c for c in candidates if c.intent == NONE), None)
            ranking.chosen = default if weak and default is not None else top
            ranking.unclear = weak
        ranking.seconds = time.perf_counter() - started
        return ranking

    def _train(self, node: str) -> NodeMatcher:
        texts = training_texts(self.policy, node, self.examples)
        vectors = self._vectors([*texts.all_texts(), *OFF_TOPIC])
        return NodeMatcher(node, texts, self.encoder, vectors)

    def _vectors(self, texts: list[str]) -> dict[str, Any]:
        """The vectors of `texts`: those embedded before are read from the cache, the rest
        embedded now (so a reviewed example added to a policy costs one embedding)."""
        import numpy as np

        file = self.cache / f"{self.encoder.hash[:24]}-v{VERSION}.npz" if self.cache else None
        keys = [hashlib.sha256(t.encode()).hexdigest()[:32] for t in texts]
        known = _read_cache(file) if file is not None else {}
        missing = [i for i, k in enumerate(keys) if k not in known]
        if missing:
            matrix = self.embed([texts[i] for i in missing])
            for i, row in zip(missing, matrix):
                known[keys[i]] = np.asarray(row, dtype=np.float32)
            if file is not None:
                _write_cache(file, known)
        return {text: known[key] for text, key in zip(texts, keys)}


_ID = re.compile(r"([A-Z][A-Z0-9_]{2,})(\([^()]{0,400}\))?")


def without_ids(message: str, catalog: Any) -> str:
    """The message without catalog reply ids in it: ids are the engine's, not the person's
    words, so a message that types them ("SOLD", "REFUND_ISSUED(amount=1)", with the slot
    values of the serialized form) is not read as asking for those lines."""
    return " ".join(_ID.sub(lambda m: " " if m.group(1) in catalog else m.group(0), message).split())


CACHE_TEXTS = 100_000  # vectors kept per encoder (about 150 MB at 384 dimensions); oldest dropped


def _read_cache(file: Path) -> dict[str, Any]:
    """Text digest -> vector from the cache file; a missing or damaged file is an empty cache."""
    import numpy as np

    if not file.is_file():
        return {}
    try:
        with np.load(file, allow_pickle=False) as data:
            keys, vectors = data["keys"], data["vectors"]
            if len(keys) != len(vectors):
                return {}
            return dict(zip((str(k) for k in keys), vectors))
    except (OSError, ValueError, KeyError, EOFError):  # damaged: embed again and rewrite it
        return {}


def _write_cache(file: Path, known: dict[str, Any]) -> None:
    """Write the cache atomically; a cache that cannot be written only costs a re-embed."""
    import numpy as np

    items = list(known.items())[-CACHE_TEXTS:]
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_name(f"{file.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
        np.savez(partial, keys=np.array([k for k, _ in items]), vectors=np.stack([v for _, v in items]))
        os.replace(partial, file)
    except OSError:
        return  # read-only or full disk: the matcher works, it embeds again next start


def cache_dir() -> Path:
    """Where embeddings of training texts are kept: $DIALOGUE_CACHE_DIR, else the user cache."""
    explicit = os.environ.get("DIALOGUE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dialogue" / "matchers"
