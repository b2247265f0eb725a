"""`python -m tests.store.cli_shim ARGS`: the `dialogue` command line with the store commands in it."""

import sys

from dialogue import cli

from .helpers import build_parser_with_store

cli.build_parser = build_parser_with_store(cli.build_parser)
sys.exit(cli.main())
