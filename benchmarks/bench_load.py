"""Throughput with 1, 4 and 16 concurrent sessions on one engine, and memory per live session.

The scripted backend shows the engine's own overhead (a turn without a model); the
embedded model shows what the model costs on top, compared with the floor of a warm
turn measured in this run (one prefill of a short message, one forward step).
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc

from common import POLICIES, Context, median, rss_bytes

MESSAGES = ["hello there", "do you sell swords?", "I need nails", "any rumours?", "can you fix my axe?",
            "bye", "got work for me?", "how much for a shield?"]


def run(ctx: Context) -> None:
    scripted_throughput(ctx)
    embedded_throughput(ctx)
    memory(ctx)


def _cycling_backend():
    """A scripted backend that answers each call with the next admitted reply, in turn."""
    from dialogue import ScriptedBackend

    counter = iter(range(1 << 62))

    def answer(prompt, constraint):
        alt = constraint.alternatives[next(counter) % len(constraint.alternatives)]
        return "".join(p if isinstance(p, str) else "" for p in alt)

    return ScriptedBackend(answer, strict=False)  # a hole left empty is the engine's to refuse


def _drive(engine, sessions: int, turns: int) -> float:
    """Turns per second with `sessions` sessions, each on its own thread, `turns` turns in all."""
    each = max(1, turns // sessions)
    live = [engine.session(f"load-{time.perf_counter_ns()}-{i}") for i in range(sessions)]

    def work(session) -> None:
        for j in range(each):
            session.say(MESSAGES[j % len(MESSAGES)])

    threads = [threading.Thread(target=work, args=(s,)) for s in live]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return each * sessions / (time.perf_counter() - t)


def scripted_throughput(ctx: Context) -> None:
    from dialogue import Engine, load_policy

    policy = load_policy(POLICIES["blacksmith"])
    turns = 400 if ctx.quick else 4000
    for sessions in (1, 4, 16):
        engine = Engine(policy, backend=_cycling_backend())
        _drive(engine, sessions, 64)  # warm the exploration and grammar caches
        rates = [_drive(engine, sessions, turns) for _ in range(3)]
        ctx.sample(f"scripted_turns_per_s_{sessions}", rates)
        rate = median(rates)
        ctx.row("throughput", f"scripted backend, {sessions} session(s)", rate, "turns/s",
                baseline="2,000 turns/s", ratio=rate / 2000, target=">= 2,000 turns/s", met=rate >= 2000,
                note="engine overhead only; threads share one core (GIL)")
        ctx.tick(f"scripted throughput x{sessions}")


def embedded_throughput(ctx: Context) -> None:
    from dialogue import Engine, load_policy

    backend = ctx.backend()
    policy = load_policy(POLICIES["blacksmith"])
    engine = Engine(policy, backend=backend, understanding="model")
    engine.session("load-prime").say("hello")
    single = None
    for sessions in ((1, 4) if ctx.quick else (1, 4, 16)):
        turns = sessions * (1 if ctx.quick else 3)
        rate = _drive(engine, sessions, turns)
        single = single or rate
        ctx.sample(f"embedded_turns_per_s_{sessions}", [rate])
        ctx.row("throughput", f"embedded model, {sessions} session(s)", rate, "turns/s",
                baseline="1 session", ratio=rate / single,
                note="one model: turns serialise on it; see the turn rows for engine / floor")
        ctx.tick(f"embedded throughput x{sessions}")


def memory(ctx: Context) -> None:
    from dialogue import Engine, load_policy

    policy = load_policy(POLICIES["blacksmith"])
    engine = Engine(policy, backend=_cycling_backend())
    results = {}
    for count in (1, 1000):
        gc.collect()
        rss_before = rss_bytes()
        tracemalloc.start()
        start, _ = tracemalloc.get_traced_memory()
        for i in range(count):
            engine.session(f"mem-{count}-{i}").say(MESSAGES[i % len(MESSAGES)])
        gc.collect()
        used, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results[count] = (used - start, rss_bytes() - rss_before)
    ctx.sample("memory", {str(k): {"python_heap_bytes": v[0], "rss_delta_bytes": v[1]} for k, v in results.items()})
    per = results[1000][0] / 1000
    ctx.row("memory", "1 live session (one turn each), Python heap", results[1][0], "bytes")
    ctx.row("memory", "1,000 live sessions, Python heap", results[1000][0], "bytes",
            baseline="1 session", ratio=results[1000][0] / max(results[1][0], 1),
            note=f"{per / 1024:.1f} KiB per session; RSS +{results[1000][1] / 2**20:.1f} MiB (process "
                 f"{rss_bytes() / 2**20:.0f} MiB with the model)")
    ctx.tick("memory")
