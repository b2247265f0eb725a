"""`dialogue init`: a folder with a small working policy to start from."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ..errors import DialogueError

ORDER = 5
TEMPLATES = {"support": "a help desk for an online shop (order status, opening hours, a person)",
             "npc": "a game shopkeeper with gold and items"}


def add(commands) -> None:
    p = commands.add_parser("init", help="start a policy of your own from a template",
                            description="Write a small working policy into FOLDER: the policy (.py), "
                                        "its catalog (.toml, with a fallback and an unclear line), "
                                        "conversation tests with their recorded cassette, and a README "
                                        "of what to edit next. `dialogue lint FOLDER` and `dialogue "
                                        "test FOLDER` pass on it as written. Existing files are never "
                                        "overwritten unless --force is given.")
    p.add_argument("folder", nargs="?", default=".", metavar="FOLDER",
                   help="where to write the files (created if missing; default: the current folder)")
    p.add_argument("--template", choices=sorted(TEMPLATES), default="support",
                   help="; ".join(f"{name}: {what}" for name, what in TEMPLATES.items())
                        + " (default: support)")
    p.add_argument("--force", action="store_true", help="overwrite files that already exist")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    written = write_template(args.template, folder, force=args.force)
    policy = next(p for p in written if p.suffix == ".py")
    print(f"Wrote the {args.template} template to {folder}:")
    for path in written:
        print(f"  {path}")
    print(f"Next: dialogue lint {folder}   dialogue test {folder}   dialogue chat {policy}\n"
          f"{folder / 'README.md'} says what to edit.")
    return 0


def write_template(name: str, folder: Path, *, force: bool = False) -> list[Path]:
    """Copy the files of template `name` into `folder`; the paths written."""
    from ..examples import TEMPLATES as SOURCE

    files = sorted(p for p in (SOURCE / name).iterdir() if p.is_file() and p.suffix != ".pyc")
    targets = [folder / p.name for p in files]
    if folder.exists() and not folder.is_dir():
        raise DialogueError(f"{folder} is a file, not a folder")
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        raise DialogueError(f"not overwriting {', '.join(map(str, existing))}; "
                            "choose another folder, or pass --force to overwrite")
    folder.mkdir(parents=True, exist_ok=True)
    for source, target in zip(files, targets):
        shutil.copyfile(source, target)
    return targets
