"""`dialogue init`: a working policy to start from, which lint and test pass as written."""

from __future__ import annotations

import json

import pytest

from dialogue.cli import main

from .conftest import EXAMPLES_DIR

FILES = {"support": ["README.md", "helpdesk.cassette.json", "helpdesk.py", "helpdesk.tests.toml", "helpdesk.toml"],
         "npc": ["README.md", "shopkeeper.cassette.json", "shopkeeper.py", "shopkeeper.tests.toml",
                 "shopkeeper.toml"]}


@pytest.mark.parametrize("template", ["support", "npc"])
def test_init_writes_a_policy_that_lint_and_test_pass_at_once(template, tmp_path, capsys):
    folder = tmp_path / "shop"
    assert main(["init", str(folder), "--template", template]) == 0
    assert sorted(p.name for p in folder.iterdir()) == FILES[template]
    assert "README.md says what to edit" in capsys.readouterr().out
    assert main(["lint", str(folder)]) == 0
    assert capsys.readouterr().out.strip().endswith("0 errors, 0 warnings in 3 files")  # policy, catalog, tests file
    assert main(["test", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "ERROR" not in out and "passed (replay, prompted)" in out, out


@pytest.mark.parametrize("template", ["support", "npc"])
def test_the_template_has_a_fallback_an_unclear_line_and_a_cassette_that_needs_no_model(template, tmp_path):
    from dialogue import load_policy

    main(["init", str(tmp_path), "--template", template])
    policy = load_policy(next(tmp_path.glob("*.py")))
    assert policy.catalog.fallback in policy.catalog and policy.unclear in policy.catalog
    cassette = json.loads(next(tmp_path.glob("*.cassette.json")).read_text())
    assert cassette["understanding"] == "encoder"  # replayed on the encoder: no model loads
    tests = next(tmp_path.glob("*.tests.toml")).read_text()
    assert f'reply = "{policy.unclear}"' in tests  # a case shows the unclear line


def test_init_defaults_to_the_current_folder_and_the_support_template(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == FILES["support"]


def test_init_refuses_to_overwrite_and_force_overwrites(tmp_path, capsys):
    (tmp_path / "helpdesk.py").write_text("# mine\n")
    assert main(["init", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"not overwriting {tmp_path / 'helpdesk.py'}" in err and "--force" in err
    assert (tmp_path / "helpdesk.py").read_text() == "# mine\n"
    assert not (tmp_path / "helpdesk.toml").exists()  # nothing written when anything would be overwritten
    assert main(["init", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "helpdesk.py").read_text() == (EXAMPLES_DIR / "templates" / "support" / "helpdesk.py").read_text()


def test_init_into_a_file_is_an_error(tmp_path, capsys):
    (tmp_path / "shop").write_text("")
    assert main(["init", str(tmp_path / "shop")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_init_lists_its_templates_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["init", "--help"])
    out = capsys.readouterr().out
    assert "support" in out and "npc" in out and "--force" in out
