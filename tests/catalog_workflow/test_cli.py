"""`dialogue catalog ...`: output, files written and exit codes."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from dialogue import Catalog
from dialogue.cli import main

from ..conftest import ROOT
from .conftest import INN


def cli(capsys, *args):
    code = main(["catalog", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_show_lists_lines_with_state_and_notes(inn, capsys):
    code, out, _ = cli(capsys, "show", inn)
    assert code == 0 and out.splitlines()[0].split() == ["ID", "STATUS", "TEXT"]
    assert "ROOM      approved  A room is {price} a night. Breakfast included." in out
    assert out.rstrip().endswith("3 lines")


def test_show_in_a_locale_with_a_status_filter(inn, capsys):
    cli(capsys, "approve", inn, "ROOM", "--by", "j.doe")
    text = inn.read_text(encoding="utf-8").replace("A room is {price} a night.", "A room: {price} a night.")
    inn.write_text(text, encoding="utf-8")
    code, out, _ = cli(capsys, "show", inn, "--locale", "de", "--status", "changed")
    assert code == 0 and "ROOM  changed  Ein Zimmer kostet {price}" in out
    assert "[changed since j.doe approved it; audio stale]" not in out and "1 line in state changed" in out
    code, _, err = cli(capsys, "show", inn, "--locale", "it")
    assert code == 1 and "has no locale 'it'" in err


def test_approve_writes_the_record_and_reports_it(inn, capsys):
    code, out, _ = cli(capsys, "approve", inn, "GREETING", "ROOM", "--by", "j.doe")
    catalog = Catalog.load(inn)
    assert code == 0 and out == (f"approved GREETING (lock {catalog['GREETING'].lock}) by j.doe\n"
                                 f"approved ROOM (lock {catalog['ROOM'].lock}) by j.doe\n")
    assert catalog["ROOM"].approval.by == "j.doe"


def test_approve_an_unknown_line_exits_1_and_writes_nothing(inn, capsys):
    code, out, err = cli(capsys, "approve", inn, "ROOMS", "--by", "j.doe")
    assert code == 1 and "has no response ROOMS" in err and "did you mean ROOM?" in err
    assert inn.read_text(encoding="utf-8") == INN


def test_export_import_and_check(inn, capsys):
    target = inn.parent / "de.po"
    code, _, err = cli(capsys, "export", inn, "--format", "po", "--locale", "de", "-o", target)
    assert code == 0 and target.exists() and f"wrote {target}" in err
    target.write_text(target.read_text(encoding="utf-8").replace("Hm? Sag das noch mal.", "Hm? Noch mal?"),
                      encoding="utf-8")
    code, out, _ = cli(capsys, "import", inn, target, "--dry-run")
    assert code == 0 and "would change 1 entry" in out and inn.read_text(encoding="utf-8") == INN
    code, out, _ = cli(capsys, "import", inn, target)
    assert code == 0 and "FALLBACK de text: 'Hm? Noch mal?'" in out and "changed 1 entry" in out
    code, out, _ = cli(capsys, "check", inn)
    assert code == 0 and "every locale complete and current" in out


def test_export_writes_to_stdout(inn, capsys):
    code, out, _ = cli(capsys, "export", inn, "--for", "voice")
    assert code == 0 and out.startswith("id,locale,character,text,context,slots,status,audio,stale\n")


def test_a_refused_import_exits_1_with_file_and_line(inn, capsys):
    target = inn.parent / "de.csv"
    cli(capsys, "export", inn, "--locale", "de", "-o", target)
    target.write_text(target.read_text(encoding="utf-8").replace("kostet {price}", "kostet {preis}"),
                      encoding="utf-8")
    code, _, err = cli(capsys, "import", inn, target)
    assert code == 1 and f"{target}:3: error: de text of ROOM has other placeholders" in err
    assert inn.read_text(encoding="utf-8") == INN


def test_check_exits_1_listing_each_gap(inn, capsys):
    (inn.parent / "audio" / "en" / "room.ogg").unlink()
    code, out, _ = cli(capsys, "check", inn)
    assert code == 1 and f"{inn}:24: error: the en recording of ROOM, 'audio/en/room.ogg', does not exist" in out
    assert out.rstrip().endswith(f"1 problem in {inn}")


def test_diff_of_two_files(inn, capsys):
    new = inn.parent / "new.toml"
    new.write_text(INN.replace("Say that again.", "Say that once more."), encoding="utf-8")
    code, out, _ = cli(capsys, "diff", inn, new)
    assert code == 0 and "~ FALLBACK\n    text: Hm? Say that [-again-]{+once more+}." in out
    assert "stale: audio, de translation, fr translation" in out
    code, out, _ = cli(capsys, "diff", inn, inn)
    assert code == 0 and out == "no changes\n"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_diff_against_a_git_revision(inn, capsys, monkeypatch):
    for args in (["init", "-q"], ["add", "inn.toml"], ["commit", "-qm", "inn"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=inn.parent,
                       check=True, capture_output=True)
    inn.write_text(INN.replace("Breakfast included.", "Breakfast extra."), encoding="utf-8")
    monkeypatch.chdir(inn.parent)
    code, out, _ = cli(capsys, "diff", "HEAD:inn.toml", "inn.toml")
    assert code == 0 and "Breakfast [-included-]{+extra+}." in out and out.startswith("--- HEAD:inn.toml")
    code, _, err = cli(capsys, "diff", "HEAD~5:inn.toml", "inn.toml")
    assert code == 1 and "git cannot read HEAD~5:inn.toml" in err


@pytest.mark.parametrize("args, message", [
    (["show", "missing.toml"], "cannot read catalog"),
    (["check", "missing.toml"], "missing.toml: no such file"),
    (["export", "missing.toml"], "cannot read catalog"),
    (["diff", "missing.toml", "other.toml"], "cannot read missing.toml"),
])
def test_errors_are_one_clear_message_and_exit_1(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, *args)
    assert code == 1 and message in err and "Traceback" not in err


def test_a_broken_catalog_is_shown_compiler_style_without_a_traceback(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(INN.replace('id = "ROOM"', 'id = "room"'), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "dialogue", "catalog", "approve", str(path), "room",
                          "--by", "x"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"{path}:24:6: error: bad id 'room'" in out.stderr


@pytest.mark.parametrize("action", ["show", "diff", "approve", "export", "import", "check"])
def test_every_action_has_help_and_a_readme_row(action, capsys):
    with pytest.raises(SystemExit) as info:
        main(["catalog", action, "--help"])
    assert info.value.code == 0 and len(capsys.readouterr().out) > 200
    assert f"dialogue catalog {action}" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_catalog_without_an_action_prints_help(capsys):
    assert main(["catalog"]) == 2 and "show" in capsys.readouterr().out


def test_check_takes_many_catalogs_as_lint_does(inn, tmp_path_factory, capsys):
    other = tmp_path_factory.mktemp("other") / "inn.toml"
    other.write_text(INN, encoding="utf-8")  # its recordings are not on disk
    code, out, _ = cli(capsys, "check", inn, other)
    assert code == 1 and str(inn) not in out
    assert f"{other}:24: error: the en recording of ROOM, 'audio/en/room.ogg', does not exist" in out
    assert out.rstrip().endswith(" in 2 catalogs")
    code, out, _ = cli(capsys, "check", inn, inn)
    assert code == 0 and "2 catalogs: every locale complete and current" in out
