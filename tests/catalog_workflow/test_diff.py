"""`diff_catalogs`: lines added, removed and changed by id, changed words marked, stale lists."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from dialogue.authoring import CatalogDocument, diff_catalogs, read_revision, word_diff
from dialogue.catalog import CatalogErrors
from dialogue.errors import CatalogError

from .conftest import INN


def test_word_diff_marks_only_the_changed_words():
    assert word_diff("A room is {price} a night.", "A room costs {price} per night.") == \
        "A room [-is-]{+costs+} {price} [-a-]{+per+} night."
    assert word_diff("same", "same") == "same"
    assert word_diff("a b", "a c", color=True) == "a \x1b[31mb\x1b[0m\x1b[32mc\x1b[0m"


def test_a_diff_lists_added_removed_and_changed_lines_and_what_went_stale(inn):
    doc = CatalogDocument(INN, inn)
    doc.set("ROOM", "text", "A room costs {price} a night. Breakfast included.")
    doc.set("ROOM", "text", "Une chambre coûte {price} la nuit.", locale="fr")
    doc.set("GREETING", "when", "the guest says hello")
    doc.add({"id": "STABLE", "text": "The stable is free."})
    doc.set("FALLBACK", "text", "Hm?")
    diff = diff_catalogs(INN, doc.dumps(), "old.toml", "new.toml")
    assert [r["id"] for r in diff.added] == ["STABLE"] and diff.removed == []
    assert [c.id for c in diff.changed] == ["GREETING", "ROOM", "FALLBACK"]
    room = diff.changed[1]
    assert room.stale == ["audio", "de translation"]
    text = diff.render()
    assert "    text: A room [-is-]{+costs+} {price} a night. Breakfast included." in text
    assert "    fr text: Une chambre coûte {price} la nuit.[- Petit-déjeuner compris.-]" in text
    assert "    stale: audio, de translation" in text
    assert "    stale: audio, de translation, fr translation" in text  # FALLBACK
    assert "+ STABLE: The stable is free." in text
    assert text.splitlines()[:2] == ["--- old.toml", "+++ new.toml"]
    assert text.endswith("1 added, 0 removed, 3 changed")


def test_a_removed_line_and_a_header_change(inn):
    doc = CatalogDocument(INN.replace('version = "1.0.0"', 'version = "1.1.0"'), inn)
    new = doc.dumps()
    start = new.index("[[response]]\nid = \"ROOM\"")
    new = new[:start] + new[new.index("# Said whenever"):]
    diff = diff_catalogs(INN, new)
    assert [r["id"] for r in diff.removed] == ["ROOM"] and diff.header == [("version", "1.0.0", "1.1.0")]
    assert "- ROOM: A room is {price}" in diff.render()
    assert '  [catalog] version: "1.0.0" -> "1.1.0"' in diff.render()


def test_no_change_is_empty(inn):
    assert diff_catalogs(INN, INN).empty


def test_a_version_that_is_not_toml_is_reported_with_its_line():
    with pytest.raises(CatalogErrors, match=r"new.toml:2:\d+: error: TOML syntax"):
        diff_catalogs(INN, '[catalog]\nid = "x\n', "old.toml", "new.toml")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_version_can_be_a_git_revision(inn, monkeypatch):
    def git(*args):
        subprocess.run(["git", *args], cwd=inn.parent, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "add", "inn.toml")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "inn")
    monkeypatch.chdir(inn.parent)
    assert read_revision("HEAD:inn.toml") == (INN, "HEAD:inn.toml")
    with pytest.raises(CatalogError, match="git cannot read HEAD:nope.toml"):
        read_revision("HEAD:nope.toml")
