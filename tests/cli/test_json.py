"""`--json` on `test` and `sessions`: one document, the same results as the text."""

from __future__ import annotations

import json
import re

from ..conftest import ROOT
from ..store.helpers import make_turn, new_session, open_store, say
from .conftest import SHOP_TESTS, dialogue

TWO_CASES = SHOP_TESTS + '''
[[case]]
name = "too poor for a sword"
[[case.turn]]
user = "I want a sword"
reply = "TOO_POOR(item=sword, price=50)"
'''


def test_test_json_carries_the_same_results_as_the_text(shop_folder):
    (shop_folder / "shop.tests.toml").write_text(TWO_CASES, encoding="utf-8")
    text = dialogue("test", "--backend", "scripted", ".", cwd=shop_folder)
    out = dialogue("test", "--backend", "scripted", "--json", "--coverage", ".", cwd=shop_folder)
    assert out.returncode == text.returncode
    report = json.loads(out.stdout)  # the whole of stdout is one JSON document
    assert report["schema"] == "dialogue.test/1" and report["source"] == "live" and report["mode"] == "prompted"
    assert [c["name"] for c in report["cases"]] == ["greets", "too poor for a sword"]
    for case in report["cases"]:
        assert case["file"] == "shop.tests.toml"
        assert re.search(rf"^{re.escape(case['status'])}\s+{re.escape(case['name'])}$", text.stdout, re.M)
        assert case["mismatch"] is None or case["mismatch"].splitlines()[0] in text.stdout
    assert report["ok"] == (text.returncode == 0) and sum(report["counts"].values()) == 2
    assert report["coverage"]["responses"]["total"] >= 1


def test_sessions_json_lists_what_the_table_shows(tmp_path):
    db = tmp_path / "d.db"
    with open_store(db) as store:
        new_session(store, "s")
        new_session(store, "t")
        say(store, "s", 0)
        store.record_turn(make_turn("t", 0, reply_id="FAREWELL", text="Farewell."), {}, ended=True)
    table = dialogue("sessions", "--db", str(db))
    out = dialogue("sessions", "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["schema"] == "dialogue.sessions/1" and report["db"] == str(db)
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[1:]}
    assert {s["id"] for s in report["sessions"]} == set(rows) == {"s", "t"}
    for session in report["sessions"]:
        assert str(session["turns"]) == rows[session["id"]][3]
        assert ("yes" if session["ended"] else "no") == rows[session["id"]][-1]
        assert session["policy_hash"].startswith(rows[session["id"]][2])
    empty = tmp_path / "e.db"
    open_store(empty).close()
    assert json.loads(dialogue("sessions", "--db", str(empty), "--json").stdout)["sessions"] == []


def documented_keys() -> dict[str, set[str]]:
    """The keys the README's command-line section lists for each --json shape."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").replace("\n", " ")
    shapes = re.findall(r"`(dialogue\.\w+/1)` \(([^)]*)\)", text)
    return {name: set(re.findall(r"`(\w+)`", keys)) for name, keys in shapes}


def test_each_json_shape_is_documented_with_its_keys(shop_folder):
    documented = documented_keys()
    reports = [dialogue("lint", "--no-overlap", "--json", ".", cwd=shop_folder),
               dialogue("test", "--backend", "scripted", "--json", ".", cwd=shop_folder),
               dialogue("tree", "shop.py", "--json", cwd=shop_folder)]
    for out in reports:
        report = json.loads(out.stdout)
        assert set(report) - {"schema"} <= documented[report["schema"]], report["schema"]
    lint = json.loads(reports[0].stdout)
    assert lint["problems"] and set(lint["problems"][0]) <= documented["dialogue.lint/1"]
    assert {"db", "sessions"} == documented["dialogue.sessions/1"]
