"""Hostile catalogs are refused with FILE:LINE errors in bounded time; asset paths stay in the catalog's folder."""

import os
from pathlib import Path

import pytest

from dialogue.catalog import Catalog, catalog_problems, load_catalog
from dialogue.errors import CatalogError

from .bounded import finishes

HEAD = """\
[catalog]
id = "deep"
version = "1"
locale = "en"
fallback = "FALLBACK"

[[response]]
id = "FALLBACK"
text = "Sorry."
status = "approved"

[[response]]
id = "HELLO"
text = "Hello."
status = "approved"
"""
LINE = HEAD.count("\n") + 1  # the first line after HEAD


def refused(text: str, tmp_path: Path | None = None) -> CatalogError:
    path = "deep.toml"
    if tmp_path is not None:
        path = tmp_path / "deep.toml"
        path.write_text(text)
    with pytest.raises(CatalogError) as info:
        finishes(lambda: Catalog.from_text(text, path=str(path)) if tmp_path is None else load_catalog(path))
    return info.value


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_inline_tables_nested_deep_are_a_located_error(depth):
    text = HEAD + "[response.slots]\nx = " + "{ a = " * depth + "1" + " }" * depth + "\n"
    error = refused(text)
    assert error.location.file == "deep.toml" and error.location.line == LINE + 1
    assert "more than 32 tables and arrays nested" in error.message


def test_arrays_nested_deep_are_a_located_error():
    error = refused(HEAD + "tags = " + "[" * 5000 + "]" * 5000 + "\n")
    assert error.location.line == LINE and "nested" in error.message


def test_nesting_over_many_lines_is_a_located_error():
    text = HEAD + "tags = [\n" + "[\n" * 1000 + "]\n" * 1000 + "]\n"
    error = refused(text)
    assert error.location.line == LINE + 32 and "nested" in error.message


def test_brackets_inside_strings_do_not_count():
    text = HEAD.replace('text = "Hello."', 'text = "Hello ' + "[{{" * 100 + '"')
    assert Catalog.from_text(text, path="deep.toml")["HELLO"].text.startswith("Hello [{")


def test_a_header_of_five_thousand_parts_is_a_located_error():
    error = refused(HEAD + "[" + ".".join(["a"] * 5000) + "]\nx = 1\n")
    assert error.location.line == LINE and "dotted parts" in error.message


def test_an_unknown_dotted_table_is_located():
    error = refused(HEAD + "[a.b]\nx = 1\n")
    assert error.location.line == LINE and "unknown table 'a'" in error.message


def test_a_huge_repeat_count_is_a_located_error():
    text = HEAD + '[response.slots]\n' + 'x = { type = "pattern", regex = "a{0,4294967295}", max_length = 5 }\n'
    text = text.replace('text = "Hello."', 'text = "Hello {x}."')
    error = refused(text)
    assert error.location.line == LINE + 1 and "too large" in error.message


def test_lint_reports_them_in_bounded_time(tmp_path):
    text = HEAD + "[response.slots]\nx = " + "{ a = " * 100_000 + "1" + " }" * 100_000 + "\n"
    problems = finishes(lambda: catalog_problems(text, path="deep.toml"))
    assert [(p.kind, p.location.line) for p in problems] == [("error", LINE + 1)]


@pytest.mark.parametrize("audio, problem", [
    ("/etc/passwd", "is absolute"),
    ("../secret.ogg", "leaves the catalog's folder"),
    ("audio/../../secret.ogg", "leaves the catalog's folder"),
    ("..\\\\secret.ogg", "leaves the catalog's folder"),
    ("C:/Windows/win.ini", "is absolute"),
])
@pytest.mark.parametrize("where", ["response", "locale"])
def test_an_asset_path_outside_the_catalog_folder_is_a_load_error(audio, problem, where, tmp_path):
    if where == "response":
        text = HEAD.replace('text = "Hello."', f'text = "Hello."\naudio = "{audio}"')
        line = HEAD.splitlines().index('text = "Hello."') + 2
    else:
        text = HEAD.replace('locale = "en"', 'locale = "en"\nlocales = ["en", "de"]') + \
            f'[response.locales.de]\ntext = "Hallo."\naudio = "{audio}"\n'
        line = LINE + 3
    error = refused(text, tmp_path)
    assert error.location.file == str(tmp_path / "deep.toml") and error.location.line == line
    assert problem in error.message and error.entry == "HELLO"


def test_an_asset_link_out_of_the_catalog_folder_is_a_load_error(tmp_path):
    (tmp_path / "audio").mkdir()
    os.symlink("/etc/passwd", tmp_path / "audio" / "hello.ogg")
    error = refused(HEAD.replace('text = "Hello."', 'text = "Hello."\naudio = "audio/hello.ogg"'), tmp_path)
    assert "through a link" in error.message


def test_an_asset_inside_the_catalog_folder_loads(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "hello.ogg").write_bytes(b"OggS")
    path = tmp_path / "deep.toml"
    path.write_text(HEAD.replace('text = "Hello."', 'text = "Hello."\naudio = "audio/./hello.ogg"'))
    assert load_catalog(path)["HELLO"].audio_for("en") == "audio/./hello.ogg"


def test_the_error_shows_a_window_of_a_very_long_line():
    text = HEAD + "[response.slots]\nx = " + "{ a = " * 100_000 + "1" + " }" * 100_000 + "\n"
    error = refused(text)
    excerpt = error.location.excerpt()
    assert len(excerpt) < 600 and excerpt.count("^") >= 1
    shown, caret = excerpt.splitlines()
    assert shown[caret.index("^")] == "{"  # the caret still points at the brace past the bound
