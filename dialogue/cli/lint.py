"""`dialogue lint`: check catalogs and policies, compiler-style."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import AuthorError, BackendError, DialogueError, Location, MissingExtra


ORDER = 10
NOT_CATALOGS = (".tests.toml", ".examples.toml", "pyproject.toml")  # TOML files lint does not check


def add(commands) -> None:
    p = commands.add_parser("lint", help="check catalogs and policies for errors and warnings",
                            description="Check catalog (.toml) and policy (.py) files. Prints each "
                                        "problem as FILE:LINE:COL with a hint; exits 1 on errors, "
                                        "0 when there are only warnings. A policy without errors is "
                                        "also checked for rival questions whose examples are too "
                                        "alike for the matcher to tell apart.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="catalog .toml, policy .py or conversation tree .tree.toml files, or folders "
                        "holding them")
    p.add_argument("--no-overlap", action="store_true",
                   help="skip the check for rival questions whose examples are too alike to tell "
                        "apart (it loads the sentence encoder)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    errors = warnings = 0
    paths = lint_files(args.paths)
    shown: set[str] = set()  # a catalog's errors come with its policy's and with the catalog itself
    for path in paths:
        for problem in problems_of(path, overlap=not args.no_overlap):
            if str(problem) in shown:
                continue
            shown.add(str(problem))
            if getattr(problem, "kind", "error") == "error":
                errors += 1
            else:
                warnings += 1
            print(problem)
    files = len(paths)
    print(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)} "
          f"in {files} file{'s' * (files != 1)}")
    return 1 if errors else 0


def lint_files(paths: list[str]) -> list[Path]:
    """The files named, folders expanded to the policies and catalogs in them."""
    found: list[Path] = []
    for path in map(Path, paths):
        found += sorted(p for p in path.rglob("*") if _lintable(p, path)) if path.is_dir() else [path]
    if not found:
        raise DialogueError(f"no policy (.py, .tree.toml) or catalog (.toml) files in {', '.join(paths)}")
    return found


def _lintable(path: Path, folder: Path) -> bool:
    """A policy or catalog file under `folder`: no tests or examples file, nothing hidden,
    no `__init__.py` and nothing in `__pycache__`."""
    if any(part.startswith((".", "__")) for part in path.relative_to(folder).parts):
        return False
    return path.is_file() and path.suffix in (".py", ".toml") and not path.name.endswith(NOT_CATALOGS)


def problems_of(path: Path, *, overlap: bool = True) -> list[DialogueError]:
    """Every error and warning of one file; `overlap`: questions too alike to tell apart too."""
    if not path.exists():
        return [AuthorError(f"{path}: no such file")]
    if path.name.endswith(".tree.toml") or path.suffix == ".py":
        return _policy_problems(path, overlap)
    if path.suffix == ".toml":
        from ..catalog import catalog_problems

        return list(catalog_problems(path))
    return [AuthorError(f"{path}: not a catalog (.toml) or policy (.py) file")]


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
                            hint="the catalog path is relative to the policy file")]
    return [p for p in catalog_problems(policy.catalog_path) if getattr(p, "kind", "error") == "error"]
