"""`dialogue sessions`, `log`, `export`, `audit verify` and `audit head`: read a session store;
`dialogue store migrate` and `store copy`: upgrade one, move one to another database."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

DEFAULT_DB = "dialogue.db"


ORDER = 60


def add(commands) -> None:
    s = commands.add_parser("sessions", help="list the sessions in a store",
                            description="List every session in a store, most recently active first: "
                                        "id, policy, turns, last activity and whether it ended.")
    _db_option(s)
    s.add_argument("--json", action="store_true",
                   help="print one JSON object for scripts (dialogue.sessions/1: db, and per session id, "
                        "policy, policy_hash, catalog_hash, turns, last_activity, ended, created_at, locale, "
                        "mode)")
    s.set_defaults(run=run_sessions)

    lg = commands.add_parser("log", help="show a session's transcript",
                             description="Show a session as a readable transcript: each message, the "
                                         "reply id, the text sent, fallback flags and latency.")
    lg.add_argument("session", metavar="SESSION", help="the session id (see `dialogue sessions`)")
    _db_option(lg)
    lg.set_defaults(run=run_log)

    ex = commands.add_parser("export", help="export a session's turns as JSON lines",
                             description="Write one JSON object per turn to stdout: message, reachable "
                                         "replies, raw model output, reply, text, state after, versions "
                                         "and the turn's audit hash.")
    ex.add_argument("session", metavar="SESSION", help="the session id (see `dialogue sessions`)")
    ex.add_argument("--format", choices=["jsonl"], default="jsonl", help="output format (default: jsonl)")
    _db_option(ex)
    ex.set_defaults(run=run_export)

    _add_audit(commands)
    _add_store(commands)


def _add_store(commands) -> None:
    st = commands.add_parser("store", help="upgrade a session store's schema, or copy it to another database",
                             description="Commands on a whole session store: an SQLite file or a PostgreSQL "
                                         "database (postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE).")
    actions = st.add_subparsers(dest="store_command", metavar="ACTION")
    m = actions.add_parser("migrate", help="create or upgrade the store's schema to this dialogue's version",
                           description="Create the tables in an empty store, or upgrade an older schema to the "
                                       "version this dialogue writes (migrations only add; turns and the audit "
                                       "chain are kept as they are). Prints the version before and after. On "
                                       "PostgreSQL, --grant ROLE then gives a serving role what it needs and no "
                                       "more: it can read and add rows, never change or delete a turn, a state, "
                                       "an audit row or a correction, nor drop the triggers that refuse it.")
    _db_option(m)
    m.add_argument("--grant", metavar="ROLE", help="PostgreSQL: the role `dialogue serve` connects as")
    m.set_defaults(run=run_migrate)
    c = actions.add_parser("copy", help="copy every session and turn into another, empty store and verify it",
                           description="Copy a store into an empty one, row for row: versions, sessions, turns, "
                                       "states, the audit chain (same sequence numbers and hashes), corrections "
                                       "and closed sessions; from an SQLite file to PostgreSQL, or back. The "
                                       "source is verified first, the target before the copy commits: it must end "
                                       "at the source's head, or nothing is kept.")
    c.add_argument("--from", dest="source", required=True, metavar="FILE|URL", help="the store to copy")
    c.add_argument("--to", dest="target", required=True, metavar="FILE|URL",
                   help="an empty store (created if missing)")
    _key_option(c)
    c.set_defaults(run=run_copy)
    st.set_defaults(run=lambda args: _usage(st))


def _add_audit(commands) -> None:
    a = commands.add_parser("audit", help="check the hash-chained audit log",
                            description="Commands on the audit chain: one row per turn, each holding "
                                        "the turn's canonical JSON and the hash of the row before.")
    actions = a.add_subparsers(dest="audit_command", metavar="ACTION")
    v = actions.add_parser("verify", help="walk the audit chain and check every turn against it",
                           description="Walk the audit chain and check every stored turn, state, session, "
                                       "policy source, catalog text and the salt against it. Exit 0 and the "
                                       "count when intact; exit 1 and the first bad sequence number when a "
                                       "row was edited, deleted or inserted. With --head, also prove that "
                                       "the chain still holds the row a head kept elsewhere names: nothing "
                                       "was cut off or replaced since it was taken.")
    v.add_argument("--head", metavar="FILE|VALUE",
                   help="a head printed by `dialogue audit head` earlier, or a file holding one")
    _db_option(v)
    _key_option(v)
    v.set_defaults(run=run_verify)
    h = actions.add_parser("head", help="print the chain's head (count and hash), to keep elsewhere",
                           description="Verify the chain, then print its head: COUNT:HASH, and :MAC (the "
                                       "head signed with the audit key) on a keyed chain. Keep it where "
                                       "whoever can write the store cannot; `dialogue audit verify --head` "
                                       "later proves nothing was cut off or replaced since.")
    _db_option(h)
    _key_option(h)
    h.set_defaults(run=run_head)
    a.set_defaults(run=lambda args: _usage(a))


def _key_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key-file", metavar="FILE",
                   help="the audit key of a keyed chain (default: $DIALOGUE_AUDIT_KEY_FILE or $DIALOGUE_AUDIT_KEY)")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="FILE|URL",
                   help=f"the session store: an SQLite file or a postgresql:// URL (default: $DIALOGUE_DB, "
                        f"else {DEFAULT_DB} in this folder)")


def store_target(value: str | None) -> str | Path:
    """A --db value (else $DIALOGUE_DB, else ./dialogue.db) as the Store takes it: a URL or a path."""
    from ..store import is_url

    value = value or os.environ.get("DIALOGUE_DB") or DEFAULT_DB
    return value if is_url(value) else Path(value)


def open_store(args: argparse.Namespace):
    """The store named by --db, $DIALOGUE_DB or ./dialogue.db; never created, read-only if need be."""
    from ..store import Store

    return Store(store_target(args.db), create=False, readonly=None, audit_key=_key(args))


def _key(args: argparse.Namespace) -> Path | None:
    key_file = getattr(args, "key_file", None)
    return Path(key_file) if key_file else None


def run_migrate(args: argparse.Namespace) -> int:
    from ..store import SCHEMA_VERSION, Store

    with Store(store_target(args.db), audit_key=_key(args)) as store:
        before = store.upgraded_from
        if args.grant:
            store.grant(args.grant)
    if before == SCHEMA_VERSION:
        print(f"{store.path}: schema version {SCHEMA_VERSION}, nothing to upgrade")
    else:
        print(f"{store.path}: schema version {before} -> {SCHEMA_VERSION}{' (created)' if before == 0 else ''}")
    if args.grant:
        print(f"granted {args.grant!r} what a serving role needs: select and insert; update only of sessions "
              "and meta")
    return 0


def run_copy(args: argparse.Namespace) -> int:
    from ..store import Store, copy_store

    with Store(store_target(args.source), create=False, readonly=None, audit_key=_key(args)) as source, \
            Store(store_target(args.target), audit_key=_key(args)) as target:
        result = copy_store(source, target)
    plural = lambda n, word: f"{n} {word}{'s' * (n != 1)}"  # noqa: E731
    print(f"copied {plural(result.sessions, 'session')}, {plural(result.turns, 'turn')} and "
          f"{plural(result.corrections, 'correction')} from {source.path} to {target.path}")
    print(f"audit chain verified on {target.path}: {result.verified.count} rows, head {result.verified.signed_head}")
    return 0


def run_sessions(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        rows = store.sessions()
        if getattr(args, "json", False):
            return _print_sessions_json(store.path, rows)
        if not rows:
            print(f"no sessions in {store.path}")
            return 0
    table = [["ID", "POLICY", "TURNS", "LAST ACTIVITY", "ENDED"]]
    table += [[r["id"], f"{r['policy']} {r['policy_hash'][:8]}", str(r["turns"]),
               _when(r["last_activity"]), "yes" if r["ended"] else "no"] for r in rows]
    print(_columns(table, right={2}))
    return 0


def _print_sessions_json(path, rows: list[dict]) -> int:
    from ._output import print_json

    print_json({"schema": "dialogue.sessions/1", "db": str(path), "sessions": rows})
    return 0


def run_log(args: argparse.Namespace) -> int:
    from ..errors import SessionError

    with open_store(args) as store:
        session = store.load_session(args.session)
        if session is None:
            raise SessionError(f"no session {args.session!r} in {store.path}; see `dialogue sessions`")
    print(f"session {_shown(session.id)}  policy {_shown(session.policy_name)} {session.policy_hash[:8]}  "
          f"catalog {session.catalog_hash[:8]}  {_shown(session.locale)}  {_shown(session.mode)}  "
          f"{len(session.turns)} turn{'s' * (len(session.turns) != 1)}{', ended' if session.ended else ''}")
    versions = None
    for turn in session.turns:
        if versions is not None and versions != (turn.policy_hash, turn.catalog_hash):
            print(f"  -- now on policy {turn.policy_hash[:8]}, catalog {turn.catalog_hash[:8]} --")
        versions = (turn.policy_hash, turn.catalog_hash)
        print(_format_turn(turn))
    return 0


def _format_turn(turn) -> str:
    ms = 1000 * turn.timings.get("total_s", 0.0)
    head = f"#{turn.index:<3} {_when(turn.created_at)}  {_shown(turn.reply_id)}  {ms:.0f} ms"
    if turn.retries:
        head += f"  retries {turn.retries}"
    lines = [head, f"     you: {_shown(turn.message)}"]
    lines += [f"     {'bot:' if i == 0 else '    '} {_shown(text)}"
              for i, text in enumerate(turn.text.split("\n") or [""])]
    if turn.fallback:
        lines.append(f"     FALLBACK: {_shown(turn.fallback_reason or 'no reason recorded')}")
    return "\n".join(lines)


# Control characters (C0, DEL, C1), line and paragraph separators, and the bidirectional
# overrides and isolates that reorder what a terminal shows.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _shown(text: str) -> str:
    """Stored text as one inert line: newlines and escape sequences written out, not obeyed."""
    return re.sub(r"\\|" + _UNPRINTABLE.pattern,
                  lambda m: _NAMED.get(m.group(0)) or f"\\u{ord(m.group(0)):04x}", text)


def run_export(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        turns = store.export(args.session)
    for turn in turns:
        sys.stdout.write(json.dumps(turn, ensure_ascii=False, sort_keys=True) + "\n")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    head = _head_argument(args.head) if args.head else None
    with open_store(args) as store:
        result = store.verify(head=head)
    if result.ok:
        kind = "keyed " if result.keyed else ""
        head_note = f"; head {result.head}" if result.head else ""
        against = "; the head given is in it" if head else ""
        print(f"{kind}audit chain intact: {result.count} turn{'s' * (result.count != 1)} verified{head_note}{against}")
        return 0
    where = f"at sequence {result.first_bad}" if result.first_bad is not None else "outside the chain"
    print(f"audit chain broken {where}: {result.reason} "
          f"({result.count} row{'s' * (result.count != 1)} before it verified)")
    return 1


def run_head(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        result = store.verify()
    if not result.ok:
        print(f"audit chain broken at sequence {result.first_bad}: {result.reason}; no head printed "
              "(run `dialogue audit verify`)", file=sys.stderr)
        return 1
    print(result.signed_head)
    return 0


def _head_argument(value: str) -> str:
    """--head VALUE, or the head in the file it names."""
    from ..errors import StoreError

    if ":" in value and not Path(value).exists():
        return value
    try:
        return Path(value).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"{value}: the head file cannot be read ({getattr(exc, 'strerror', None) or exc}); "
                         "pass the head COUNT:HASH itself or a file holding it") from exc


def _when(iso: str | None) -> str:
    """An ISO timestamp to the second, as `2026-05-09 07:35:25` (the store writes UTC)."""
    return iso[:19].replace("T", " ") if iso else "-"


def _columns(rows: list[list[str]], right: set[int] = frozenset()) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows)
