"""Localisation at run time and stale translations and recordings."""

from __future__ import annotations

import pytest

from dialogue import Catalog, Engine, ScriptedBackend, load_policy
from dialogue.authoring import CatalogDocument, check_catalog
from dialogue.errors import CatalogError

from .conftest import INN


def no_fallback(text: str) -> str:
    return text.replace('voice = ["en"]', 'voice = ["en"]\nlocale_fallback = false')


def test_a_changed_source_makes_locked_translations_and_audio_stale(inn):
    doc = CatalogDocument.load(inn)
    doc.set("ROOM", "text", "Une chambre: {price}.", locale="fr")
    doc.set("ROOM", "text", "A room is {price} a night.")
    room = doc.catalog()["ROOM"]
    assert room.translation_stale("fr") and room.translation_stale("de")
    assert room.audio_stale("en") and room.audio_for("en") is None
    doc.set("ROOM", "text", "Une chambre: {price} la nuit.", locale="fr")
    assert not doc.catalog()["ROOM"].translation_stale("fr")


def test_translations_without_a_lock_are_trusted(inn):
    catalog = Catalog.load(inn)
    assert all(not r.stale_locales and not r.audio_stale("en") for r in catalog)


def test_a_stale_translation_falls_back_to_the_default_text_where_allowed(inn):
    doc = CatalogDocument.load(inn)
    doc.set("ROOM", "text", "A room is {price} a night.")
    assert doc.catalog().render("ROOM", {"price": 5}, "de") == "A room is 5 silver a night."
    strict = Catalog.from_text(no_fallback(doc.dumps()))
    with pytest.raises(CatalogError, match="ROOM has no current de text, and the catalog does not fall back"):
        strict.render("ROOM", {"price": 5}, "de")
    assert not strict.emittable("ROOM", locale="de") and strict.emittable("ROOM", locale="en")


def test_the_fallback_line_always_renders(inn):
    doc = CatalogDocument(no_fallback(INN), inn)
    doc.set("FALLBACK", "text", None, locale="fr")
    assert doc.catalog().render("FALLBACK", locale="fr") == "Hm? Say that again."


def test_the_engine_says_the_session_locale_and_reports_the_audio(inn, inn_policy):
    policy = load_policy(inn_policy)
    turn = Engine(policy, backend=ScriptedBackend(["GREETING"])).session("s", locale="de").say("hallo")
    assert turn.text == "Willkommen an der Wegkreuzung, Reisender."
    assert turn.audio == "audio/de/greeting.ogg" and turn.lines[0]["audio"] == "audio/de/greeting.ogg"
    turn = Engine(policy, backend=ScriptedBackend(["GREETING"])).session("s", locale="fr").say("salut")
    assert turn.text == "Bienvenue au Carrefour, voyageur." and turn.audio is None


def test_without_locale_fallback_an_untranslated_line_is_not_chosen(inn, inn_policy):
    doc = CatalogDocument(no_fallback(INN), inn)
    doc.set("GREETING", "text", None, locale="fr")
    doc.save()
    policy = load_policy(inn_policy)
    backend = ScriptedBackend(["GREETING", "GREETING"], strict=False)
    turn = Engine(policy, backend=backend).session("s", locale="fr").say("salut")
    assert turn.reply.id == "FALLBACK" and turn.text == "Hein ? Répète ?"
    assert "GREETING" not in turn.trace.reachable
    turn = Engine(policy, backend=ScriptedBackend(["GREETING"])).session("s", locale="en").say("hi")
    assert turn.reply.id == "GREETING" and turn.audio == "audio/en/greeting.ogg"


def test_check_passes_a_complete_current_voiced_catalog(inn):
    assert check_catalog(inn) == []


def test_check_reports_missing_and_stale_translations_and_recordings(inn):
    doc = CatalogDocument.load(inn)
    doc.set("GREETING", "text", None, locale="fr")
    doc.set("ROOM", "text", "A room is {price} a night.")
    doc.set("FALLBACK", "audio", "audio/en/missing.ogg")
    doc.save()
    problems = [(p.location.line, p.message) for p in check_catalog(inn)]
    assert problems == [
        (11, "GREETING has no fr text"),
        (22, "the de text of ROOM is stale: it was translated from an earlier text"),
        (22, "the fr text of ROOM is stale: it was translated from an earlier text"),
        (22, "the en recording of ROOM voices an earlier text"),
        (41, "the en recording of FALLBACK, 'audio/en/missing.ogg', does not exist"),
    ]
    assert all(p.location.file == str(inn) for p in check_catalog(inn))


def test_check_wants_recordings_only_for_approved_lines_in_voiced_locales(inn):
    doc = CatalogDocument.load(inn)
    doc.set("ROOM", "audio", None)
    doc.save()
    assert [p.message for p in check_catalog(inn)] == ["ROOM has no en recording"]
    doc.set("ROOM", "status", "draft")
    doc.save()
    assert check_catalog(inn) == []
