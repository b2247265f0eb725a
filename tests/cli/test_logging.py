"""The library logs through `logging` (no prints); `dialogue -v` shows the log on stderr."""

from __future__ import annotations

import ast
import logging
import re

from dialogue.cli import main

from ..conftest import ROOT, SHOP
from .conftest import dialogue

# Output a person asked for: the manual backend lists the replies to pick from.
USER_FACING = {"dialogue/backends/manual.py"}


def test_the_library_prints_nothing_outside_the_cli():
    printing = []
    for path in sorted((ROOT / "dialogue").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name.startswith("dialogue/cli/") or name in USER_FACING:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                printing.append(f"{name}:{node.lineno}")
    assert printing == []


def test_verbose_shows_the_librarys_log(shop_folder):
    quiet = dialogue("test", "--backend", "scripted", ".", cwd=shop_folder)
    loud = dialogue("-v", "test", "--backend", "scripted", ".", cwd=shop_folder)
    assert "INFO" not in quiet.stderr
    assert "dialogue: INFO: loaded policy 'shop' from" in loud.stderr
    assert re.search(r"dialogue: INFO: session \S+ turn 0: \S+.* \(\d+ ms\)", loud.stderr)
    assert "INFO" not in loud.stdout  # the log goes to stderr: stdout stays the command's output


def test_each_v_lowers_the_level(capsys):
    logger = logging.getLogger("dialogue")
    for flags, level in (([], logging.WARNING), (["-v"], logging.INFO), (["-vv"], logging.DEBUG)):
        assert main([*flags, "tree", str(SHOP)]) == 0
        assert logger.level == level
    assert "dialogue: DEBUG: loaded catalog 'shop'" in capsys.readouterr().err
    main(["tree", str(SHOP)])
    assert "loaded policy" not in capsys.readouterr().err
