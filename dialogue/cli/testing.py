"""`dialogue test`: run conversation tests, replayed from cassettes or live, with coverage."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import DialogueError
from ._output import color_enabled, paint, print_json, shown_path

ORDER = 35
JSON_SCHEMA = "dialogue.test/1"


def add(commands) -> None:
    p = commands.add_parser(
        "test", help="run conversation tests (NAME.tests.toml), replayed or live, with coverage",
        description="Run the cases of conversation test files. Prints each case, the first mismatch "
                    "as expected against got with the turn's reachable replies, and a summary; exits 1 "
                    "on a failure. A file with a cassette (NAME.cassette.json) is replayed without a "
                    "model unless --backend, --live or --record is given.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="tests files, or folders holding *.tests.toml")
    p.add_argument("--backend", metavar="NAME", help="run live on this backend (default when live: llamacpp, "
                                                     "the embedded SmolLM2-135M; scripted: always the "
                                                     "first reachable reply)")
    p.add_argument("--mode", choices=["prompted", "executed"],
                   help="prompted (one model call a turn) or executed (one per question); "
                        "default: the file's `mode`, else prompted")
    p.add_argument("--understanding", choices=["encoder", "model", "hybrid"],
                   help="who picks the reply: the sentence encoder's matcher, the model, or the model among "
                        "the matcher's best (default: encoder on the embedded model, else model)")
    p.add_argument("-k", metavar="PATTERN", help="run only cases whose name contains PATTERN")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--record", action="store_true",
                        help="run live and (re-)record each file's cassette")
    source.add_argument("--replay", action="store_true",
                        help="replay only; a file without a cassette is an error (default when one exists)")
    source.add_argument("--live", action="store_true", help="run live even where a cassette exists")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run every case N times and report each case's pass rate (for live runs)")
    p.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML")
    p.add_argument("--coverage", action="store_true",
                   help="report responses emitted, decision paths taken and said questions answered both ways")
    p.add_argument("--coverage-json", metavar="FILE", help="write the coverage as JSON (implies --coverage)")
    p.add_argument("--fail-under", type=float, metavar="PCT",
                   help="exit 1 when fewer than PCT%% of the approved responses were emitted")
    p.add_argument("-q", "--quiet", action="store_true", help="print failures and the summary only")
    p.add_argument("--json", action="store_true",
                   help=f"print one JSON object for scripts and CI instead ({JSON_SCHEMA}: source, mode, ok, "
                        "counts, and per case file, name, status, mismatch, error; coverage when asked for)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..testing import run_tests, write_junit

    if args.repeat < 1:
        raise DialogueError("--repeat takes a number of runs, 1 or more")
    paths = tests_files(args.paths)
    coverage = bool(args.coverage or args.coverage_json or args.fail_under is not None)
    replay = True if args.replay else False if (args.live or args.backend) else None
    color = color_enabled()
    progress = None if args.json else (lambda result: _print_result(result, args.quiet, color))
    outcome = run_tests(paths, backend=args.backend, mode=args.mode, k=args.k, record=args.record,
                        replay=None if args.record else replay, coverage=coverage, repeat=args.repeat,
                        understanding=args.understanding, progress=progress)
    if args.junit:
        write_junit(outcome, args.junit)
    if coverage and args.coverage_json:
        Path(args.coverage_json).write_text(json.dumps(outcome.coverage.as_dict(), indent=2) + "\n",
                                            encoding="utf-8")
    under = coverage and args.fail_under is not None and outcome.coverage.percent < args.fail_under
    status = 0 if outcome.results and outcome.ok and not under else 1
    if args.json:
        print_json(as_json(outcome, coverage))
    else:
        _print_report(outcome, args, coverage, under)
    return status


def _print_report(outcome, args: argparse.Namespace, coverage: bool, under: bool) -> None:
    print(_summary(outcome))
    if args.repeat > 1:
        _print_rates(outcome)
    if coverage:
        print(outcome.coverage.report())
    if under:
        print(f"response coverage {outcome.coverage.percent:.0f}% is under {args.fail_under:g}%")


def as_json(outcome, coverage: bool) -> dict:
    """The `--json` shape: the summary and every case result, as data."""
    counts: dict[str, int] = {}
    for result in outcome.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return {"schema": JSON_SCHEMA, "source": outcome.source, "mode": outcome.mode,
            "ok": bool(outcome.results) and outcome.ok, "counts": counts,
            "cases": [{"file": shown_path(str(r.file)) if r.file else None, "name": r.name, "status": r.status,
                       "passed": r.passed, "repeat": r.repeat, "mismatch": r.mismatch or None,
                       "error": r.error or None, "xfail": r.xfail, "seconds": round(r.seconds, 3)}
                      for r in outcome.results],
            "coverage": outcome.coverage.as_dict() if coverage else None}


def tests_files(paths: list[str]) -> list[Path]:
    """The tests files named, folders expanded to their *.tests.toml files."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(path.rglob("*.tests.toml"))
        elif path.is_file():
            found.append(path)
        else:
            raise DialogueError(f"{path}: no such file or folder")
    if not found:
        raise DialogueError(f"no *.tests.toml files in {', '.join(paths)}")
    return found


def _print_result(result, quiet: bool, color: bool = False) -> None:
    if quiet and result.ok:
        return
    repeat = f" [{result.repeat + 1}]" if result.repeat else ""
    style = "pass" if result.ok else "fail"
    print(paint(f"{result.status:5}", style, color) + f" {result.name}{repeat}")
    if result.xfail is not None and not result.passed:
        print(f"      known miss: {result.xfail}")
    elif not result.passed:
        for line in result.mismatch.splitlines():
            print(f"      {line}")


def _summary(outcome) -> str:
    counts = {}
    for result in outcome.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    parts = [f"{counts[s]} {word}" for s, word in (("pass", "passed"), ("FAIL", "failed"), ("ERROR", "errors"),
                                                   ("xfail", "known misses"), ("XPASS", "passed unexpectedly"))
             if counts.get(s)]
    how = f"{outcome.source}, {outcome.mode}" if outcome.source else ""
    return f"{', '.join(parts) or 'no cases'} ({how})"


def _print_rates(outcome) -> None:
    rates = outcome.pass_rates()
    print("pass rate per case:")
    total_passed = total_runs = 0
    for (_, name), (passed, runs) in rates.items():
        total_passed, total_runs = total_passed + passed, total_runs + runs
        print(f"  {100 * passed / runs:5.0f}%  {passed}/{runs}  {name}")
    if total_runs:
        print(f"  {100 * total_passed / total_runs:5.0f}%  {total_passed}/{total_runs}  all")
