"""Shared fixtures: paths of the example and fixture policies."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHOP = FIXTURES / "policies" / "shop.py"
EXAMPLES = {name: ROOT / "policies" / f"{name}.py" for name in ("blacksmith", "refunds")}


@pytest.fixture(scope="session")
def shop():
    from dialogue import load_policy

    return load_policy(SHOP)
