"""`dialogue lint FOLDER`: the policies and catalogs in a folder, each problem printed once."""

from __future__ import annotations

from dialogue.cli import main

from .conftest import copied_policy


def test_lint_takes_a_folder_and_skips_what_is_not_a_policy_or_catalog(tmp_path, capsys):
    policy = copied_policy(tmp_path)
    (policy.parent / "notes.md").write_text("not linted\n")
    (policy.parent / "__pycache__").mkdir()
    (policy.parent / "__pycache__" / "stale.py").write_text("raise SystemExit\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.toml").write_text("broken = \n")
    assert main(["lint", "--no-overlap", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip().endswith("0 errors, 0 warnings in 2 files")


def test_a_catalog_error_is_printed_once_when_the_policy_and_its_catalog_are_linted(tmp_path, capsys):
    policy = copied_policy(tmp_path)
    catalog = tmp_path / "catalogs" / "blacksmith.toml"
    catalog.write_text(catalog.read_text().replace('id = "GREETING"\n', 'id = "GREETING"\ncolour = "red"\n', 1))
    assert main(["lint", "--no-overlap", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "colour" in out
    assert out.count(f"{catalog}:") == 1, out
    assert main(["lint", "--no-overlap", str(policy), str(catalog)]) == 1
    assert capsys.readouterr().out.count(f"{catalog}:") == 1


def test_a_folder_without_policies_or_catalogs_is_an_error(tmp_path, capsys):
    (tmp_path / "README.md").write_text("# nothing to lint\n")
    assert main(["lint", str(tmp_path)]) == 1
    assert "no policies, catalogs, trees or tests files in this folder" in capsys.readouterr().err
