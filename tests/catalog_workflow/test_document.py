"""CatalogDocument: the editing API shared by the CLI and the TUI; edits keep the file as written."""

from __future__ import annotations

import pytest

from dialogue import Catalog
from dialogue.authoring import CatalogDocument
from dialogue.catalog import CatalogErrors
from dialogue.errors import CatalogError

from .conftest import INN, changed_lines


def test_load_dumps_and_save_keep_the_file_byte_for_byte(inn):
    doc = CatalogDocument.load(inn)
    assert doc.path == inn and doc.dumps() == INN
    doc.save()
    assert inn.read_text(encoding="utf-8") == INN


def test_responses_are_plain_data_with_locks_and_stale_flags(inn):
    lines = {line["id"]: line for line in CatalogDocument.load(inn).responses()}
    room, catalog = lines["ROOM"], Catalog.load(inn)
    assert list(lines) == ["GREETING", "ROOM", "FALLBACK"]
    assert room["line"] == 24 and room["text"].startswith("A room is {price}") and room["tags"] == ["trade"]
    assert room["lock"] == catalog["ROOM"].lock and room["state"] == "approved" and room["approved"]
    assert room["slots"]["price"]["currency"] == "silver" and room["character"] == "Mara"
    assert room["approval"] is None and room["audio"] == "audio/en/room.ogg" and not room["audio_stale"]
    assert set(room["translations"]) == {"de", "fr"}
    assert room["translations"]["de"] == {"text": "Ein Zimmer kostet {price} die Nacht. Mit Frühstück.",
                                          "audio": None, "source_lock": None, "missing": False,
                                          "stale": False, "audio_stale": False}


def test_set_text_changes_one_line_and_keeps_comments(inn):
    doc = CatalogDocument.load(inn)
    doc.set("ROOM", "when", "the guest wants to stay the night")
    assert changed_lines(INN, doc.dumps()) == [("-", 'when = "the guest asks for a room"'),
                                               ("+", 'when = "the guest wants to stay the night"')]
    assert "# the first thing a guest hears" in doc.dumps() and "# Said whenever anything fails." in doc.dumps()


def test_changing_the_source_marks_legacy_translations_and_audio_as_made_from_before(inn):
    doc = CatalogDocument.load(inn)
    old_lock = doc.response("GREETING")["lock"]
    doc.set("GREETING", "text", "Welcome to the Crossroads, friend.")
    line = doc.response("GREETING")
    assert line["translations"]["de"]["source_lock"] == old_lock and line["translations"]["de"]["stale"]
    assert line["translations"]["fr"]["stale"] and line["audio_stale"]
    catalog = doc.catalog()
    assert catalog["GREETING"].stale_locales == ("de", "fr") and catalog["GREETING"].audio_stale("en")


def test_set_a_translation_records_the_source_lock(inn):
    doc = CatalogDocument.load(inn)
    lock = doc.response("ROOM")["lock"]
    doc.set("ROOM", "text", "Une chambre: {price} la nuit.", locale="fr")
    assert changed_lines(INN, doc.dumps()) == [
        ("-", 'text = "Une chambre coûte {price} la nuit. Petit-déjeuner compris."'),
        ("+", 'text = "Une chambre: {price} la nuit."'), ("+", f'source_lock = "{lock}"')]
    assert not doc.response("ROOM")["translations"]["fr"]["stale"]


def test_set_a_missing_translation_adds_its_table_to_the_line(inn):
    doc = CatalogDocument.load(inn)
    doc.set("GREETING", "text", None, locale="fr")
    assert doc.response("GREETING")["translations"]["fr"]["missing"]
    assert changed_lines(INN, doc.dumps()) == [("-", "[response.locales.fr]"),
                                               ("-", 'text = "Bienvenue au Carrefour, voyageur."')]
    doc.set("GREETING", "text", "Salut.", locale="fr")
    assert doc.catalog()["GREETING"].text_for("fr") == "Salut."
    assert doc.dumps().count("[response.locales.fr]") == 3


def test_set_audio_and_tags(inn):
    doc = CatalogDocument.load(inn)
    doc.set("ROOM", "tags", ["trade", "rooms"])
    doc.set("GREETING", "audio", "audio/en/greeting-2.ogg")
    assert changed_lines(INN, doc.dumps()) == [
        ("-", 'audio = "audio/en/greeting.ogg"'), ("+", 'audio = "audio/en/greeting-2.ogg"'),
        ("+", f'audio_lock = "{doc.response("GREETING")["lock"]}"'),
        ("-", 'tags = ["trade"]'), ("+", 'tags = ["trade", "rooms"]')]
    assert doc.catalog()["GREETING"].audio_for("en") == "audio/en/greeting-2.ogg"


def test_set_slots_edits_declarations_in_place_and_makes_translations_stale(inn):
    doc = CatalogDocument.load(inn)
    doc.set("ROOM", "slots", {"price": {"type": "int", "min": 1, "max": 50}})
    changes = changed_lines(INN, doc.dumps())
    assert ("-", 'price = { type = "money", currency = "silver", places = 0, min = 1, max = 50 }') in changes
    assert ("+", 'price = { type = "int", min = 1, max = 50 }') in changes
    room = doc.catalog()["ROOM"]
    assert room.slots["price"].describe() == "int 1..50"
    assert room.stale_locales == ("de", "fr") and room.audio_for("en") is None


def test_problems_validate_the_text_in_memory_with_line_numbers(inn):
    doc = CatalogDocument.load(inn)
    doc.set("ROOM", "text", "A room is {prize} a night.")
    errors = [p for p in doc.problems() if p.kind == "error"]
    assert errors and str(errors[0].location).startswith(f"{inn}:25:19")
    assert "placeholder {prize} has no slot" in errors[0].message
    with pytest.raises(CatalogErrors):
        doc.catalog()
    assert inn.read_text(encoding="utf-8") == INN  # nothing written before save()


def test_add_appends_a_line_and_retire_marks_one(inn):
    doc = CatalogDocument.load(inn)
    doc.add({"id": "STABLE", "text": "The stable is {cost}.", "when": "the guest has a horse",
             "slots": {"cost": {"type": "int", "min": 0}}, "translations": {"de": "Der Stall kostet {cost}."}})
    doc.retire("GREETING")
    catalog = doc.catalog()
    assert list(catalog.responses)[-1] == "STABLE" and catalog["STABLE"].status == "draft"
    assert catalog["STABLE"].locales["de"].source_lock == catalog["STABLE"].lock
    assert catalog["GREETING"].status == "retired"
    assert doc.dumps().startswith(INN.replace('status = "approved"\ncharacter = "Mara"\naudio = "audio/en/greeting',
                                              'status = "retired"\ncharacter = "Mara"\naudio = "audio/en/greeting'))


@pytest.mark.parametrize("call, message", [
    (lambda d: d.set("NOPE", "text", "x"), "has no response NOPE"),
    (lambda d: d.set("ROOM", "approval", {}), "cannot set 'approval'"),
    (lambda d: d.set("ROOM", "status", "done"), "bad status 'done'"),
    (lambda d: d.set("ROOM", "tags", "trade"), "tags of ROOM must be a list"),
    (lambda d: d.set("ROOM", "when", "x", locale="de"), "a locale has no field 'when'"),
    (lambda d: d.add({"id": "ROOM", "text": "x"}), "has a response ROOM already"),
    (lambda d: d.add({"id": "NEW", "text": "x", "colour": "red"}), "unknown keys for a response: colour"),
    (lambda d: d.add({"id": "NEW", "text": "x", "approval": {}}), "unknown keys for a response: approval"),
])
def test_bad_edits_are_refused_clearly(inn, call, message):
    doc = CatalogDocument.load(inn)
    with pytest.raises(CatalogError, match=message):
        call(doc)
    assert doc.dumps() == INN


def test_a_file_that_is_not_toml_is_refused_with_its_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('[catalog]\nid = "x\n', encoding="utf-8")
    with pytest.raises(CatalogErrors, match=r"broken.toml:2:\d+: error: TOML syntax"):
        CatalogDocument.load(path)


def test_setting_a_value_it_already_has_changes_nothing(inn):
    doc = CatalogDocument.load(inn)
    doc.set("GREETING", "text", "Welcome to the Crossroads, traveller.")
    doc.set("ROOM", "tags", ["trade"])
    assert doc.dumps() == INN
