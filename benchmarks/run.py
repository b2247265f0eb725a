"""Run the benchmark suite: `python benchmarks/run.py [--quick] [--readme]`.

Prints a table, writes every sample to benchmarks/results/<date>.json (and latest.json),
and with --readme rewrites the results block of README.md between its markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, ROOT, Context, Progress, Row, fmt_seconds  # noqa: E402

# module, progress units at quick size, at full size
SUITES = [("bench_core", 16, 26), ("bench_load", 6, 7), ("bench_turn", 4, 34), ("bench_store", 1, 1),
          ("bench_understanding", 23, 25), ("bench_serve", 4, 4)]
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark at toy size")
    parser.add_argument("--readme", action="store_true", help="rewrite the results block in README.md")
    parser.add_argument("--only", action="append",
                        help="run only these modules (e.g. bench_core, or understanding for bench_understanding)")
    args = parser.parse_args(argv)
    suites = [s for s in SUITES if not args.only or s[0] in args.only or s[0].removeprefix("bench_") in args.only]
    ctx = Context(quick=args.quick)
    ctx.progress = Progress(sum(q if args.quick else f for _, q, f in suites))
    started = time.perf_counter()
    ran = []
    for module_name, _, _ in suites:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # bench_store is written separately; run it when present
        if module_name == "bench_store":
            _store(ctx, module)
        else:
            module.run(ctx)
        ran.append(module_name)
    ctx.progress.close()
    peers = _peers()
    if peers:
        ctx.rows.extend(Row(**r) for r in peers["rows"])
    report = _report(ctx, ran, time.perf_counter() - started, peers)
    path = _write(report, args.quick)
    print(table(ctx.rows))
    print(f"\nsamples: {path.relative_to(ROOT)}  ({report['seconds']:.0f} s)")
    if args.readme:
        update_readme(report)
        print("README.md results block rewritten")
    return 0


def _store(ctx: Context, module) -> None:
    """Run the store benchmark (store on vs off) and fold its figures into the table."""
    result = module.run(ctx.quick)
    ctx.sample("store", result)
    for row in result.get("rows", []) if isinstance(result, dict) else []:
        ctx.row(**{"group": "store", **row})
    if isinstance(result, dict) and "rows" not in result:
        for key, value in result.items():
            if isinstance(value, (int, float)):
                ctx.row("store", key, float(value), "")
    ctx.tick("store")


def _peers() -> dict | None:
    path = RESULTS / "peers.json"
    return json.loads(path.read_text()) if path.is_file() else None


def machine() -> dict:
    import llama_cpp
    import outlines

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version(),
            "load_average": os.getloadavg()[0],
            "versions": {name: version(name) for name in
                         ("dialogue", "llama_cpp_python", "outlines", "outlines_core", "lark", "pydantic")},
            "llama_cpp": getattr(llama_cpp, "__version__", ""), "outlines": getattr(outlines, "__version__", "")}


def _report(ctx: Context, ran: list[str], seconds: float, peers: dict | None) -> dict:
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "quick": ctx.quick,
            "suites": ran, "seconds": seconds, "machine": machine(),
            "rows": [asdict(r) for r in ctx.rows], "samples": ctx.samples,
            "peers": peers}


def _write(report: dict, quick: bool) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = report["date"].replace(":", "").replace("+0000", "Z")
    path = RESULTS / f"{'quick-' if quick else ''}{stamp}.json"
    text = json.dumps(report, indent=1, default=str)
    path.write_text(text)
    (RESULTS / ("latest-quick.json" if quick else "latest.json")).write_text(text)
    return path


def _value(row: Row) -> str:
    if row.unit == "s":
        return fmt_seconds(row.value)
    if row.unit == "bytes":
        return f"{row.value / 2**20:.2f} MiB" if row.value >= 2**20 else f"{row.value / 1024:.1f} KiB"
    if row.unit == "fraction":
        return f"{row.value:.0%}"
    if row.unit == "turns/s":
        return f"{row.value:,.1f} turns/s"
    return f"{row.value:.4g} {row.unit}".strip()


def _ratio(row: Row) -> str:
    return "" if row.ratio is None else f"{row.ratio:.2f}x" if row.ratio < 100 else f"{row.ratio:,.0f}x"


def _met(row: Row) -> str:
    return "" if row.met is None else "met" if row.met else "MISSED"


def table(rows: list[Row], markdown: bool = False) -> str:
    head = ["group", "measure", "value", "ratio", "against", "target", "", "note"]
    body = [[r.group, r.measure, _value(r), _ratio(r), r.baseline, r.target, _met(r), r.note] for r in rows]
    if markdown:
        body = [[c.replace("|", "\\|") for c in line] for line in body]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(line) + " |" for line in body]
        return "\n".join(lines)
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head) - 1)]
    out = []
    for line in [head, *body]:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(line, widths)) + "  " + line[-1])
        if line is head:
            out.append("-" * min(160, sum(widths) + 2 * len(widths) + 10))
    return "\n".join(out)


def update_readme(report: dict) -> None:
    """Rewrite README.md between the bench markers with this run's table."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + "\n" + readme_block(report) + "\n" + END + tail)


def readme_block(report: dict) -> str:
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    rows = [Row(**r) for r in report["rows"]]
    size = "at toy size (`make bench-quick`)" if report["quick"] else "at full size (`make bench`)"
    return (f"Measured {size} {report['date'][:10]} on {m['cpu']} ({m['cores']} cores, load average "
            f"{m['load_average']:.1f} at the end: a shared machine), Python {m['python']}; {versions}. "
            "Every ratio compares figures taken in the same run; `make bench` regenerates this block.\n\n"
            + table(rows, markdown=True))


if __name__ == "__main__":
    sys.exit(main())
