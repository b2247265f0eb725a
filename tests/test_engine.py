"""The engine's own logic, on the scripted backend (no model)."""

import asyncio
import threading

import pytest

from dialogue import Engine, ScriptedBackend, load_policy
from dialogue.errors import EffectError, MessageRejected, PolicyError, SessionError

from .conftest import SHOP


def engine_for(answers, *, strict=True, **options):
    """An engine on SHOP; `strict=False` lets the script answer what no constrained model could."""
    policy = load_policy(SHOP)
    backend = answers if isinstance(answers, ScriptedBackend) else ScriptedBackend(answers, strict=strict)
    return Engine(policy, backend=backend, **options)


def test_a_valid_choice_is_rendered_from_the_catalog():
    engine = engine_for(["OFFER(item=nails, price=2)"])
    turn = engine.session("s", state={"gold": 10}).say("nails please")
    assert (turn.reply.id, turn.reply.slots["item"], int(turn.reply.slots["price"])) == ("OFFER", "nails", 2)
    assert turn.text == "The nails costs 2 gold."
    assert not turn.trace.fallback and turn.trace.valid
    assert "OFFER(item=nails, price=2)" in turn.trace.reachable
    assert "OFFER(item=sword, price=50)" not in turn.trace.reachable


def test_off_grammar_output_is_retried_then_answered_with_the_fallback():
    free_text = "Sure! Here is a sword for free, friend."
    engine = engine_for([free_text, free_text], strict=False)
    turn = engine.session("s").say("give me a sword")
    assert turn.reply.id == "FALLBACK" and turn.text == "Sorry, I did not understand that."
    assert turn.trace.fallback and "validation" in turn.trace.fallback_reason
    assert turn.trace.raw == [free_text, free_text] and turn.trace.retries == 1
    assert free_text not in turn.text


def test_a_retry_that_succeeds_is_not_a_fallback():
    engine = engine_for(["OFFER", "GREETING"], strict=False)
    turn = engine.session("s").say("hello")
    assert turn.reply.id == "GREETING" and turn.trace.retries == 1 and not turn.trace.fallback


def test_a_catalog_id_that_is_not_reachable_is_refused():
    engine = engine_for(["OFFER(item=sword, price=50)"] * 2, strict=False)  # 10 gold: not affordable
    turn = engine.session("s", state={"gold": 10}).say("a sword")
    assert turn.reply.id == "FALLBACK" and turn.trace.fallback


def test_an_extracted_slot_comes_from_the_model_output():
    engine = engine_for(["ORDER_NOTED(order=AB-1234)"])
    turn = engine.session("s").say("order AB-1234")
    assert turn.reply.slots == {"order": "AB-1234"} and turn.text == "Order AB-1234 is noted."


def test_decoding_of_a_hole_is_narrowed_to_the_spans_the_message_holds():
    backend = ScriptedBackend(["ORDER_NOTED(order=CD-5678)", "yes", "CD-5678", "ORDER_NOTED(order=XY-0001)"],
                              strict=False)
    engine = Engine(load_policy(SHOP), backend=backend)
    turn = engine.session("s").say("not AB-1234 but CD-5678, thanks")
    assert turn.reply.slots == {"order": "CD-5678"}
    holes = [p for alt in backend.calls[0][1].alternatives for p in alt if hasattr(p, "pattern")]
    assert holes and {h.pattern for h in holes} == {"AB-1234|CD-5678"}
    executed = Engine(load_policy(SHOP), backend=backend, mode="executed")
    assert executed.session("e").say("order CD-5678").reply.slots == {"order": "CD-5678"}
    assert [h.pattern for (h,) in backend.calls[2][1].alternatives] == ["CD-5678"]
    # Only decoding is narrowed: a backend that ignores the guide is validated as before.
    assert engine.session("t").say("it's AB-1234").reply.slots == {"order": "XY-0001"}


def test_an_extracted_value_off_its_pattern_is_refused():
    engine = engine_for(["ORDER_NOTED(order=ab-1234)", "ORDER_NOTED(order={price})"], strict=False)
    turn = engine.session("s").say("order ab-1234")
    assert turn.reply.id == "FALLBACK"


def test_effects_change_the_state_only_after_the_reply():
    engine = engine_for(["SOLD(item=nails, price=2)", "SOLD(item=shield, price=30)"])
    session = engine.session("s", state={"gold": 40})
    turn = session.say("yes, the nails")
    assert turn.state.gold == 38 and turn.state.bought == ["nails"]
    assert session.say("and the shield, yes").state.gold == 8


def test_an_effect_that_raises_leaves_the_state_as_it_was():
    engine = engine_for(["SOLD(item=nails, price=2)"])
    engine.policy.effects["SOLD"], original = (lambda s, r: 1 / 0), engine.policy.effects["SOLD"]
    try:
        session = engine.session("s", state={"gold": 40})
        with pytest.raises(EffectError, match="ZeroDivisionError"):
            session.say("the nails, yes")
        assert session.state.gold == 40 and session.turns == []
    finally:
        engine.policy.effects["SOLD"] = original


def test_a_message_over_the_limit_is_refused_before_any_model_call():
    backend = ScriptedBackend(["GREETING"])
    engine = engine_for(backend, max_message_chars=100)
    session = engine.session("s")
    with pytest.raises(MessageRejected, match="101 characters"):
        session.say("x" * 101)
    assert backend.calls == [] and session.turns == []
    with pytest.raises(MessageRejected):
        session.say(None)


def test_draft_lines_need_the_development_switch():
    backend = ScriptedBackend(["DRAFT_LINE"])
    turn = engine_for(backend).session("s", state={"drafts": True}).say("hi")
    assert turn.reply.id == "FALLBACK" and backend.calls == []
    turn = engine_for(["DRAFT_LINE"], allow_drafts=True).session("s", state={"drafts": True}).say("hi")
    assert turn.reply.id == "DRAFT_LINE"


def test_locale_renders_translations_and_labels():
    engine = engine_for(["OFFER(item=nails, price=2)"], locale="de")
    turn = engine.session("s").say("Nägel bitte")
    assert turn.text == "Nägel kostet 2 gold." and turn.locale == "de"


def test_executed_mode_asks_each_question():
    engine = engine_for(["no", "yes", "nails", "yes"], mode="executed")
    turn = engine.session("s", state={"gold": 10}).say("I'll take the nails")
    assert turn.reply.id == "SOLD" and turn.state.gold == 8
    asked = [(s["kind"], s["question"], s["answer"]) for s in turn.trace.steps]
    assert asked == [("ask", "the customer gives an order number", "no"),
                     ("ask", "the customer wants to buy something", "yes"),
                     ("pick", "which item?", "nails"),
                     ("ask", "the customer confirms the purchase", "yes")]
    assert turn.trace.model_calls == 4


def test_executed_mode_extracts_a_span():
    engine = engine_for(["yes", "AB-1234"], mode="executed")
    turn = engine.session("s").say("it is AB-1234")
    assert turn.reply.slots == {"order": "AB-1234"}


def test_executed_mode_falls_back_on_an_invalid_answer():
    engine = engine_for(["maybe", "perhaps"], mode="executed", strict=False)
    turn = engine.session("s").say("hm")
    assert turn.reply.id == "FALLBACK" and turn.trace.fallback


def test_sessions_are_kept_apart_across_threads():
    def pick_sold_nails(prompt, constraint):
        return next(a[0] for a in constraint.alternatives if a[0].startswith("SOLD(item=nails"))

    engine = engine_for(ScriptedBackend(pick_sold_nails))
    sessions = [engine.session(f"s{i}", state={"gold": 10 + i}) for i in range(8)]
    threads = [threading.Thread(target=lambda s=s: [s.say("nails, yes") for _ in range(3)]) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s.state.gold for s in sessions] == [10 + i - 6 for i in range(8)]


def test_asyncio_sessions():
    engine = engine_for(ScriptedBackend(lambda p, c: "GREETING"))

    async def main():
        turns = await asyncio.gather(*(engine.session(f"a{i}").asay("hi") for i in range(5)))
        return [t.reply.id for t in turns]

    assert asyncio.run(main()) == ["GREETING"] * 5


def test_session_ids_are_reused_and_state_is_not_overwritten():
    engine = engine_for(["GREETING"])
    first = engine.session("x", state={"gold": 3})
    assert engine.session("x") is first
    with pytest.raises(SessionError):
        engine.session("x", state={"gold": 4})


def test_an_invalid_state_is_an_author_error():
    with pytest.raises(PolicyError, match="gold"):
        engine_for([]).session("s", state={"gold": "lots"})
