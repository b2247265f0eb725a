"""`dialogue tree`: unknown state fields refused, --json, and tree-file errors in the file's words."""

from __future__ import annotations

import json
import shutil

import pytest

from dialogue import load_policy
from dialogue.errors import PolicyError

from ..conftest import EXAMPLES_DIR, SHOP
from .conftest import dialogue

CATALOG = (EXAMPLES_DIR / "catalogs" / "card_block.toml").as_posix()


def test_an_unknown_state_field_is_an_error_naming_it_and_the_known_ones():
    out = dialogue("tree", str(SHOP), "--state", '{"golds": 1}')
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "has no field 'golds' (did you mean 'gold'?)" in out.stderr
    assert "fields of Shop: gold, bought, drafts" in out.stderr
    with pytest.raises(PolicyError, match="no field 'colour'"):
        load_policy(SHOP).new_state({"gold": 3, "colour": "red"})


def test_json_carries_what_the_text_shows():
    text = dialogue("tree", str(SHOP), "--state", '{"gold": 10}')
    out = dialogue("tree", str(SHOP), "--state", '{"gold": 10}', "--json")
    assert out.returncode == 0, out.stderr
    tree = json.loads(out.stdout)
    assert tree["schema"] == "dialogue.tree/1" and tree["policy"] == "shop" and tree["state"]["gold"] == 10
    main = tree["nodes"]["main"]
    assert f"{len(main['paths'])} paths, {len(main['reachable'])} reachable replies" in text.stdout
    for reply in main["reachable"]:
        assert f"→ {reply}" in text.stdout
    questions = {step["question"] for path in main["paths"] for step in path["steps"] if step["kind"] == "ask"}
    assert questions and all(f"said: {q}?" in text.stdout for q in questions)
    assert {type(step["answer"]) for path in main["paths"] for step in path["steps"] if step["kind"] == "ask"} \
        == {bool}


def tree_error(tmp_path, body: str) -> PolicyError:
    path = tmp_path / "t.tree.toml"
    path.write_text(f"[tree]\nname = 't'\ncatalog = {CATALOG!r}\n\n" + body, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    return info.value


@pytest.mark.parametrize("body, message, line, column, hint", [
    ("[[node]]\nid = 'a'\n[[node.branch]]\nsay = 'WELCOME'\neffect = 'x'\n",
     "unknown key 'effect' in [[node.branch]] #1 of [[node]] 'a'", 9, 1, "it takes: if, examples, state, say"),
    ("[[node]]\nid = 'a'\nbranches = []\n[[node.branch]]\nsay = 'WELCOME'\n",
     "unknown key 'branches' in [[node]] 'a'", 7, 1, "did you mean 'branch'?"),
    ("[[node]]\nid = 'a'\n[[node.branch]]\nif = 'x?'\n",
     "[[node.branch]] #1 of [[node]] 'a' has no `say`", 7, 1, 'say = "ID"'),
    ("[[node]]\nid = 'a'\n[[node.branch]]\nsay = 5\n",
     "`say` in [[node.branch]] #1 of [[node]] 'a' must be a catalog id", 8, 7, 'say = "ID"'),
    ("[[node]]\nid = 'Big Node'\n[[node.branch]]\nsay = 'WELCOME'\n",
     "`id` in [[node]] 'Big Node' must be a lower_snake name", 6, 6, None),
    ("[state]\ngold = 1\n[[node]]\nid = 'a'\n[[node.branch]]\nsay = 'WELCOME'\n[[effect]]\non = 'WELCOME'\n"
     "add = { glod = 1 }\n", "[[effect]] on WELCOME changes 'glod'", 13, 9, "did you mean 'gold'?"),
    ("[state]\ngold = 1\n[[node]]\nid = 'a'\n[[node.branch]]\nstate = { golds = 1 }\nsay = 'WELCOME'\n"
     "[[node.branch]]\nsay = 'WELCOME'\n", "branch tests state field 'golds'", 10, 11, "did you mean 'gold'?"),
])
def test_tree_file_errors_speak_the_files_words_at_file_line_column(tmp_path, body, message, line, column, hint):
    err = tree_error(tmp_path, body)
    assert message in err.message and "Extra inputs" not in str(err) and "node.0" not in str(err)
    assert (err.location.file.endswith("t.tree.toml"), err.location.line, err.location.column) == \
        (True, line, column)
    assert hint is None or hint in err.hint
    assert "^" in str(err)  # a caret under the fault


ONE_NODE = "[[node]]\nid = 'a'\n[[node.branch]]\nsay = 'WELCOME'\n"


@pytest.mark.parametrize("body, message, line, column, hint", [
    ("[[node]]\nid = 'a'\n[[node.branch]]\nsay = 'WELCOME'\nend = 'yes'\n",
     "`end` in [[node.branch]] #1 of [[node]] 'a' must be true or false", 9, 7, None),
    ("[state]\ngold = 10\n" + ONE_NODE + "[[effect]]\non = 'WELCOME'\nadd = { gold = 'x' }\n",
     "`gold` in [[effect]] on WELCOME must be a number", 13, 16, None),
    ("[state]\ngold = 10\n" + ONE_NODE + "[[effect]]\non = 'WELCOME'\nset = { gold = 'lots' }\n",
     "[[effect]] on WELCOME sets gold = \"lots\", but gold is a whole number ([state] gold = 10)", 13, 16,
     "write a whole number"),
    ("[state]\nblocked = false\n" + ONE_NODE + "[[effect]]\non = 'WELCOME'\nadd = { blocked = 1 }\n",
     "[[effect]] on WELCOME adds to blocked, which is not a number ([state] blocked = false)", 13, 19,
     "change other fields with `set`"),
    ("[state]\ngold = 10\n" + ONE_NODE + "[[effect]]\non = 'WELCOME'\nadd = { gold = 0.5 }\n",
     "[[effect]] on WELCOME adds 0.5 to gold, a whole number in [state]", 13, 16, None),
    ("[state]\ngold = 10\n[[node]]\nid = 'a'\n[[node.branch]]\nstate = { gold = 'none' }\nsay = 'WELCOME'\n"
     "[[node.branch]]\nsay = 'WELCOME'\n", "branch tests gold = \"none\", but gold is a whole number", 10, 18, None),
    (ONE_NODE + "[[effect]]\non = 'WELCOM'\nset = {}\n",
     "[[effect]] on WELCOM: catalog 'card_block' has no line WELCOM", 10, 6, "did you mean WELCOME?"),
    (ONE_NODE + "[[effect]]\non = 'WELCOME'\n[[effect]]\non = 'WELCOME'\n",
     "two [[effect]] tables on WELCOME", 12, 6, "merge them into the first, on line 9"),
])
def test_tree_values_are_checked_against_state_and_catalog_at_file_line_column(tmp_path, body, message, line,
                                                                              column, hint):
    err = tree_error(tmp_path, body)
    assert message in err.message
    assert (err.location.file.endswith("t.tree.toml"), err.location.line, err.location.column) == \
        (True, line, column)
    assert hint is None or hint in err.hint


def test_tree_samples_and_extraction_patterns_are_checked_where_they_are_written(tmp_path):
    path = tmp_path / "t.tree.toml"
    head = f"[tree]\nname = 't'\ncatalog = {CATALOG!r}\nsamples = [{{ glod = 1 }}]\n\n[state]\ngold = 10\n"
    path.write_text(head + ONE_NODE, encoding="utf-8")
    with pytest.raises(PolicyError, match="sample state #1 in \\[tree\\] samples sets 'glod'") as info:
        load_policy(path)
    assert info.value.location.line == 4 and "did you mean 'gold'?" in info.value.hint
    bad = "[[node]]\nid = 'a'\n[[node.branch]]\nsay = { id = 'WELCOME', slots = { n = { extract = 'n', " \
          "pattern = '(a)\\1' } } }\n"
    err = tree_error(tmp_path, bad)
    assert "the extraction pattern" in err.message and err.location.line == 8 and "said.extract" not in str(err)


def test_every_schema_fault_of_a_tree_is_reported(tmp_path):
    err = tree_error(tmp_path, "[[node]]\nid = 'a'\ncolour = 1\n[[node.branch]]\nsay = 'WELCOME'\nshade = 2\n")
    assert [e.location.line for e in err.errors] == [7, 10]


def test_lint_speaks_a_tree_s_words(tmp_path):
    from dialogue import load_policy

    folder = tmp_path / "policies"
    folder.mkdir()
    shutil.copytree(EXAMPLES_DIR / "catalogs", tmp_path / "catalogs")
    path = folder / "t.tree.toml"
    path.write_text('[tree]\nname = "t"\ncatalog = "../catalogs/card_block.toml"\n\n[[node]]\nid = "intake"\n\n'
                    '[[node.branch]]\nif = "the customer lost the card"\nsay = "ASK_IDENTITY"\n\n'
                    '[[node.branch]]\nsay = "WELCOME"\n')
    warnings = {w.message: w for w in load_policy(path).warnings}
    said = warnings['the branch if = "the customer lost the card" has no examples']
    assert said.location.line == 8 and 'examples = ["...", ...]' in said.hint and "said(" not in said.hint
    unreached = next(w for m, w in warnings.items() if "GOODBYE is never reached" in m)
    assert "[tree] samples" in unreached.hint
