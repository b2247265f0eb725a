"""The `dialogue` command line: one module per noun, each adding its subcommands."""

from __future__ import annotations

import argparse
import sys

from ..errors import DialogueError

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialogue",
        description="A language model understands whatever people type; it answers only "
                    "with approved lines from a response catalog.")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show the library's log on stderr: -v what it does, -vv debugging detail")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.add(commands)
    return parser


def _command_modules() -> list:
    """Every module of this package with an `add(commands)` function, by its `ORDER`."""
    import importlib
    import pkgutil

    modules = [importlib.import_module(f"{__name__}.{info.name}")
               for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    modules = [m for m in modules if callable(getattr(m, "add", None))]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 50), m.__name__))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from ._output import set_verbosity

    set_verbosity(args.verbose)
    try:
        return args.run(args) or 0
    except DialogueError as exc:
        print(f"dialogue: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`dialogue tree ... | head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _version() -> str:
    from .. import __version__

    return f"dialogue {__version__}"
