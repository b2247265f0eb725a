"""The README runs as written.

Every fenced block of README.md is checked in a scratch project that holds a copy of the
shipped examples (`dialogue/examples/`) and every block marked `<!-- file: PATH -->`,
written at PATH before anything runs:

- a ```python block marked as a file is loaded with `load_policy`; any other runs, in order
  with the other blocks of its section (top-level `await` is a syntax error, as in Python);
- a ```toml block loads with its loader: a catalog with the catalog loader, a tree with
  `load_policy`, a tests file with `load_test_file`; a ```json cassette with `Cassette`;
  each without a warning;
- the cheap local `dialogue` commands of ```sh blocks (init, lint, catalog, tree, test
  replayed, the store commands) run in order with the section's Python, and must succeed;
  the others (`pip`, `make`, a live or recording test run, chat, serve) are reported as
  skips by line, as is every block marked `<!-- not run: why -->` just before it;
- a block without a language is a diagram or a transcript, not code.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dialogue import load_catalog, load_policy
from dialogue.catalog import catalog_problems
from dialogue.cli.store import DEFAULT_DB
from dialogue.errors import PolicyError
from dialogue.testing import Cassette, load_test_file
from dialogue.tree import README_SECTION

from .conftest import EXAMPLES_DIR, ROOT

README = ROOT / "README.md"
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
MARK = re.compile(r"^\s*<!--\s*(file|not run):\s*(.*?)\s*-->\s*$")
COMMENT = re.compile(r"^\s*<!--.*-->\s*$")
HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$")
SHELLS = ("sh", "bash", "console", "shell")
# `dialogue` commands that are cheap and local; a test run that records or runs live is not
CHEAP = {"init", "lint", "tree", "test", "catalog", "sessions", "log", "export", "audit", "correct", "learn"}
LIVE_FLAGS = {"--record", "--live"}


@dataclass(frozen=True)
class Block:
    """One fenced block of the README: where it is, its language, text and marks."""

    line: int  # of the opening fence, 1-based
    section: str  # the heading above it
    lang: str
    text: str
    file: str | None = None  # <!-- file: PATH -->
    not_run: str | None = None  # <!-- not run: why -->

    @property
    def name(self) -> str:
        return f"README.md:{self.line} ({self.section}, {self.lang or 'text'})"


def read_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with the marks in the comment lines just above."""
    lines, blocks, section = text.splitlines(), [], ""
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        heading = HEADING.match(lines[i])
        if heading and not fence:
            section = heading.group(2)
        if not fence:
            i += 1
            continue
        indent, lang, start = fence.group(1), fence.group(2), i
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        marks, j = {}, start - 1
        while j >= 0 and COMMENT.match(lines[j]):
            if mark := MARK.match(lines[j]):
                marks[mark.group(1)] = mark.group(2)
            j -= 1
        blocks.append(Block(start + 1, section, lang, "\n".join(body) + "\n", marks.get("file"),
                            marks.get("not run")))
        i += 1
    return blocks


BLOCKS = read_blocks(README.read_text(encoding="utf-8"))


# -- shell blocks: which commands run here ------------------------------------------------------


def commands(block: Block) -> list[str]:
    """The command lines of a shell block: continuations joined, prompts and blank lines dropped."""
    out, pending = [], ""
    for line in block.text.splitlines():
        line = pending + line.removeprefix("$ ")
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        pending = ""
        if shlex.split(line, comments=True):
            out.append(line)
    return out


def runs_here(command: str) -> bool:
    """Whether every part of a command line is a cheap, local `dialogue` command."""
    tokens = shlex.split(command, comments=True)
    parts = [[]]
    for token in tokens:
        if token in ("&&", "||", ";", "|"):
            parts.append([])
        elif token in (">", ">>", "<"):
            parts[-1].append(None)  # the redirection's target follows; the command is what came before
        else:
            parts[-1].append(token)
    for part in parts:
        words = [w for w in part[:part.index(None)] if w] if None in part else part
        words = [w for w in words if w not in ("-v", "-vv")]
        if len(words) < 2 or words[0] != "dialogue" or words[1] not in CHEAP or LIVE_FLAGS & set(words):
            return False
    return True


def skipped() -> list[tuple[str, str]]:
    """(name, reason) of every block marked not run and every shell command not run here."""
    out = []
    for block in BLOCKS:
        if block.not_run is not None:
            out.append((block.name, f"marked not run: {block.not_run}"))
        elif block.lang in SHELLS:
            out += [(f"{block.name}: {c}", "not one of the cheap local dialogue commands run here")
                    for c in commands(block) if not runs_here(c)]
    return out


def runnable(block: Block) -> bool:
    return block.not_run is None and block.file is None and block.lang in ("python", *SHELLS)


SECTIONS = list(dict.fromkeys(b.section for b in BLOCKS if runnable(b)))


# -- the scratch project -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A folder with the shipped examples and every file the README writes, as a reader's would be."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(EXAMPLES_DIR, root / "dialogue" / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    for block in BLOCKS:
        if block.file is not None:
            path = root / block.file
            assert not path.exists() or block.file.startswith("dialogue/"), f"{block.name}: {block.file} twice"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text, encoding="utf-8")
    return root


def run_shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """A README command line in bash, with `dialogue` meaning this checkout's package."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(PYTHONPATH=str(ROOT), DIALOGUE_PYTHON=sys.executable)
    env.pop("DIALOGUE_DB", None)
    script = 'dialogue() { "$DIALOGUE_PYTHON" -m dialogue "$@"; }\nset -o pipefail\n' + command
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.file is not None], ids=lambda b: b.name)
def test_a_file_the_readme_writes_loads_without_a_warning(project, block, monkeypatch):
    monkeypatch.chdir(project)
    path = project / block.file
    if block.file.endswith(".py") or block.file.endswith(".tree.toml"):
        policy = load_policy(path)
        assert [str(w) for w in policy.warnings] == [], block.name
        assert [str(w) for w in policy.catalog.warnings] == [], block.name
    elif block.file.endswith(".tests.toml"):
        tests = load_test_file(path)
        assert tests.policy is not None and tests.cases, f"{block.name}: no policy beside it, or no cases"
    elif block.file.endswith(".cassette.json"):
        cassette = Cassette(path, policy_hash="", catalog_hash="")
        assert cassette.understanding and cassette.model, block.name
    elif block.lang == "toml" and "[catalog]" in block.text:
        assert [str(w) for w in load_catalog(path).warnings] == [], block.name
    else:
        pytest.fail(f"{block.name}: no loader for {block.file}")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "toml" and b.file is None], ids=lambda b: b.name)
def test_a_catalog_shown_in_the_readme_loads_without_a_problem(block):
    assert "[catalog]" in block.text, f"{block.name}: a TOML block that is no catalog needs <!-- file: PATH -->"
    problems = catalog_problems(block.text, path=f"<{block.name}>")  # no folder: audio files are not looked for
    assert [str(p) for p in problems] == []


@pytest.mark.parametrize("section", SECTIONS)
def test_a_section_runs_as_written(project, section, monkeypatch):
    monkeypatch.chdir(project)
    namespace: dict = {"__name__": "__readme__"}
    for block in (b for b in BLOCKS if b.section == section and runnable(b)):
        if block.lang == "python":
            exec(compile(block.text, block.name, "exec"), namespace)
            continue
        lines = [c for c in commands(block) if runs_here(c)]
        assert lines, f"{block.name} runs no command here; mark it <!-- not run: why --> just before it"
        for line in lines:
            out = run_shell(line, project)
            assert out.returncode == 0, f"{block.name}: {line}\n{out.stdout}\n{out.stderr}"


@pytest.mark.parametrize("name, reason", skipped(), ids=[name for name, _ in skipped()])
def test_what_does_not_run_here_is_reported(name, reason):
    pytest.skip(f"{name}: {reason}")


def test_every_block_has_a_known_language():
    known = ("", "python", "toml", "json", *SHELLS)
    assert [b.name for b in BLOCKS if b.lang not in known] == []
    assert [b.name for b in BLOCKS if b.lang == "json" and b.file is None] == []
    assert [b.name for b in BLOCKS if b.not_run is not None and not b.not_run.strip()] == []


def test_the_store_commands_default_the_readme_names_is_the_code_s():
    text = README.read_text(encoding="utf-8")
    said = re.findall(r"else `\$DIALOGUE_DB`, else `([^`]+)`", text)
    assert said == [DEFAULT_DB]


def test_tree_errors_point_to_a_heading_of_the_readme(tmp_path):
    headings = {m.group(2) for m in map(HEADING.match, README.read_text(encoding="utf-8").splitlines()) if m}
    assert README_SECTION in headings
    path = tmp_path / "t.tree.toml"
    path.write_text('[tree]\nname = 5\ncatalog = "c.toml"\n', encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert f'"{README_SECTION}"' in str(info.value)


def test_every_link_to_a_section_names_a_heading():
    text = README.read_text(encoding="utf-8")
    lines = [line for block_free in re.split(r"\n\s*```.*?\n\s*```", text, flags=re.S)
             for line in block_free.splitlines()]
    anchors = {_anchor(m.group(2)) for m in map(HEADING.match, lines) if m}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert sorted(links - anchors) == []


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_the_block_reader_sees_marks_sections_and_indented_fences():
    text = ("## One\n\n<!-- file: a/b.toml -->\n```toml\nx = 1\n```\n\n### Two\n- item:\n\n  ```sh\n"
            "  dialogue lint a \\\n    b   # a comment\n  make test\n  ```\n<!-- not run: needs a server -->\n"
            "<!-- serve:curl -->\n```sh\ncurl x\n```\n")
    a, b, c = read_blocks(text)
    assert (a.section, a.lang, a.file, a.text) == ("One", "toml", "a/b.toml", "x = 1\n")
    assert (b.section, b.lang, b.file, b.not_run) == ("Two", "sh", None, None)
    assert commands(b) == ["dialogue lint a   b   # a comment", "make test"]
    assert [runs_here(line) for line in commands(b)] == [True, False]
    assert c.not_run == "needs a server"
    assert not runs_here("dialogue test --record x") and runs_here("dialogue audit head --db d > head.txt")
    assert not runs_here("dialogue lint shop && dialogue chat shop/helpdesk.py")
