"""Approval by lock: who approved which text; a changed line is not sent until approved again."""

from __future__ import annotations

import pytest

from dialogue import Catalog, Engine, ScriptedBackend, load_policy
from dialogue.authoring import CatalogDocument
from dialogue.catalog import CatalogErrors, catalog_problems
from dialogue.errors import CatalogError

from ..conftest import ROOT
from .conftest import INN, changed_lines

AT = "2025-05-01T09:30:00Z"


def test_approve_records_who_approved_which_lock_in_the_line(inn):
    doc = CatalogDocument.load(inn)
    doc.set("ROOM", "status", "draft")
    records = doc.approve(["ROOM"], by="j.doe", at=AT)
    lock = Catalog.from_text(doc.dumps())["ROOM"].lock
    assert records == [{"id": "ROOM", "lock": lock, "by": "j.doe", "at": AT,
                        "text": "A room is {price} a night. Breakfast included."}]
    assert changed_lines(INN, doc.dumps()) == [
        ("+", f'approval = {{ by = "j.doe", lock = "{lock}", at = "{AT}" }}')]
    doc.save()
    room = Catalog.load(inn)["ROOM"]
    assert room.status == "approved" and room.approval == ("j.doe", lock, AT)


def test_a_one_character_change_withdraws_the_approval(inn):
    doc = CatalogDocument.load(inn)
    doc.approve(["GREETING"], by="j.doe", at=AT)
    doc.set("GREETING", "text", "Welcome to the Crossroads, traveller!")
    line = doc.response("GREETING")
    assert line["status"] == "approved" and line["state"] == "changed" and not line["approved"]
    assert line["approval_stale"]
    greeting = doc.catalog()["GREETING"]
    assert greeting.status == "draft" and greeting.declared_status == "approved"
    assert not doc.catalog().emittable("GREETING")
    assert doc.catalog().emittable("GREETING", allow_drafts=True)
    warning = next(p for p in doc.problems() if "GREETING is not approved" in p.message)
    assert warning.kind == "warning" and warning.location.line == 15
    assert "changed after j.doe approved it" in warning.message
    doc.approve(["GREETING"], by="a.smith", at=AT)
    assert doc.catalog()["GREETING"].status == "approved"


def test_the_engine_refuses_a_line_changed_after_approval(inn, inn_policy):
    doc = CatalogDocument.load(inn)
    doc.approve(["GREETING", "ROOM", "FALLBACK"], by="j.doe", at=AT)
    doc.save()
    turn = Engine(load_policy(inn_policy), backend=ScriptedBackend(["GREETING"])).session("s").say("hello")
    assert turn.reply.id == "GREETING" and not turn.trace.fallback
    doc.set("GREETING", "text", "Welcome to the Crossroads, traveler.")
    doc.save()
    policy = load_policy(inn_policy)
    turn = Engine(policy, backend=ScriptedBackend(["GREETING", "GREETING"], strict=False)).session("s").say("hello")
    assert turn.reply.id == "FALLBACK" and turn.trace.fallback and turn.text == "Hm? Say that again."
    turn = Engine(policy, backend=ScriptedBackend(["GREETING"]), allow_drafts=True).session("s").say("hello")
    assert turn.reply.id == "GREETING" and turn.text == "Welcome to the Crossroads, traveler."


def test_require_approval_wants_a_record_for_every_approved_line(inn):
    text = INN.replace('voice = ["en"]', 'voice = ["en"]\nrequire_approval = true')
    with pytest.raises(CatalogErrors, match="the fallback FALLBACK is not approved: it has no approval record"):
        Catalog.from_text(text)
    doc = CatalogDocument(text, inn)
    doc.approve(["FALLBACK"], by="j.doe", at=AT)
    catalog = doc.catalog()
    assert catalog["FALLBACK"].status == "approved" and catalog["GREETING"].status == "draft"
    assert doc.response("GREETING")["state"] == "unrecorded"


def test_a_fallback_changed_after_approval_is_a_load_error(inn):
    doc = CatalogDocument.load(inn)
    doc.approve(["FALLBACK"], by="j.doe", at=AT)
    doc.set("FALLBACK", "text", "Hm? Say that once more.")
    errors = [p for p in doc.problems() if p.kind == "error"]
    assert [e.message.split(":")[0] for e in errors] == ["the fallback FALLBACK is not approved"]
    assert "dialogue catalog approve CATALOG FALLBACK --by NAME" in errors[0].hint


@pytest.mark.parametrize("ids, by, message", [
    (["ROOM", "NOPE"], "j.doe", "has no response NOPE"),
    (["ROOM"], " ", "an approval needs a name"),
    ([], "j.doe", "no line to approve"),
])
def test_approve_is_all_or_nothing(inn, ids, by, message):
    doc = CatalogDocument.load(inn)
    with pytest.raises(CatalogError, match=message):
        doc.approve(ids, by=by)
    assert doc.dumps() == INN


def test_approve_refuses_retired_and_broken_lines(inn):
    doc = CatalogDocument.load(inn)
    doc.retire("GREETING")
    with pytest.raises(CatalogError, match="GREETING is retired"):
        doc.approve(["GREETING"], by="j.doe")
    doc.set("ROOM", "text", "A room is {prize}.")
    with pytest.raises(CatalogErrors, match="placeholder {prize} has no slot"):
        doc.approve(["ROOM"], by="j.doe")


def test_bad_approval_records_are_reported_with_their_line(inn):
    text = INN.replace('status = "approved"\ncharacter = "Mara"\ntags',
                       'status = "approved"\napproval = { by = "j.doe", lock = "xyz" }\ncharacter = "Mara"\ntags')
    problems = [p for p in catalog_problems(text, path="inn.toml") if p.kind == "error"]
    assert len(problems) == 1 and problems[0].location.line == 28 and "lock" in problems[0].message


@pytest.mark.parametrize("path", sorted((ROOT / "dialogue" / "examples" / "catalogs").glob("*.toml")) + [
    ROOT / "tests" / "fixtures" / "policies" / "shop.toml"], ids=lambda p: p.name)
def test_catalogs_without_records_keep_their_approved_lines(path):
    catalog = Catalog.load(path)
    assert all(r.status == r.declared_status for r in catalog)
    assert not any("not approved" in w.message for w in catalog.warnings)


def test_the_catalog_hash_leaves_out_switches_at_their_defaults(inn):
    explicit = INN.replace('voice = ["en"]', 'voice = ["en"]\nlocale_fallback = true\nrequire_approval = false')
    assert Catalog.from_text(explicit).hash == Catalog.from_text(INN).hash
    assert Catalog.from_text(INN.replace('voice = ["en"]', 'voice = ["en"]\nlocale_fallback = false')).hash != \
        Catalog.from_text(INN).hash
