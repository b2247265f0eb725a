"""Shared fixtures: paths of the example and fixture policies."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHOP = FIXTURES / "policies" / "shop.py"
EXAMPLES_DIR = ROOT / "dialogue" / "examples"
EXAMPLES = {name: EXAMPLES_DIR / "policies" / f"{name}.py" for name in ("blacksmith", "refunds")}


def copied_policy(folder: Path, name: str = "blacksmith") -> Path:
    """The example policies/NAME.py and catalogs/NAME.toml copied under `folder`, so files
    written beside the policy (examples, tests, cassettes) land there; the copied policy's path."""
    import shutil

    (folder / "policies").mkdir(exist_ok=True)
    (folder / "catalogs").mkdir(exist_ok=True)
    shutil.copy(EXAMPLES_DIR / "policies" / f"{name}.py", folder / "policies")
    shutil.copy(EXAMPLES_DIR / "catalogs" / f"{name}.toml", folder / "catalogs")
    return folder / "policies" / f"{name}.py"


@pytest.fixture(scope="session")
def shop():
    from dialogue import load_policy

    return load_policy(SHOP)
