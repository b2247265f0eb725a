"""`dialogue lint`: folders, tests files, each problem once, FILE:LINE everywhere, JSON and colour."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys

from dialogue.cli.testing import tests_files as files_test_runs

from ..conftest import FIXTURES, ROOT
from .conftest import dialogue

SHOP_CATALOG = (FIXTURES / "policies" / "shop.toml").as_posix()


def policy_file(folder, name: str, body: str):
    path = folder / f"{name}.py"
    path.write_text("from dialogue import Policy, reply\n"
                    f"policy = Policy({name!r}, catalog={SHOP_CATALOG!r})\n" + body, encoding="utf-8")
    return path


def test_lint_takes_a_folder_as_test_does(shop_folder):
    (shop_folder / "helpers.py").write_text("TAX = 0.2\n", encoding="utf-8")  # no Policy: not linted
    (shop_folder / "test_shop.py").write_text('SOURCE = """\npolicy = Policy("x", catalog="x.toml")\n"""\n'
                                              "raise SystemExit('never imported')\n", encoding="utf-8")
    (shop_folder / "heldout.toml").write_text("[[case]]\nmessage = 'hi'\n", encoding="utf-8")  # not *.tests.toml
    (shop_folder / "notes.toml").write_text("[tool]\nx = 1\n", encoding="utf-8")  # no [catalog]: not linted
    out = dialogue("lint", "--no-overlap", "--json", ".", cwd=shop_folder)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["files"] == ["shop.py", "shop.tests.toml", "shop.toml"]
    assert [p.name for p in files_test_runs([str(shop_folder)])] == ["shop.tests.toml"]  # what `test` runs
    assert re.search(r"^0 errors, \d+ warnings in 3 files$", dialogue("lint", "--no-overlap", ".",
                                                                        cwd=shop_folder).stdout, re.M)


def test_a_folder_with_nothing_to_lint_is_an_error(tmp_path):
    out = dialogue("lint", str(tmp_path))
    assert out.returncode == 1 and "no policies, catalogs, trees or tests files" in out.stderr


def test_lint_checks_a_tests_file_as_a_tests_file(shop_folder):
    tests = shop_folder / "shop.tests.toml"
    out = dialogue("lint", "--no-overlap", str(tests))
    assert out.returncode == 0 and "[catalog]" not in out.stdout, out.stdout
    tests.write_text(tests.read_text().replace('reply = "GREETING"', 'reply = "GREETNG"'), encoding="utf-8")
    out = dialogue("lint", "--no-overlap", "shop.tests.toml", cwd=shop_folder)
    assert out.returncode == 1 and "[catalog]" not in out.stdout
    assert re.search(r"^shop\.tests\.toml:5:\d+: error: .*GREETNG", out.stdout, re.M), out.stdout


def test_a_catalog_linted_with_its_policy_is_reported_once(tmp_path):
    catalog = tmp_path / "shop.toml"
    catalog.write_text((FIXTURES / "policies" / "shop.toml").read_text().replace('id = "OFFER"', 'id = "GREETING"'),
                       encoding="utf-8")
    shutil.copy(FIXTURES / "policies" / "shop.py", tmp_path)
    out = dialogue("lint", "--no-overlap", "shop.py", "shop.toml", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout.count("duplicate") == 1, out.stdout
    assert out.stdout.rstrip().endswith("1 error, 0 warnings in 2 files")
    report = json.loads(dialogue("lint", "--no-overlap", "--json", str(tmp_path), cwd=tmp_path).stdout)
    assert report["errors"] == 1 and [p["file"] for p in report["problems"]] == ["shop.toml"]


def test_pick_list_and_computed_extract_errors_point_at_the_line(tmp_path):
    policy_file(tmp_path, "pick", "ITEMS = []\n@policy.decide\ndef decide(said, state):\n"
                "    item = said.pick('which item?', ITEMS)\n    return reply('GREETING')\n")
    policy_file(tmp_path, "extract", "@policy.decide\ndef decide(said, state):\n"
                "    n = said.extract('the order number', '[0-9]+', examples=['12'])\n"
                "    if int(n) > 3:\n        return reply('GREETING')\n    return reply('GREETING')\n")
    policy_file(tmp_path, "pattern", "@policy.decide\ndef decide(said, state):\n"
                "    n = said.extract('the order number', '[0-9' + str(state), examples=['12'])\n"
                "    return reply('GREETING')\n")
    out = dialogue("lint", "--no-overlap", "pick.py", "extract.py", "pattern.py", cwd=tmp_path)
    assert out.returncode == 1
    assert "pick.py:6:12: error: said.pick('which item?') needs a non-empty list" in out.stdout, out.stdout
    assert "    6 |     item = said.pick('which item?', ITEMS)\n      |            ^^^^" in out.stdout
    assert "extract.py:6:8: error: the extracted value 'the order number' is used in a computation" in out.stdout
    assert "pattern.py:5:9: error: said.extract('the order number') has a bad pattern" in out.stdout


def test_example_hints_fit_each_kind_of_question(tmp_path):
    policy_file(tmp_path, "ask", "@policy.decide\ndef decide(said, state):\n"
                "    if said('the customer wants to buy'):\n"
                "        return reply('OFFER', item=said.pick('which item?', ['sword', 'shield']), price=5)\n"
                "    return reply('ORDER_NOTED', order=said.extract('the order number', '[A-Z]{2}-[0-9]{4}'))\n")
    out = dialogue("lint", "--no-overlap", "--json", "ask.py", cwd=tmp_path)
    hints = {p["message"]: p["hint"] for p in json.loads(out.stdout)["problems"] if "no examples" in p["message"]}
    assert "mean yes" in hints["said('the customer wants to buy') has no examples"]
    pick = hints["said.pick('which item?') has no examples"]
    assert "mean yes" not in pick and "for each option" in pick
    extract = hints["said.extract('the order number') has no examples"]
    assert "mean yes" not in extract and "contain the order number" in extract


def test_json_carries_the_same_findings_as_the_text(tmp_path):
    broken = sorted(str(p) for p in (FIXTURES / "broken").glob("*.toml"))[:6]
    text = dialogue("lint", *broken)
    report = json.loads(dialogue("lint", "--json", *broken).stdout)
    assert report["schema"] == "dialogue.lint/1" and len(report["files"]) == 6
    assert report["errors"] >= 6 and report["errors"] + report["warnings"] == len(report["problems"])
    for p in report["problems"]:
        where = f"{p['file']}:{p['line']}" + (f":{p['column']}" if p["column"] else "")
        assert f"{where}: {p['kind']}: {p['message']}" in text.stdout
        assert p["hint"] is None or f"hint: {p['hint']}" in text.stdout
    assert re.search(rf"^{report['errors']} errors?, {report['warnings']} warnings? in 6 files$", text.stdout, re.M)


def lint_on_a_terminal(env: dict) -> str:
    """lint's output when stdout is a terminal (a pseudo-terminal)."""
    main, child = pty.openpty()
    environ = {**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run([sys.executable, "-m", "dialogue", "lint", str(FIXTURES / "broken" / "bad_id.toml")],
                          stdout=child, stderr=subprocess.DEVNULL, cwd=ROOT, env=environ, timeout=60)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert done.returncode == 1
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_unless_no_color():
    assert "\033[1;31merror:\033[0m" in lint_on_a_terminal({"TERM": "xterm"})
    assert "\033[" not in lint_on_a_terminal({"TERM": "xterm", "NO_COLOR": "1"})
    piped = dialogue("lint", str(FIXTURES / "broken" / "bad_id.toml"))
    assert "error:" in piped.stdout and "\033[" not in piped.stdout
