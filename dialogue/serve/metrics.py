"""Prometheus text metrics: turns, fallbacks, latency per policy and stage, turns in flight."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
Labels = tuple[tuple[str, str], ...]


class Metrics:
    """The server's counters, gauges and histograms, safe to update from threads."""

    HELP = {
        "dialogue_turns_total": ("counter", "Turns taken, per policy."),
        "dialogue_fallbacks_total": ("counter", "Turns answered with the catalog's fallback line, per policy."),
        "dialogue_errors_total": ("counter", "Requests answered with an error, per error code."),
        "dialogue_turns_in_flight": ("gauge", "Turns running now, per policy."),
        "dialogue_turn_seconds": ("histogram", "Seconds a turn spent, per policy and stage "
                                               "(request: the whole HTTP request)."),
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._histograms: dict[Labels, list] = {}  # labels -> [bucket counts..., sum, count]

    def add(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0.0) + amount

    def observe(self, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts = self._histograms.setdefault(key, [0] * len(BUCKETS) + [0.0, 0])
            index = bisect.bisect_left(BUCKETS, seconds)
            if index < len(BUCKETS):
                counts[index] += 1
            counts[-2] += seconds
            counts[-1] += 1

    def turn(self, policy: str, timings: dict[str, float], fallback: bool) -> None:
        """Count a finished turn and its stages (trace timings such as explore_s, match_s)."""
        self.add("dialogue_turns_total", policy=policy)
        if fallback:
            self.add("dialogue_fallbacks_total", policy=policy)
        for stage, seconds in timings.items():
            self.observe(seconds, policy=policy, stage=stage.removesuffix("_s"))

    def render(self) -> str:
        """The exposition text (Prometheus format 0.0.4)."""
        with self._lock:
            values = {name: dict(series) for name, series in self._values.items()}
            histograms = {key: list(counts) for key, counts in self._histograms.items()}
        out: list[str] = []
        for name, (kind, text) in self.HELP.items():
            out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            if kind == "histogram":
                out += _histogram_lines(name, histograms)
            else:
                out += [f"{name}{_labels(key)} {_number(v)}" for key, v in sorted(values.get(name, {}).items())]
        return "\n".join(out) + "\n"


def _histogram_lines(name: str, histograms: dict[Labels, list]) -> list[str]:
    out = []
    for key, counts in sorted(histograms.items()):
        running = 0
        for bound, count in zip(BUCKETS, counts):
            running += count
            out.append(f"{name}_bucket{_labels(key + (('le', repr(bound)),))} {running}")
        out.append(f"{name}_bucket{_labels(key + (('le', '+Inf'),))} {counts[-1]}")
        out.append(f"{name}_sum{_labels(key)} {_number(counts[-2])}")
        out.append(f"{name}_count{_labels(key)} {counts[-1]}")
    return out


def _labels(key: Labels) -> str:
    if not key:
        return ""
    escaped = (v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') for _, v in key)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(key, escaped)) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)
