"""`dialogue tree`: unknown state fields refused, --json, and tree-file errors in the file's words."""

from __future__ import annotations

import pytest

from dialogue import load_policy
from dialogue.errors import PolicyError

from ..conftest import ROOT, SHOP
from .conftest import dialogue

CATALOG = (ROOT / "catalogs" / "card_block.toml").as_posix()


def test_an_unknown_state_field_is_an_error_naming_it_and_the_known_ones():
    out = dialogue("tree", str(SHOP), "--state", '{"golds": 1}')
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "has no field 'golds' (did you mean 'gold'?)" in out.stderr
    assert "fields of Shop: gold, bought, drafts" in out.stderr
    with pytest.raises(PolicyError, match="no field 'colour'"):
        load_policy(SHOP).new_state({"gold": 3, "colour": "red"})
