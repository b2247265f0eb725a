"""`dialogue lint`: check catalogs, policies, conversation trees and tests files, compiler-style."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

from ..errors import AuthorError, BackendError, DialogueError, Location, MissingExtra
from ._output import color_enabled, print_json, problem_dict, problem_key, problem_text, shown_path

ORDER = 10
JSON_SCHEMA = "dialogue.lint/1"


def add(commands) -> None:
    p = commands.add_parser("lint", help="check catalogs, policies, trees and tests files for errors and warnings",
                            description="Check catalog (.toml), policy (.py), conversation tree (.tree.toml) "
                                        "and tests (.tests.toml) files, or every such file in a folder. Prints "
                                        "each problem once as FILE:LINE:COL with a hint; exits 1 on errors, "
                                        "0 when there are only warnings. A policy without errors is also "
                                        "checked for rival questions whose examples are too alike for the "
                                        "matcher to tell apart.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="files, or folders: their policies (.py files with `policy = Policy(...)`), "
                        "catalogs, trees and tests files")
    p.add_argument("--no-overlap", action="store_true",
                   help="skip the check for rival questions whose examples are too alike to tell "
                        "apart (it loads the sentence encoder)")
    p.add_argument("--json", action="store_true",
                   help=f"print one JSON object for scripts and CI ({JSON_SCHEMA}: files, errors, warnings, "
                        "problems with kind, file, line, column, entry, message, hint)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    files = lint_files(args.paths)
    problems = lint(files, overlap=not args.no_overlap)
    errors = sum(getattr(p, "kind", "error") == "error" for p in problems)
    warnings = len(problems) - errors
    if args.json:
        print_json({"schema": JSON_SCHEMA, "files": [shown_path(str(f)) for f in files], "errors": errors,
                    "warnings": warnings, "problems": [problem_dict(p) for p in problems]})
    else:
        color = color_enabled()
        for problem in problems:
            print(problem_text(problem, color))
        print(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)} "
              f"in {len(files)} file{'s' * (len(files) != 1)}")
    return 1 if errors else 0


def lint(files: list[Path], *, overlap: bool = True) -> list[DialogueError]:
    """The problems of every file, each once: a catalog linted alone and through its policy too."""
    seen: dict[tuple, DialogueError] = {}
    for path in files:
        for problem in problems_of(path, overlap=overlap):
            seen.setdefault(problem_key(problem), problem)
    return list(seen.values())


def lint_files(paths: list[str]) -> list[Path]:
    """The files named, each folder replaced by the files in it that lint checks."""
    found: list[Path] = []
    for path in map(Path, paths):
        inside = files_in(path) if path.is_dir() else [path]
        if not inside:
            raise DialogueError(f"{path}: no policies, catalogs, trees or tests files in this folder")
        found += inside
    return list(dict.fromkeys(found))


def files_in(folder: Path) -> list[Path]:
    """Under `folder` (hidden folders left out): the *.tests.toml files `dialogue test` runs, the
    policies, the *.tree.toml trees and the catalogs (.toml files with a [catalog] table)."""
    out = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if any(p.startswith(".") or p == "__pycache__" for p in parts) or not path.is_file():
            continue
        kind = kind_of(path)
        if kind in ("policy", "tree") or path.name.endswith(".tests.toml") or \
                (kind == "catalog" and "catalog" in _tables(path)):
            out.append(path)
    return out


def kind_of(path: Path) -> str | None:
    """What `path` is: "policy", "tree", "tests", "catalog", or None for a file lint does not check.

    A .py file is a policy when it assigns `policy = Policy(...)` at module level; a .toml file
    named neither .tests.toml nor .tree.toml is a tests file when it has [[case]] tables only.
    """
    name = path.name
    if name.endswith(".tests.toml"):
        return "tests"
    if name.endswith(".tree.toml"):
        return "tree"
    if path.suffix == ".py":
        return "policy" if _makes_policy(_text(path)) else None
    if path.suffix == ".toml":
        tables = _tables(path)
        return "tests" if "case" in tables and "catalog" not in tables else "catalog"
    return None


def _makes_policy(source: str) -> bool:
    """Whether a module assigns `policy = Policy(...)` at its top level (read, never run)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return "policy = Policy(" in source  # a broken policy is still one to report
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
            node.target if isinstance(node, ast.AnnAssign) else None
        call = getattr(node, "value", None)
        if getattr(target, "id", None) == "policy" and isinstance(call, ast.Call):
            name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
            if name == "Policy":
                return True
    return False


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return ""


def _tables(path: Path) -> set[str]:
    """The top-level table names of a TOML file, read from its headers."""
    return set(re.findall(r"^\s*\[\[?\s*([A-Za-z0-9_-]+)", _text(path), re.M))


def problems_of(path: Path, *, overlap: bool = True) -> list[DialogueError]:
    """Every error and warning of one file; `overlap`: questions too alike to tell apart too."""
    if not path.exists():
        return [AuthorError(f"{path}: no such file or folder")]
    kind = kind_of(path) or ("policy" if path.suffix == ".py" else None)
    if kind in ("policy", "tree"):
        return _policy_problems(path, overlap)
    if kind == "tests":
        return _tests_problems(path)
    if kind == "catalog":
        from ..catalog import catalog_problems

        return list(catalog_problems(path))
    return [AuthorError("not a catalog (.toml), policy (.py), tree (.tree.toml) or tests (.tests.toml) file",
                        location=Location(str(path)))]


def _tests_problems(path: Path) -> list[DialogueError]:
    """A tests file's faults, and its policy's errors when the policy does not load."""
    from ..testing.cases import load_test_file

    try:
        load_test_file(path)
    except DialogueError as exc:
        return list(getattr(exc, "errors", None) or [exc])
    return []


def _policy_problems(path: Path, overlap: bool) -> list[DialogueError]:
    from ..policy import load_policy

    try:
        policy = load_policy(path, check=False)
        catalog_errors = _catalog_errors(policy)
        if catalog_errors:
            return catalog_errors
        problems = policy.check()
    except DialogueError as exc:
        return list(getattr(exc, "errors", None) or [exc])
    errors = any(getattr(p, "kind", "error") == "error" for p in problems)
    return problems if errors or not overlap else problems + _overlap_problems(policy)


def _overlap_problems(policy) -> list[DialogueError]:
    """Rival questions the matcher cannot tell apart (the sentence encoder loads here only)."""
    from ..checks import PolicyWarning

    try:
        from ..understanding.overlap import overlapping_questions

        return overlapping_questions(policy)
    except ImportError as exc:  # numpy, which the check computes with
        problem: BackendError = MissingExtra("the overlap check", "embedded", exc.name)
    except BackendError as exc:  # the encoder is missing or cannot load
        problem = exc
    return [PolicyWarning(f"questions were not checked for overlap: {problem}",
                          location=Location(str(policy.file)),
                          hint="install or repair dialogue's encoder, or pass --no-overlap")]


def _catalog_errors(policy) -> list[DialogueError]:
    from ..catalog import catalog_problems

    if not policy.catalog_path.exists():
        return [AuthorError(f"policy {policy.name!r} names catalog {policy.catalog_path}, which does not exist",
                            location=Location(str(policy.file)),
                            hint="the catalog path is relative to the policy file")]
    return [p for p in catalog_problems(policy.catalog_path) if getattr(p, "kind", "error") == "error"]
