"""State fields: a field the state model does not declare is a misspelling, except in a stored
session continued on a newer policy that dropped it."""

from __future__ import annotations

import shutil

import pytest

from dialogue import Engine, ScriptedBackend, load_policy
from dialogue.errors import PolicyError

from .conftest import SHOP


def test_a_misspelt_field_is_refused_wherever_a_state_is_made(shop):
    with pytest.raises(PolicyError, match=r"no field 'golds' \(did you mean 'gold'\?\)") as info:
        shop.new_state({"golds": 5})
    assert info.value.hint == "fields of Shop: gold, bought, drafts"
    engine = Engine(shop, backend=ScriptedBackend())
    with pytest.raises(PolicyError, match="no field 'golds'"):
        engine.session("s", state={"golds": 5})
    assert shop.new_state({"gold": 5}).gold == 5


def test_a_session_continued_on_a_policy_without_a_field_drops_it(tmp_path):
    for name in ("shop.py", "shop.toml"):
        shutil.copy(SHOP.parent / name, tmp_path / name)
    policy, db = tmp_path / "shop.py", tmp_path / "d.db"
    old = Engine(load_policy(policy), backend=ScriptedBackend(["GREETING"]), store=db)
    old.session("s", state={"gold": 7}).say("hi")
    old.close()
    source = policy.read_text(encoding="utf-8")
    policy.write_text(source.replace("    drafts: bool = False\n", "").replace("if state.drafts:", "if False:")
                      .replace(', {"drafts": True}', ""), encoding="utf-8")
    new = Engine(load_policy(policy), backend=ScriptedBackend(["GREETING"]), store=db, on_change="continue")
    session = new.session("s")
    assert session.state.model_dump() == {"gold": 7, "bought": []}
    assert session.say("hi again").reply.id == "GREETING"
    new.close()
