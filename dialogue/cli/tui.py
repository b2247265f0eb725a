"""`dialogue tui`: the Textual app (playground, catalog editor, test runner)."""

from __future__ import annotations

import argparse

from ..errors import DialogueError, MissingExtra
from .chat import _engine_options, backend_options

ORDER = 70
TUI_PACKAGES = {"textual", "rich"}  # what the app imports that the core does not install


def add(commands) -> None:
    p = commands.add_parser("tui", help="test a policy and edit its catalog in a terminal UI",
                            description="A terminal UI for designers and reviewers: chat with a "
                                        "policy and see each reply's trace (F1), edit its catalog "
                                        "with live validation (F2), run its conversation tests (F3).")
    p.add_argument("policy", nargs="?", metavar="POLICY",
                   help="a policies/NAME.py or NAME.tree.toml file (optional with --catalog)")
    p.add_argument("--catalog", metavar="FILE", help="the catalog to edit (default: the policy's)")
    p.add_argument("--tests", metavar="FILE",
                   help="the conversation tests file (default: NAME.tests.toml beside the policy)")
    _engine_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.backend == "manual":
        raise DialogueError("the manual backend asks for each reply on the terminal, which the TUI "
                            "draws on; use `dialogue chat POLICY --backend manual`, or the scripted "
                            "backend here")
    try:
        from ..tui import make_app
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in TUI_PACKAGES:
            raise
        raise MissingExtra("the terminal UI", "tui", missing) from None

    app = make_app(args.policy, backend=args.backend, mode=args.mode, locale=args.locale,
                   catalog_path=args.catalog, tests_path=args.tests,
                   backend_options=backend_options(args), allow_drafts=args.dev)
    app.run()
    return app.return_code or 0
