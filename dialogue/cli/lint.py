"""`dialogue lint`: check catalogs and policies, compiler-style."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import AuthorError, DialogueError


ORDER = 10


def add(commands) -> None:
    p = commands.add_parser("lint", help="check catalogs and policies for errors and warnings",
                            description="Check catalog (.toml) and policy (.py) files. Prints each "
                                        "problem as FILE:LINE:COL with a hint; exits 1 on errors, "
                                        "0 when there are only warnings.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="catalog .toml, policy .py or conversation tree .tree.toml files")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    errors = warnings = 0
    for path in map(Path, args.paths):
        for problem in problems_of(path):
            if getattr(problem, "kind", "error") == "error":
                errors += 1
            else:
                warnings += 1
            print(problem)
    files = len(args.paths)
    print(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)} "
          f"in {files} file{'s' * (files != 1)}")
    return 1 if errors else 0


def problems_of(path: Path) -> list[DialogueError]:
    """Every error and warning of one file."""
    if not path.exists():
        return [AuthorError(f"{path}: no such file")]
    if path.name.endswith(".tree.toml") or path.suffix == ".py":
        return _policy_problems(path)
    if path.suffix == ".toml":
        from ..catalog import catalog_problems

        return list(catalog_problems(path))
    return [AuthorError(f"{path}: not a catalog (.toml) or policy (.py) file")]


def _policy_problems(path: Path) -> list[DialogueError]:
    from ..policy import load_policy

    try:
        policy = load_policy(path, check=False)
        catalog_errors = _catalog_errors(policy)
        if catalog_errors:
            return catalog_errors
        return policy.check()
    except DialogueError as exc:
        return list(getattr(exc, "errors", None) or [exc])


def _catalog_errors(policy) -> list[DialogueError]:
    from ..catalog import catalog_problems

    if not policy.catalog_path.exists():
        return [AuthorError(f"policy {policy.name!r} names catalog {policy.catalog_path}, which does not exist",
                            hint="the catalog path is relative to the policy file")]
    return [p for p in catalog_problems(policy.catalog_path) if getattr(p, "kind", "error") == "error"]
