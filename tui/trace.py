"""A turn's trace as Rich text: what was reachable, what the model chose, and why."""

from __future__ import annotations

from rich.text import Text

from dialogue.engine import Turn

MASKED = "··· ms"


def latency(turn: Turn, *, masked: bool = False) -> str:
    """The turn's total time, or a fixed mask (screenshots and snapshot tests)."""
    if masked:
        return MASKED
    return f"{1000 * turn.trace.timings.get('total_s', 0.0):.0f} ms"


def summary(turn: Turn, *, masked: bool = False) -> Text:
    """One line under a reply: the id, latency, model calls, how many replies were allowed."""
    t = turn.trace
    out = Text(turn.reply.id, style="bold")
    out.append(f"  {latency(turn, masked=masked)}  {t.model_calls} call{'s' * (t.model_calls != 1)}",
               style="dim")
    if t.reachable:
        out.append(f"  {len(t.reachable)} allowed", style="dim")
    if t.retries:
        out.append(f"  {t.retries} retr{'ies' if t.retries > 1 else 'y'}", style="yellow")
    if t.fallback:
        out.append("  FALLBACK", style="bold red")
    return out


def details(turn: Turn, *, masked: bool = False) -> Text:
    """The whole trace of a turn, a few labelled sections."""
    t = turn.trace
    out = Text()
    _section(out, "chosen")
    out.append(" + ".join(_line(line) for line in turn.lines) + "\n", style="bold green")
    if t.reachable:
        _section(out, f"allowed ({len(t.reachable)})")
        picked = t.raw[-1] if t.valid and t.raw and not t.steps else None
        for alternative in t.reachable:
            if alternative == picked:
                out.append(f"> {alternative}\n", style="bold green")
            else:
                out.append(f"  {alternative}\n")
    if t.steps:
        _section(out, "questions")
        for step in t.steps:
            out.append(f"  {step['question']}\n")
            out.append(f"    -> {step['answer']}\n", style="cyan")
    elif t.path:
        _section(out, "path")
        for step in t.path:
            out.append(f"  {step}\n")
    if t.raw:
        _section(out, "model output")
        for raw in t.raw:
            out.append(f"  {raw!r}\n", style="magenta")
    _section(out, "validation")
    out.append(f"  {'valid' if t.valid else 'invalid'}, {t.retries} retr{'y' if t.retries == 1 else 'ies'}\n")
    for error in t.validation_errors:
        out.append(f"  {error}\n", style="yellow")
    if t.fallback:
        out.append(f"  fallback: {t.fallback_reason}\n", style="bold red")
    _section(out, "cost")
    out.append(f"  {latency(turn, masked=masked)}, {t.model_calls} model call"
               f"{'s' * (t.model_calls != 1)}\n")
    out.append(f"  tokens new {t.tokens_new}, reused {t.tokens_reused}, forced {t.tokens_forced}\n")
    if t.backend:
        out.append(f"  {t.backend} {t.model}\n", style="dim")
    return out


def _section(out: Text, title: str) -> None:
    out.append(f"{title}\n", style="bold underline")


def _line(line: dict) -> str:
    slots = ", ".join(f"{k}={v}" for k, v in line["slots"].items())
    return f"{line['id']}({slots})" if slots else line["id"]
