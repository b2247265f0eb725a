"""`dialogue lint`: folders, tests files, each problem once, FILE:LINE everywhere, JSON and colour."""

from __future__ import annotations

from ..conftest import FIXTURES
from .conftest import dialogue

SHOP_CATALOG = (FIXTURES / "policies" / "shop.toml").as_posix()


def policy_file(folder, name: str, body: str):
    path = folder / f"{name}.py"
    path.write_text("from dialogue import Policy, reply\n"
                    f"policy = Policy({name!r}, catalog={SHOP_CATALOG!r})\n" + body, encoding="utf-8")
    return path


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
