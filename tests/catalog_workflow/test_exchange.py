"""Export for translators and voice studios, and import back: round trips change nothing else."""

from __future__ import annotations

import csv
import io

import pytest

from dialogue import Catalog
from dialogue.authoring import CatalogDocument, export_catalog, import_file
from dialogue.catalog import CatalogErrors
from dialogue.errors import CatalogError

from .conftest import INN, changed_lines

SUFFIX = {"csv": "csv", "xliff": "xliff", "po": "po"}
DE_ROOM = "Ein Zimmer kostet {price} die Nacht. Mit Frühstück."


def exported(inn, format, locale="de", purpose="translation"):
    path = inn.parent / f"out.{SUFFIX[format]}"
    path.write_text(export_catalog(Catalog.load(inn), purpose, format, locale), encoding="utf-8")
    return path


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (old, text)
    path.write_text(text.replace(old, new), encoding="utf-8")


def line_of(path, needle):
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def imported(inn, path):
    doc = CatalogDocument.load(inn)
    changes = import_file(doc, path)
    doc.save()
    return changes


@pytest.mark.parametrize("format", ["csv", "xliff", "po"])
def test_an_untouched_export_imports_as_no_change(inn, format):
    assert imported(inn, exported(inn, format)) == []
    assert inn.read_text(encoding="utf-8") == INN


@pytest.mark.parametrize("format", ["csv", "xliff", "po"])
def test_an_edited_translation_is_the_only_change(inn, format):
    path = exported(inn, format)
    edit(path, DE_ROOM, "Ein Zimmer: {price} pro Nacht. Mit Frühstück!")
    changes = imported(inn, path)
    assert [(c.id, c.locale, c.field, c.old, c.new) for c in changes] == [
        ("ROOM", "de", "text", DE_ROOM, "Ein Zimmer: {price} pro Nacht. Mit Frühstück!")]
    lock = Catalog.load(inn)["ROOM"].lock
    assert changed_lines(INN, inn.read_text(encoding="utf-8")) == [
        ("-", f'text = "{DE_ROOM}"'), ("+", 'text = "Ein Zimmer: {price} pro Nacht. Mit Frühstück!"'),
        ("+", f'source_lock = "{lock}"')]


def test_every_format_carries_context_slots_character_and_the_stale_flag(inn):
    doc = CatalogDocument.load(inn)
    doc.set("ROOM", "text", "A room is {price} a night.")
    doc.save()
    rows = list(csv.DictReader(io.StringIO(export_catalog(Catalog.load(inn), "translation", "csv"))))
    room = next(r for r in rows if r["id"] == "ROOM" and r["locale"] == "de")
    assert room == {"id": "ROOM", "locale": "de", "source": "A room is {price} a night.",
                    "context": "the guest asks for a room", "slots": "{price}: money in silver, 1..50",
                    "character": "Mara", "translation": DE_ROOM, "stale": "yes"}
    assert [r["locale"] for r in rows] == ["de"] * 3 + ["fr"] * 3
    po = export_catalog(Catalog.load(inn), "translation", "po", "de")
    assert '#, fuzzy\nmsgctxt "ROOM"' in po and "#. character: Mara" in po and '"Language: de\\n"' in po
    xliff = export_catalog(Catalog.load(inn), "translation", "xliff", "fr")
    assert 'target-language="fr"' in xliff and '<target state="needs-review-translation">' in xliff
    assert '<note from="slots">{price}: money in silver, 1..50</note>' in xliff


@pytest.mark.parametrize("format, stale, fresh", [
    ("csv", ",yes\n", ",\n"), ("po", '#, fuzzy\nmsgctxt "ROOM"', 'msgctxt "ROOM"'),
    ("xliff", 'state="needs-review-translation"', 'state="translated"')])
def test_clearing_the_stale_flag_confirms_a_translation(inn, format, stale, fresh):
    doc = CatalogDocument.load(inn)
    doc.set("ROOM", "text", "A room is {price} a night.  Breakfast included.")
    doc.save()
    path = exported(inn, format)
    assert imported(inn, path) == []  # still flagged: nothing confirmed
    assert Catalog.load(inn)["ROOM"].translation_stale("de")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(stale, fresh, 1), encoding="utf-8")
    assert [(c.id, c.locale) for c in imported(inn, path)] == [("ROOM", "de")]
    assert not Catalog.load(inn)["ROOM"].translation_stale("de")


@pytest.mark.parametrize("format", ["csv", "xliff", "po"])
@pytest.mark.parametrize("bad, message", [
    ("Ein Zimmer kostet die Nacht.", "missing {price}"),
    ("Ein Zimmer kostet {preis} die Nacht.", "missing {price}; unknown {preis}"),
    ("Ein Zimmer kostet {price die Nacht.", "unmatched '{' in text"),
])
def test_a_translation_with_other_placeholders_is_refused_with_file_and_line(inn, format, bad, message):
    path = exported(inn, format)
    edit(path, DE_ROOM, bad)
    line = line_of(path, bad if format != "po" else f'msgstr "{bad}')
    if format == "xliff":
        line = line_of(path, f">{bad}<")
    with pytest.raises(CatalogErrors) as info:
        import_file(CatalogDocument.load(inn), path)
    assert f"{path}:{line}: error: de text of ROOM" in str(info.value) and message in str(info.value)
    assert inn.read_text(encoding="utf-8") == INN


@pytest.mark.parametrize("format", ["csv", "xliff", "po"])
def test_a_file_that_changes_a_source_text_is_refused(inn, format):
    path = exported(inn, format)
    edit(path, "A room is {price} a night. Breakfast included.", "A room is {price} a night.")
    with pytest.raises(CatalogErrors, match=r"out\.\w+:\d+: error: the file changes the source text of ROOM"):
        import_file(CatalogDocument.load(inn), path)


def test_every_fault_is_listed_and_nothing_is_applied(inn):
    path = exported(inn, "csv")
    edit(path, "Hm? Sag das noch mal.", "Hm? {what}")
    edit(path, "ROOM,de", "ROOMS,de")
    edit(path, "Willkommen an der Wegkreuzung, Reisender.", "Willkommen!")
    with pytest.raises(CatalogErrors) as info:
        import_file(CatalogDocument.load(inn), path)
    assert [e.location.line for e in info.value.errors] == [3, 4]
    assert "has no response ROOMS" in info.value.errors[0].message and "did you mean ROOM?" in str(info.value)


def test_import_refuses_unknown_locales_and_unreadable_files(inn):
    path = exported(inn, "csv")
    edit(path, "GREETING,de", "GREETING,it")
    with pytest.raises(CatalogErrors, match="out.csv:2: error: cannot import 'it' translation into"):
        import_file(CatalogDocument.load(inn), path)
    path.write_text("name,text\nx,y\n", encoding="utf-8")
    with pytest.raises(CatalogErrors, match="out.csv:1: error: the csv has no column id, locale, source"):
        import_file(CatalogDocument.load(inn), path)
    (inn.parent / "out.xliff").write_text("<xliff><file>", encoding="utf-8")
    with pytest.raises(CatalogErrors, match="out.xliff:1:"):
        import_file(CatalogDocument.load(inn), inn.parent / "out.xliff")
    with pytest.raises(CatalogError, match="cannot tell the format"):
        import_file(CatalogDocument.load(inn), inn)


def test_po_strings_wrapped_by_an_editor_are_read_whole(inn):
    path = exported(inn, "po")
    edit(path, f'msgstr "{DE_ROOM}"', 'msgstr ""\n"Ein Zimmer kostet {price} \\"die\\" "\n"Nacht."')
    assert [c.new for c in imported(inn, path)] == ['Ein Zimmer kostet {price} "die" Nacht.']


def test_a_voice_script_round_trip_records_audio_and_its_lock(inn):
    path = exported(inn, "csv", locale=None, purpose="voice")
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [(r["id"], r["locale"], r["audio"]) for r in rows] == [
        ("GREETING", "en", "audio/en/greeting.ogg"), ("ROOM", "en", "audio/en/room.ogg"),
        ("FALLBACK", "en", "audio/en/fallback.ogg")]
    assert rows[1]["text"] == "A room is {price} a night. Breakfast included." and rows[1]["character"] == "Mara"
    assert imported(inn, path) == []
    edit(path, "audio/en/room.ogg", "audio/en/room-take2.ogg")
    assert [(c.id, c.field, c.new) for c in imported(inn, path)] == [("ROOM", "audio", "audio/en/room-take2.ogg")]
    lock = Catalog.load(inn)["ROOM"].lock
    assert changed_lines(INN, inn.read_text(encoding="utf-8")) == [
        ("-", 'audio = "audio/en/room.ogg"'), ("+", 'audio = "audio/en/room-take2.ogg"'),
        ("+", f'audio_lock = "{lock}"')]


@pytest.mark.parametrize("args, message", [
    (("voice", "po", None), "a voice script is exported as csv"),
    (("translation", "po", None), "a PO file holds one language"),
    (("translation", "csv", "en"), "no locale 'en' to translate into"),
    (("translation", "docx", None), "unknown export format 'docx'"),
])
def test_export_refuses_what_it_cannot_write(inn, args, message):
    with pytest.raises(CatalogError, match=message):
        export_catalog(Catalog.load(inn), *args)
