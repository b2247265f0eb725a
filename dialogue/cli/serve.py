"""`dialogue serve`: policies over HTTP (FastAPI + uvicorn), with a session store and tokens."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os

from ..errors import DialogueError, MissingExtra

ORDER = 35
ARGV_VARIABLE = "DIALOGUE_SERVE_ARGS"  # how `--workers N` hands the command line to each worker
LOOPBACK_NAMES = {"localhost"}


def add(commands) -> None:
    p = commands.add_parser("serve", help="serve policies over HTTP: a JSON API for any language",
                            description="Serve one or more policies (each under its policy name) over a "
                                        "versioned JSON API under /v1, with an OpenAPI schema at /openapi.json, "
                                        "docs at /docs, /healthz, /readyz and Prometheus /metrics.")
    p.add_argument("policies", nargs="+", metavar="POLICY", help="policies/NAME.py files")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--db", metavar="FILE|URL", help="keep sessions and their audited turns in this store: an "
                                                    "SQLite file, or a postgresql:// URL that servers on several "
                                                    "hosts share (default: in memory, lost on restart)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="server processes sharing the port (needs --db: they share the store)")
    p.add_argument("--token-file", metavar="F", help="bearer tokens, one `NAME TOKEN` a line; the name goes "
                                                     "into each turn's audit row")
    p.add_argument("--no-auth", action="store_true", help="serve without tokens (only on a loopback address)")
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                   help="let a browser client from ORIGIN call the API (repeatable; default: none)")
    p.add_argument("--max-body-bytes", type=int, default=64 * 1024, metavar="N",
                   help="largest request body (default 65536)")
    p.add_argument("--max-message-chars", type=int, default=4000, metavar="N",
                   help="longest message a turn accepts (default 4000)")
    p.add_argument("--rate-limit", type=float, default=100.0, metavar="R",
                   help="requests a second per token, bursts of twice that; 0: no limit (default 100)")
    p.add_argument("--on-change", choices=["error", "continue"], default="error",
                   help="resuming a stored session whose policy or catalog changed: refuse (409) or continue")
    from .chat import _engine_options

    _engine_options(p)
    p.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    _check(args)
    uvicorn = _serve_modules()
    options = dict(host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=30)
    if args.workers > 1:
        _validate(args)  # here, so a mistake is one clear line rather than one per worker
        os.environ[ARGV_VARIABLE] = json.dumps({k: v for k, v in vars(args).items() if k != "run"})
        uvicorn.run("dialogue.cli.serve:app_from_environment", factory=True, workers=args.workers, **options)
        return 0
    uvicorn.run(build_app(args), **options)
    return 0


def _check(args: argparse.Namespace) -> None:
    if args.token_file and args.no_auth:
        raise DialogueError("give --token-file or --no-auth, not both")
    if not args.token_file and not args.no_auth:
        raise DialogueError("dialogue serve needs --token-file F (bearer tokens), or --no-auth on a "
                            "loopback address such as 127.0.0.1")
    if args.no_auth and not _loopback(args.host):
        raise DialogueError(f"--no-auth serves only on a loopback address, not {args.host}; give --token-file F")
    if args.workers > 1 and not args.db:
        raise DialogueError("--workers N needs --db FILE|URL: the worker processes share sessions through the store")
    if args.workers < 1:
        raise DialogueError("--workers is at least 1")


def _validate(args: argparse.Namespace) -> None:
    from ..policy import load_policy
    from ..serve.auth import read_token_file

    if args.token_file:
        read_token_file(args.token_file)
    for path in args.policies:
        load_policy(path)


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _serve_modules():
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ModuleNotFoundError as exc:
        raise MissingExtra("dialogue serve", "serve", exc.name) from None
    return uvicorn


def build_app(args: argparse.Namespace):
    """The app for these command-line arguments: one engine per policy on one backend and store."""
    _serve_modules()
    from ..serve import make_app
    from ..serve.auth import read_token_file
    from ..store import Store
    from .chat import load_backend

    tokens = read_token_file(args.token_file) if args.token_file else None
    backend = load_backend(args)
    store = Store(args.db) if args.db else None
    engines = [_engine(args, path, backend, store) for path in args.policies]
    return make_app(engines, tokens=tokens, cors=args.cors, max_body_bytes=args.max_body_bytes,
                    rate_limit=args.rate_limit or None, close_engines=True)


def _engine(args: argparse.Namespace, path: str, backend, store):
    from ..engine import Engine, default_understanding
    from ..policy import load_policy

    return Engine(load_policy(path), mode=args.mode, backend=backend or args.backend, locale=args.locale,
                  allow_drafts=args.dev, store=store, on_change=args.on_change,
                  max_message_chars=args.max_message_chars, encoder=args.encoder,
                  understanding=args.understanding or default_understanding(backend or args.backend))


def app_from_environment():
    """The app of one `--workers N` process, from the arguments the parent handed down."""
    return build_app(argparse.Namespace(**json.loads(os.environ[ARGV_VARIABLE])))
