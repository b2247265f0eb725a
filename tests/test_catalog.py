"""Catalogs: loading, every load-time error with its place and hint, hashes, locks, rendering."""

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogue.catalog import Catalog, CatalogErrors, CatalogWarning, catalog_problems, load_catalog
from dialogue.errors import CatalogError

from .conftest import FIXTURES, ROOT

BROKEN = FIXTURES / "broken"
SHOP = FIXTURES / "policies" / "shop.toml"

HEAD = """\
[catalog]
id = "shop"
version = "1.0.0"
locale = "en"
locales = ["en", "de"]
fallback = "FALLBACK"

[[response]]
id = "FALLBACK"
text = "Sorry, I did not understand."
status = "approved"
[response.locales.de]
text = "Entschuldigung."
"""


def catalog(body: str = "", head: str = HEAD) -> Catalog:
    return Catalog.from_text(head + textwrap.dedent(body), path="<string>")


def problems(body: str, head: str = HEAD) -> list[CatalogError]:
    return catalog_problems(head + textwrap.dedent(body), path="<test>")


def errors(body: str, head: str = HEAD) -> list[CatalogError]:
    return [p for p in problems(body, head) if p.kind == "error"]


OFFER = """
[[response]]
id = "OFFER"
text = "A fine {item} for {price}. Yours if you want it."
when = "the player asks to buy an item they can afford"
status = "approved"
tags = ["trade"]
examples = ["I'd like that sword"]
audio = "audio/en/offer.ogg"
character = "Hilda"
[response.slots]
item = { type = "choice", options = ["sword", "shield"], labels = { de = { sword = "Schwert" } } }
price = { type = "money", currency = "gold", places = 0, min = 0, max = 10000 }
[response.locales.de]
text = "Ein feines {item} für {price}."
audio = "audio/de/offer.ogg"
"""


# --- every broken fixture: file:line:column, the entry, the message and the hint -------------------

CASES = [
    ("toml_syntax", 15, 29, "GREETING", "TOML syntax: Illegal character", 'use """ for text over several'),
    ("duplicate_id", 19, 1, "GREETING", "duplicate id GREETING", "the first GREETING is on line 14"),
    ("unknown_key", 16, 1, "GREETING", "unknown key 'wen' in [[response]]", "did you mean 'when'?"),
    ("missing_key", 13, 1, "GREETING", "missing required key 'text'", 'text = "'),
    ("missing_catalog_key", 2, 1, None, "missing required key 'version' in [catalog]", 'version = "1.0.0"'),
    ("placeholder_no_slot", 15, 27, "OFFER", "placeholder {prise} has no slot", "declared: item, price"),
    ("bad_placeholder", 15, 16, "OFFER", "bad placeholder {0}", "write {name} for a slot"),
    ("slot_unused", 19, 1, "OFFER", "slot item is declared but not used", "use {item} in the text"),
    ("slot_unknown_type", 18, 18, "WEIGHT", "unknown slot type 'float'", "did you mean 'decimal'?"),
    ("slot_unknown_key", 18, 27, "PRICE", "unknown key 'curency' in slot price", "did you mean 'currency'?"),
    ("slot_min_above_max", 18, 31, "COUNT", "int slot has min 10 above max 1", "swap them"),
    ("slot_empty_choice", 18, 39, "COLOUR", "choice slot has no options", "options = ["),
    ("slot_duplicate_options", 18, 39, "COLOUR", "lists 'red' more than once", "each option once"),
    ("bad_regex", 18, 37, "ORDER_NOTED", "bad regex '[A-Z]{2}-([0-9]{4}': missing )", "Python regular expression"),
    ("fallback_missing", 6, 12, None, "fallback 'FALLBACK' is not a response", "did you mean 'FALBACK'?"),
    ("fallback_with_slots", 12, 1, "FALLBACK", "the fallback FALLBACK has slots", "remove its slots"),
    ("fallback_not_approved", 11, 10, "FALLBACK", "FALLBACK is draft, not approved", 'status = "approved"'),
    ("locale_placeholders", 24, 23, "OFFER", "missing {price}; unknown {preis}", "placeholders: item, price"),
    ("locale_not_declared", 15, 1, "FALLBACK", "locale 'fr' is not in the catalog's locales", "now: en, de"),
    ("bad_id", 14, 6, "greeting-line", "bad id 'greeting-line'", '"GREETING_LINE"'),
    ("bad_status", 17, 10, "GREETING", "bad status 'aproved'", "did you mean 'approved'?"),
    ("required_unknown", 18, 19, "DISCLOSURE", "required_before names REFUNDS", "did you mean 'REFUND'?"),
]


def test_every_broken_fixture_has_a_case():
    assert sorted(p.stem for p in BROKEN.glob("*.toml")) == sorted(c[0] for c in CASES)


@pytest.mark.parametrize("name,line,column,entry,message,hint", CASES, ids=[c[0] for c in CASES])
def test_broken_fixture_is_refused_with_place_entry_and_hint(name, line, column, entry, message, hint):
    path = BROKEN / f"{name}.toml"
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    err = caught.value
    assert (err.location.file, err.location.line, err.location.column) == (str(path), line, column)
    assert err.entry == entry and message in err.message and hint in err.hint
    assert str(err).startswith(f"{path}:{line}:{column}: error: ")
    assert f"{line:>5} | " in str(err) and "^" in str(err)


def test_the_caret_covers_the_fault():
    err = catalog_problems(BROKEN / "placeholder_no_slot.toml")[0]
    assert err.location.span == len("{prise}")
    assert str(err).splitlines()[2].endswith(" " * 26 + "^" * 7)


def test_lint_sees_the_same_errors_as_load():
    for path in BROKEN.glob("*.toml"):
        found = [p for p in catalog_problems(path) if p.kind == "error"]
        with pytest.raises(CatalogErrors) as caught:
            load_catalog(path)
        assert [str(e) for e in caught.value.errors] == [str(e) for e in found]


# --- all errors at once -------------------------------------------------------------------------


def test_every_error_is_collected_and_listed():
    with pytest.raises(CatalogErrors) as caught:
        catalog("""
            [[response]]
            id = "bad id"
            text = "Hi {who}."
            status = "aproved"
            colour = "red"
        """)
    messages = [e.message for e in caught.value.errors]
    assert len(messages) == 4, messages
    assert [e.location.line for e in caught.value.errors] == sorted(e.location.line for e in caught.value.errors)
    text = str(caught.value)
    assert all(m in text for m in messages) and text.endswith("4 errors")
    assert caught.value.message == messages[0]


def test_a_bad_slot_does_not_hide_the_others():
    found = errors("""
        [[response]]
        id = "A"
        text = "{x} {y} {z}"
        when = "w"
        [response.slots]
        x = { type = "int", min = 3, max = 1 }
        y = { type = "nope" }
        z = { type = "int" }
        unused = { type = "int" }
    """)
    assert [e.message.split(":")[0] for e in found] == [
        "int slot has min 3 above max 1", "unknown slot type 'nope' for slot y",
        "slot unused is declared but not used in the text"]


def test_pydantic_errors_never_leak():
    found = errors("""
        [[response]]
        id = 5
        text = ["not", "text"]
        tags = "trade"
        slots = 3
    """)
    assert all(type(e) is CatalogError for e in found) and len(found) == 4
    assert any("tags" in e.message and 'tags = ["trade"]' in e.hint for e in found)


@pytest.mark.parametrize("source,message", [
    ("", "no [catalog] table"),
    ("catalog = 3\n", "catalog must be a table"),
    (HEAD + "[[responses]]\nid = 'X'\n", "unknown table 'responses'"),
    (HEAD.replace("[[response]]", "[response]").replace("[response.locales.de]", "[response.locales.de]\n"),
     "response must be an array of tables"),
    (HEAD.replace('id = "shop"', 'id = "Shop Catalog"'), "bad catalog id 'Shop Catalog'"),
    (HEAD.replace('["en", "de"]', '["de"]'), "the default locale 'en' is not in locales"),
    (HEAD.replace('["en", "de"]', '["en", "de", "de"]'), "locales lists de more than once"),
    (HEAD + '[response.locales.en]\ntext = "x"\n', "locale 'en' is the default locale"),
    (HEAD + '[[response]]\nid = "A"\ntext = "{a-b}"\nwhen = "w"\n[response.slots]\n"a-b" = { type = "int" }\n',
     "slot name 'a-b' is not an identifier"),
    (HEAD + '[[response]]\nid = "A"\ntext = "{a}"\nwhen = "w"\n[response.slots]\na = { type = "choice", '
     'options = ["x"], labels = { fr = { x = "y" } } }\n', "labels for locale 'fr'"),
    (HEAD + '[[response]]\nid = "A"\ntext = "{a}"\n[response.slots]\na = "int"\n', "slot a must be a table"),
    (HEAD + '[[response]]\nid = "A"\ntext = "{a}"\n[response.slots]\na = { min = 1 }\n', "slot a has no type"),
    (HEAD + '[[response]]\nid = "A"\ntext = "x"\nrequired_before = ["A"]\n', "A is required before itself"),
    (HEAD + '[[response]]\nid = "A"\ntext = "x"\n[response.locales.de]\ntext = "y"\nvoice = "z"\n',
     "unknown key 'voice' in [response.locales.de]"),
    (HEAD + 'x = 1\nx = 2\n', "TOML syntax: Cannot overwrite a value"),
    (HEAD + 'text = "unclosed', "TOML syntax: Unterminated string"),
])
def test_more_catalog_errors(source, message):
    found = [p for p in catalog_problems(source, path="t.toml") if p.kind == "error"]
    match = [e for e in found if message in e.message]
    assert match, found
    assert match[0].hint and match[0].location.file == "t.toml" and match[0].location.line


def test_a_toml_error_names_the_response_it_is_in():
    err = errors('[[response]]\nid = "BROKEN"\ntext = "x"\nwhen = = 3\n')[0]
    assert err.entry == "BROKEN" and err.location.line == 17 and err.location.column == 8


def test_placeholder_in_a_multi_line_text_is_located():
    err = errors('[[response]]\nid = "LONG"\nwhen = "w"\ntext = """\nFirst line,\nthen {oops} here."""\n')[0]
    assert (err.location.line, err.location.column, err.location.span) == (19, 6, 6)
    assert err.location.source_line == "then {oops} here.\"\"\""


def test_an_approved_line_with_an_empty_text_is_an_error():
    found = errors('[[response]]\nid = "HUSH"\ntext = ""\nwhen = "w"\nstatus = "approved"\n'
                   '[response.locales.de]\ntext = " "\n')
    assert [(e.entry, e.message, e.location.line, e.location.column) for e in found] == [
        ("HUSH", "HUSH is approved but its text is empty", 16, 8),
        ("HUSH", "HUSH is approved but its de text is empty", 20, 8)]
    assert 'status = "draft"' in found[0].hint
    assert not errors('[[response]]\nid = "HUSH"\ntext = ""\nwhen = "w"\n')  # a draft may be empty
    with pytest.raises(CatalogErrors, match="HUSH is approved but its text is empty"):
        catalog('[[response]]\nid = "HUSH"\ntext = ""\nwhen = "w"\nstatus = "approved"\n')


def test_a_fault_after_escapes_is_located_in_the_source():
    err = errors('[[response]]\nid = "Q"\nwhen = "w"\ntext = "say \\"{{hi}}\\" to {who}"\n')[0]
    assert err.location.column == len('text = "say \\"{{hi}}\\" to ') + 1


def test_an_unreadable_file_is_one_error(tmp_path):
    found = catalog_problems(tmp_path / "missing.toml")
    assert len(found) == 1 and "cannot read catalog" in found[0].message
    with pytest.raises(CatalogError, match="cannot read catalog"):
        load_catalog(tmp_path / "missing.toml")


# --- warnings -----------------------------------------------------------------------------------


def test_warnings_do_not_stop_loading(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(HEAD + '[[response]]\nid = "QUIET"\ntext = "Hm."\naudio = "hm.ogg"\n')
    found = catalog_problems(path)
    assert all(isinstance(p, CatalogWarning) and p.kind == "warning" for p in found)
    assert sorted(p.message for p in found) == [
        "audio file 'hm.ogg' does not exist", "response QUIET has no `when`",
        "response QUIET has no de text; the default text is used"]
    assert str(found[0]).startswith(f"{path}:15:1: warning: ") and ": warning: " in str(found[0])
    assert len(load_catalog(path).warnings) == 3


def test_the_fallback_and_approved_lines_without_examples_are_not_warned():
    assert problems(OFFER) == []


# --- the example catalogs -----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((ROOT / "dialogue" / "examples" / "catalogs").glob("*.toml")) + [SHOP],
                         ids=lambda p: p.name)
def test_shipped_catalogs_load_cleanly(path):
    cat = load_catalog(path)
    assert cat.path == Path(path) and cat.fallback in cat and cat.emittable(cat.fallback)
    assert [p for p in catalog_problems(path) if p.kind == "error"] == []


def test_catalog_api():
    cat = catalog(OFFER)
    assert (cat.id, cat.version, cat.locale, cat.fallback) == ("shop", "1.0.0", "en", "FALLBACK")
    assert cat.locales == ("en", "de")
    assert cat.path is None and cat.source.startswith("[catalog]") and len(cat.hash) == 64
    assert list(cat.responses) == ["FALLBACK", "OFFER"] and [r.id for r in cat] == ["FALLBACK", "OFFER"]
    assert len(cat) == 2 and "OFFER" in cat and "NOPE" not in cat and cat["OFFER"] is cat.responses["OFFER"]
    assert cat.line_of("OFFER") == 16 and cat.line_of("NOPE") is None


def test_response_api():
    r = catalog(OFFER)["OFFER"]
    assert r.text.startswith("A fine {item}") and r.when.startswith("the player") and r.status == "approved"
    assert r.tags == ("trade",) and r.examples == ("I'd like that sword",) and r.character == "Hilda"
    assert list(r.slots) == ["item", "price"] and r.slots["price"].describe() == "money in gold, 0..10000"
    assert r.placeholders == ("item", "price") and len(r.lock) == 16
    assert r.text_for("en") == r.text and r.text_for("de") == "Ein feines {item} für {price}."
    assert r.text_for("fr") is None
    assert r.audio_for(None) == "audio/en/offer.ogg" and r.audio_for("de") == "audio/de/offer.ogg"
    assert r.locales["de"].audio == "audio/de/offer.ogg"


def test_unknown_id_is_a_catalog_error_with_a_suggestion():
    with pytest.raises(CatalogError, match="has no response OFER") as caught:
        catalog(OFFER)["OFER"]
    assert caught.value.hint == "did you mean 'OFFER'?"


def test_emittable_by_status():
    cat = catalog("""
        [[response]]
        id = "D"
        text = "draft"
        [[response]]
        id = "R"
        text = "retired"
        status = "retired"
    """)
    assert cat.emittable("FALLBACK") and not cat.emittable("D") and cat.emittable("D", allow_drafts=True)
    assert not cat.emittable("R", allow_drafts=True) and not cat.emittable("NOPE")


def test_required_before_is_read_backwards():
    cat = catalog("""
        [[response]]
        id = "DISCLOSURE"
        text = "d"
        required_before = ["REFUND"]
        [[response]]
        id = "REFUND"
        text = "r"
    """)
    assert cat.required_before("REFUND") == ("DISCLOSURE",) and cat.required_before("DISCLOSURE") == ()


# --- rendering ----------------------------------------------------------------------------------


def test_render_validates_and_fills():
    cat = catalog(OFFER)
    assert cat.render("OFFER", {"item": "sword", "price": 50}) == "A fine sword for 50 gold. Yours if you want it."
    assert cat.render("OFFER", {"item": "sword", "price": 50}, "de") == "Ein feines Schwert für 50 gold."
    assert cat.render("FALLBACK", {}) == "Sorry, I did not understand." == cat.render("FALLBACK")


def test_a_missing_translation_falls_back_to_the_default_text_and_labels():
    cat = catalog('[[response]]\nid = "HI"\ntext = "Hi, {item}!"\nwhen = "w"\n[response.slots]\n'
                  'item = { type = "choice", options = ["sword"], labels = { de = { sword = "Schwert" } } }\n')
    assert cat.render("HI", {"item": "sword"}, "de") == "Hi, sword!" and cat["HI"].text_for("de") is None


def test_render_in_an_unknown_locale_is_refused():
    with pytest.raises(CatalogError, match="has no locale 'fr'"):
        catalog(OFFER).render("FALLBACK", {}, "fr")


def test_check_slots_normalizes():
    values = catalog(OFFER).check_slots("OFFER", {"item": "shield", "price": "20"})
    assert values == {"item": "shield", "price": Decimal(20)} and list(values) == ["item", "price"]


@pytest.mark.parametrize("slots,message,hint", [
    ({"item": "sword"}, "wrong slots for OFFER: missing price", "OFFER takes exactly: item (one of sword|shield)"),
    ({"item": "sword", "price": 1, "qty": 2}, "unknown qty", "price (money in gold, 0..10000)"),
    ({"item": "axe", "price": 1}, "slot item of OFFER: choice slot: 'axe' is not one", "item is one of sword|shield"),
    ({"item": "sword", "price": 10001}, "money slot: 10001 is above the maximum 10000", "price is money in gold"),
])
def test_bad_slot_values_name_the_id_slot_and_problem(slots, message, hint):
    with pytest.raises(CatalogError) as caught:
        catalog(OFFER).render("OFFER", slots)
    assert message in caught.value.message and hint in caught.value.hint and caught.value.entry == "OFFER"


def test_a_bad_slot_value_points_at_its_declaration():
    with pytest.raises(CatalogError) as caught:
        catalog(OFFER).check_slots("OFFER", {"item": "axe", "price": 1})
    assert caught.value.location.line == 25 and caught.value.location.source_line.startswith("item = ")


INJECTIONS = ["{0.__class__.__mro__}", "{price}", "{item}", "{{", "}", "%s %(x)s $x ${x}"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_slot_values_are_printed_literally(value):
    cat = catalog('[[response]]\nid = "ECHO"\ntext = "You said {said} for {price}."\nwhen = "w"\n'
                  '[response.slots]\nsaid = { type = "pattern", regex = ".*", max_length = 64 }\n'
                  'price = { type = "int" }\n[response.locales.de]\ntext = "{said}, {price}."\n')
    assert cat.render("ECHO", {"said": value, "price": 3}) == f"You said {value} for 3."
    assert cat.render("ECHO", {"said": value, "price": 3}, "de") == f"{value}, 3."


def test_literal_braces_in_the_text():
    cat = catalog('[[response]]\nid = "B"\ntext = "{{x}} is {x} }}{{"\nwhen = "w"\n[response.slots]\n'
                  'x = { type = "int" }\n')
    assert cat.render("B", {"x": 1}) == "{x} is 1 }{"


# --- hashes and locks ---------------------------------------------------------------------------


def test_hash_ignores_comments_and_whitespace():
    cat = catalog(OFFER)
    noisy = "# a comment\n\n" + (HEAD + OFFER).replace(" = ", "   =   ").replace("\n[[", "\n\n# note\n[[")
    assert Catalog.from_text(noisy).hash == cat.hash


def test_hash_changes_with_content():
    base = catalog(OFFER).hash
    assert catalog(OFFER.replace("Yours", "Yours,")).hash != base
    assert catalog(OFFER.replace('"trade"', '"shop"')).hash != base
    assert Catalog.from_text((HEAD + OFFER).replace('"1.0.0"', '"1.0.1"')).hash != base


def test_from_text_round_trips():
    original = load_catalog(SHOP)
    again = Catalog.from_text(original.source, path=str(SHOP))
    assert again.hash == original.hash and list(again.responses) == list(original.responses)
    assert [r.lock for r in again] == [r.lock for r in original] and again.path == SHOP


def test_lock_changes_on_a_one_character_edit_of_the_line():
    lock = catalog(OFFER)["OFFER"].lock
    assert catalog(OFFER.replace("Yours if", "Yours, if"))["OFFER"].lock != lock
    assert catalog(OFFER.replace("max = 10000", "max = 10001"))["OFFER"].lock != lock


def test_lock_ignores_status_tags_when_and_examples():
    lock = catalog(OFFER)["OFFER"].lock
    edited = (OFFER.replace('status = "approved"', 'status = "retired"').replace('"trade"', '"x"')
              .replace("can afford", "can pay for").replace("that sword", "the sword"))
    assert catalog(edited)["OFFER"].lock == lock


# --- robustness ---------------------------------------------------------------------------------


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_any_edit_loads_or_fails_with_catalog_errors_only(data):
    source = HEAD + OFFER
    at = data.draw(st.integers(0, len(source)))
    cut = data.draw(st.integers(0, 4))
    insert = data.draw(st.sampled_from(["", "{", "}", '"', "[", "]", "=", "\n", "#", ".", "x", "{x}"]))
    edited = source[:at] + insert + source[at + cut:]
    try:
        Catalog.from_text(edited)
    except CatalogError as exc:
        assert exc.errors and all(isinstance(e, CatalogError) for e in exc.errors)
        for e in exc.errors:
            assert e.location is None or e.location.line is None or 1 <= e.location.line <= edited.count("\n") + 1
    for p in catalog_problems(edited, path="x.toml"):
        assert isinstance(p, CatalogError) and p.hint
