"""The matcher: a policy's own examples decide which reachable reply fits a message."""

from __future__ import annotations

import pytest

from dialogue import Engine, load_policy
from dialogue.errors import PolicyError
from dialogue.explore import explore
from dialogue.understanding import default_encoder
from dialogue.understanding.matcher import Matcher, without_ids
from dialogue.understanding.training import NONE

from .conftest import NoModel, write_pizza


def answer(path, message, **engine_options):
    engine = Engine(load_policy(path), backend=NoModel(), **engine_options)
    return engine.session("s").say(message)


@pytest.mark.parametrize("message, expected", [
    ("I want a pepperoni", ("ORDER", {"pizza": "pepperoni"})),
    ("a pineapple pizza for me", ("ORDER", {"pizza": "hawaiian"})),
    ("when do you close tonight?", ("HOURS", {})),
    ("hey!", ("GREETING", {})),
    ("that's everything, bye", ("GOODBYE", {})),
])
def test_messages_it_has_not_seen(pizza_path, message, expected):
    turn = answer(pizza_path, message)
    assert (turn.reply.id, turn.reply.slots) == expected
    assert turn.trace.understanding == "encoder" and turn.trace.model_calls == 0


def test_the_default_of_the_chain_wins_when_nothing_matches(pizza_path):
    turn = answer(pizza_path, "what is the capital of peru")
    assert turn.reply.id == "MENU"
    assert turn.trace.unclear and turn.trace.confidence < turn.trace.threshold


def test_typed_reply_ids_are_not_read_as_words(pizza_path):
    for message in ("ORDER", "ORDER(pizza=pepperoni)", "GOODBYE GOODBYE"):
        assert answer(pizza_path, message).reply.id == "MENU"
    assert without_ids("say ORDER now", load_policy(pizza_path).catalog) == "say now"


def test_an_unclear_line_replaces_a_weak_match(tmp_path):
    path = write_pizza(tmp_path, extra=', unclear="PARDON"')
    turn = answer(path, "purple monkey dishwasher")
    assert turn.reply.id == "PARDON" and "catch that" in turn.text
    assert answer(path, "one margherita please").reply.id == "ORDER"


@pytest.mark.parametrize("unclear, message", [
    ('"NOPE"', "is not a line"), ('"ORDER"', "has slots"), ('{"elsewhere": "PARDON"}', "node 'elsewhere'")])
def test_a_bad_unclear_line_is_an_author_error(tmp_path, unclear, message):
    path = write_pizza(tmp_path, extra=f", unclear={unclear}")
    with pytest.raises(PolicyError, match=message):
        Engine(load_policy(path), backend=NoModel())


def test_trace_carries_the_ranking(pizza_path):
    turn = answer(pizza_path, "can i order a margherita")
    trace = turn.trace
    assert trace.candidates[0]["reply"] == "ORDER(pizza=margherita)"
    assert trace.candidates[0]["score"] == max(c["score"] for c in trace.candidates)
    assert abs(sum(c["score"] for c in trace.candidates) - 1.0) < 0.05
    assert trace.encoder.startswith("all-MiniLM-L6-v2-int8 ")
    assert "match_s" in trace.timings and trace.threshold is not None


def test_reviewed_examples_teach_what_the_author_did_not_write(tmp_path):
    message = "give me the hot one with the spicy sausage"
    (tmp_path / "before").mkdir()
    before = answer(write_pizza(tmp_path / "before"), message)
    assert before.reply.slots != {"pizza": "pepperoni"}
    (tmp_path / "after").mkdir()
    taught = write_pizza(tmp_path / "after", examples="""
        [[example]]
        message = "the spicy sausage one"
        reply = "ORDER"
        slots = { pizza = "pepperoni" }
        source = "correction"
    """)
    after = answer(taught, message)
    assert (after.reply.id, after.reply.slots) == ("ORDER", {"pizza": "pepperoni"})


def test_an_example_without_slot_values_teaches_the_intent_only(pizza_path):
    from dialogue.understanding.examples import Example

    matcher = Matcher(load_policy(pizza_path), default_encoder(), cache=False,
                      examples=[Example("the spicy sausage one", "ORDER", node="main")])
    texts = matcher.node().texts
    assert "the spicy sausage one" in texts.intents["the customer orders a pizza"]
    assert all("the spicy sausage one" not in t for t in texts.picks["which pizza?"].values())


def test_training_is_cached_on_disk(pizza_path, tmp_path):
    policy = load_policy(pizza_path)
    counting = _Counting(default_encoder())
    Matcher(policy, counting, cache=tmp_path / "c").node()
    first = counting.texts
    assert first > 20
    Matcher(policy, counting, cache=tmp_path / "c").node()
    assert counting.texts == first  # the second start embedded nothing
    for file in (tmp_path / "c").iterdir():
        file.write_bytes(b"garbage")
    Matcher(policy, counting, cache=tmp_path / "c").node()
    assert counting.texts == 2 * first  # a damaged cache is embedded again, not trusted


def test_the_default_reply_is_the_none_intent(pizza_path):
    policy = load_policy(pizza_path)
    paths = explore(policy).paths
    matcher = Matcher(policy, default_encoder(), cache=False)
    ranking = matcher.rank(None, "asdf qwerty", paths)
    assert ranking.chosen.intent == NONE and ranking.chosen.path.reply.id == "MENU"


class _Counting:
    def __init__(self, inner):
        self.inner, self.texts = inner, 0
        self.model_id, self.hash = inner.model_id, inner.hash

    def embed(self, texts):
        self.texts += len(texts)
        return self.inner.embed(texts)


def _blobs(classes, per_class, dim=16, seed=0):
    """Texts named by class, with vectors clustered around one random direction per class."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    data, vectors = {}, {}
    for k in range(classes):
        data[f"c{k}"] = [f"c{k}-{i}" for i in range(per_class)]
        for i, text in enumerate(data[f"c{k}"]):
            v = centres[k] + 0.3 * rng.normal(size=dim)
            vectors[text] = v / np.linalg.norm(v)
    return data, vectors


def test_small_heads_are_logistic_and_huge_ones_ridge(monkeypatch):
    import numpy as np

    from dialogue.understanding import matcher as m

    data, vectors = _blobs(5, 8)
    head = m._fit(data, vectors)
    assert head.scale == m.LOGISTIC_SCALE
    for label, texts in data.items():  # every class's own texts are its most probable
        assert all(head.labels[int(np.argmax(head.probabilities(vectors[t])))] == label for t in texts)
    monkeypatch.setattr(m, "LOGISTIC_BUDGET", 1.0)  # a head over the budget: closed form instead
    head = m._fit(data, vectors)
    assert head.scale == m.TEMPERATURE
    assert all(head.labels[int(np.argmax(head.probabilities(vectors[t])))] == label
               for label, texts in data.items() for t in texts)


def test_a_class_with_many_texts_weighs_as_much_as_one_with_few():
    import numpy as np

    from dialogue.understanding import matcher as m

    data, vectors = _blobs(2, 400)
    data["c1"] = data["c1"][:3]  # 400 texts against 3: the small class still has its region
    head = m._fit(data, vectors)
    assert len(head.owner) == 403  # nearest-text similarities keep every text
    small = head.labels.index("c1")
    assert all(int(np.argmax(head.probabilities(vectors[t]))) == small for t in data["c1"])


def test_what_a_state_does_not_ask_goes_to_the_default_path():
    """Hilda does no business with enemies: at reputation -4 she asks only about insults and
    goodbyes. A request to buy means neither, so it gets her default line, not an insult."""
    from ..conftest import EXAMPLES

    engine = Engine(load_policy(EXAMPLES["blacksmith"]), backend=NoModel(), understanding="encoder")
    enemy = {"reputation": -4}
    for n, message in enumerate(["I want to buy a sword", "can you repair my shield?", "any rumours?"]):
        assert engine.session(f"enemy-{n}", state=enemy).say(message).reply.id == "GET_OUT", message
    assert engine.session("enemy-bye", state=enemy).say("bye then").reply.id == "GOODBYE"
    assert engine.session("friend", state={"quest": "done"}).say("got any more work for me?").reply.id == "FALLBACK"
