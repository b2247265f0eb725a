"""Shared pieces of the benchmark suite: timing, a progress bar, results, the model.

Every figure the suite reports is a ratio against a baseline measured in the same run
on the same machine: the machines this runs on are shared and noisy, so absolute
times are recorded (in the JSON) but never judged alone.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
POLICIES = {name: ROOT / "dialogue" / "examples" / "policies" / f"{name}.py" for name in ("blacksmith", "refunds")}
UNDERSTANDING = ROOT / "tests" / "data" / "understanding"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def clock(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> list[float]:
    """Seconds per call of `fn`, `repeat` samples after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
    finally:
        if gc_was:
            gc.enable()
    return samples


def clock_batch(fn: Callable[[], Any], calls: int, rounds: int) -> list[float]:
    """Seconds per call of a fast `fn`, each sample the mean over `calls` calls."""
    fn()
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - t) / calls)
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def rss_bytes() -> int:
    """Resident memory of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Progress:
    """A one-line progress bar on stderr: `advance(label)` after each unit of work."""

    def __init__(self, total: int, *, stream=sys.stderr) -> None:
        self.total, self.done, self.stream = max(total, 1), 0, stream
        self.started = time.perf_counter()
        self.tty = stream.isatty()

    def advance(self, label: str, units: int = 1) -> None:
        self.done = min(self.total, self.done + units)
        width = 28
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        line = (f"[{bar}] {self.done:>3}/{self.total} {time.perf_counter() - self.started:6.1f}s "
                f"{label[:60]}")
        if self.tty:
            self.stream.write("\r" + line.ljust(110))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Row:
    """One line of the table: a measure, its value, the baseline it is compared with."""

    group: str
    measure: str
    value: float
    unit: str
    baseline: str = ""
    ratio: float | None = None  # value / baseline, or baseline / value for speed-ups (see `better`)
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Context:
    """What every benchmark gets: the size switch, the progress bar, the shared model."""

    quick: bool
    progress: Progress | None = None
    rows: list[Row] = field(default_factory=list)
    samples: dict[str, Any] = field(default_factory=dict)
    _backend: Any = None

    def row(self, *args: Any, **kwargs: Any) -> Row:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        return row

    def sample(self, key: str, values: Any) -> None:
        self.samples[key] = values

    def tick(self, label: str) -> None:
        if self.progress is not None:
            self.progress.advance(label)

    def backend(self):
        """The embedded backend (SmolLM2-135M on llama.cpp), loaded once for the whole run."""
        if self._backend is None:
            from dialogue.backends.llamacpp import LlamaCppBackend

            self._backend = LlamaCppBackend()
        return self._backend

    def raw_llama(self, **options: Any):
        """A second, plain `llama_cpp.Llama` on the same GGUF, for baselines."""
        import llama_cpp

        from dialogue.backends.llamacpp import _threads, default_model_path

        return llama_cpp.Llama(str(default_model_path()), n_ctx=8192, n_threads=_threads(), n_batch=512,
                               verbose=False, **options)


def fmt_seconds(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"
