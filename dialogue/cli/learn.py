"""`dialogue correct` and `dialogue learn`: reviewed turns become the policy's examples."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import DialogueError
from .store import DEFAULT_DB, _db_option, open_store

ORDER = 65
SHOWN = 5  # sessions and turns named in one line of the summary


def add(commands) -> None:
    c = commands.add_parser("correct", help="record the reply a stored turn should have had",
                            description="Record a reviewer's correction of a stored turn: the catalog "
                                        "reply it should have had. Corrections are append-only; a later "
                                        "one of the same turn supersedes the earlier. `dialogue learn` "
                                        "turns them into the policy's examples.")
    c.add_argument("session", metavar="SESSION", help="the session id (see `dialogue sessions`)")
    c.add_argument("turn", metavar="TURN", type=int, help="the turn number, from 0 (see `dialogue log`)")
    c.add_argument("reply_id", metavar="REPLY_ID", help="the catalog id the turn should have answered with")
    _db_option(c)
    c.add_argument("--by", metavar="NAME", help="who reviewed the turn (default: $USER)")
    c.add_argument("--note", metavar="TEXT", default="", help="why, for the next reviewer")
    c.set_defaults(run=run_correct)

    lr = commands.add_parser("learn", help="append reviewed corrections (and test turns) to the policy's examples",
                             description="Append every correction of the policy's sessions in the store "
                                         "to policies/NAME.examples.toml, with where it came from, the node "
                                         "and the state before the turn; the matcher learns from that file "
                                         "when the policy loads. Prints what it adds, what was there already "
                                         "and what it could not use (messages stored only as a hash).")
    lr.add_argument("policy", metavar="POLICY", help="a policies/NAME.py or NAME.tree.toml file")
    _db_option(lr)
    lr.add_argument("--tests", action="store_true",
                    help="also every turn of NAME.tests.toml beside the policy that expects a reply")
    lr.add_argument("--dry-run", action="store_true", help="print what would be added; write nothing")
    lr.add_argument("-o", "--output", metavar="FILE", help="the examples file (default: NAME.examples.toml "
                                                           "beside the policy)")
    lr.set_defaults(run=run_learn)


# -- correct ----------------------------------------------------------------------------------

def run_correct(args: argparse.Namespace) -> int:
    by = (args.by if args.by is not None else os.environ.get("USER") or "").strip()
    if not by:
        raise DialogueError("name the reviewer with --by NAME ($USER is not set)")
    with open_store(args) as store:
        record = store.correct(args.session, args.turn, args.reply_id, by=by, note=args.note)
    print(f"turn {record.turn} of {record.session_id}: {record.chosen} -> {record.reply_id} (by {record.by})")
    if record.supersedes is not None:
        print(f"  this supersedes the earlier correction to {record.supersedes}")
    if record.message is None:
        print("  the store kept only a salted hash of this turn's message (store_messages=False): "
              "`dialogue learn` cannot learn from it")
    return 0


# -- learn ------------------------------------------------------------------------------------

def run_learn(args: argparse.Namespace) -> int:
    from ..policy import load_policy
    from ..understanding.examples import examples_path

    policy = load_policy(args.policy)
    target = Path(args.output) if args.output else examples_path(args.policy)
    if not target.parent.is_dir():
        raise DialogueError(f"{target}: the folder {target.parent} does not exist; create it first")
    gathered = [g for g in (_from_store(args, policy), _from_tests(args, policy)) if g is not None]
    _write(args, policy, target, gathered)
    return 0


def _from_store(args: argparse.Namespace, policy):
    """The corrections of the policy's sessions; None when --tests runs without any store."""
    from ..understanding.learning import from_corrections

    named = args.db or os.environ.get("DIALOGUE_DB")
    if args.tests and not named and not Path(DEFAULT_DB).exists():
        print(f"no session store at {DEFAULT_DB}: learning from the tests only (name one with --db FILE)")
        return None
    with open_store(args) as store:
        _check_sessions(store, policy, args.tests)
        return from_corrections(store.corrections(policy.name), policy)


def _check_sessions(store, policy, tests: bool) -> None:
    names = sorted({row["policy"] for row in store.sessions()})
    if policy.name in names:
        return
    others = f"it has sessions of {', '.join(map(repr, names))}" if names else "it has no sessions"
    message = f"no sessions of policy {policy.name!r} in {store.path} ({others})"
    if not tests:
        raise DialogueError(f"{message}; check --db and the policy file")
    print(f"{message}: no corrections to learn")


def _from_tests(args: argparse.Namespace, policy):
    if not args.tests:
        return None
    from ..testing.cases import load_test_file
    from ..understanding.learning import from_tests

    path = Path(args.policy).parent / f"{_stem(args.policy)}.tests.toml"
    if not path.is_file():
        raise DialogueError(f"--tests: no tests file at {path}")
    return from_tests(load_test_file(path, policy), policy)


def _stem(policy_file: str) -> str:
    return Path(policy_file).name.removesuffix(".tree.toml").removesuffix(".py")


def _write(args: argparse.Namespace, policy, target: Path, gathered: list) -> None:
    from ..understanding.examples import append_examples, load_examples, new_examples
    from ..understanding.learning import conflicts

    candidates = [e for g in gathered for e in g.examples]
    existing = load_examples(target)
    new = new_examples(target, candidates)
    if not args.dry_run:
        append_examples(target, new, policy_name=policy.name)
    for example in new:
        print(f"  + {_shown(example)}")
    print(_summary(args.dry_run, target, candidates, new, existing))
    for line in _unused(gathered) + conflicts(existing, new):
        print(line)


def _shown(example) -> str:
    where = f"correction of turn {example.turn} of {example.session} by {example.by}" \
        if example.source == "correction" else f"test: {example.session}, turn {example.turn}"
    return f"{example.message!r} -> {example.reply}  [{example.node or 'start'}]  {where}"


def _summary(dry_run: bool, target: Path, candidates: list, new: list, existing: list) -> str:
    counts = {source: sum(e.source == source for e in new) for source in ("correction", "test")}
    parts = [f"{n} from {'corrections' if s == 'correction' else 'tests'}" for s, n in counts.items() if n]
    keys = {e.key() for e in existing}
    there = sum(e.key() in keys for e in candidates)
    repeated = len(candidates) - len(new) - there
    verb = "would add" if dry_run else "added"
    line = f"{verb} {_count(len(new), 'example')} to {target}" + (f" ({', '.join(parts)})" if parts else "")
    line += f"; {there} {'was' if there == 1 else 'were'} already there"
    if repeated:
        line += f", {repeated} repeated an earlier one"
    return line + ("; nothing written (--dry-run)" if dry_run else "")


def _unused(gathered: list) -> list[str]:
    lines = []
    hashed = [r for g in gathered for r in g.hashed]
    if hashed:
        turns = ", ".join(f"turn {r.turn} of {r.session_id}" for r in hashed[:SHOWN])
        more = f" and {len(hashed) - SHOWN} more" if len(hashed) > SHOWN else ""
        lines.append(f"{_count(len(hashed), 'correction')} not used: the store kept only a salted hash of the "
                     f"message (store_messages=False), not the text, so there is nothing to learn from "
                     f"({turns}{more})")
    without = sum(g.without_reply for g in gathered)
    if without:
        lines.append(f"{_count(without, 'test turn')} expect no particular reply (only `not`, state or "
                     "fallback): nothing to learn from them")
    lines += [why for g in gathered for why in g.skipped]
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"
