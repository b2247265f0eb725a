"""The engine's own work, without the model: constraint build, validation, exploration, prompt.

Constraint build is compared with outlines-core compiling the same alternatives as one
regex (the issue's measured alternative); validation, exploration and prompt build are
reported against their targets and against one forward step of the model measured in
this run, so a reader sees what share of a turn they cost.
"""

from __future__ import annotations

from common import POLICIES, Context, clock, clock_batch, median
from generated import nested_policy, response_ids


def run(ctx: Context) -> None:
    constraint_build(ctx)
    validation(ctx)
    exploration(ctx)
    prompt_build(ctx)


# -- constraint build -------------------------------------------------------------------------

def constraint_build(ctx: Context) -> None:
    from dialogue.backends.base import Constraint
    from dialogue.grammar import constraint_for, reply_grammar
    from dialogue.reply import Reply

    backend = ctx.backend()
    sizes = (10, 100) if ctx.quick else (10, 100, 1000, 10000)
    outlines_sizes = (10, 100) if ctx.quick else (10, 100, 1000, 10000)
    for n in sizes:
        replies = [Reply(rid) for rid in response_ids(n)]

        def build(replies=replies):
            constraint = constraint_for(replies)
            reply_grammar(constraint)
            backend._trie(constraint)
            return constraint

        def cold(build=build):
            _clear_constraint_caches(backend)
            build()

        cold_s = clock(cold, repeat=1 if n >= 1000 else 3, warmup=0)
        copies = [list(replies) for _ in range(3)]  # equal sets, fresh lists: what a new turn passes
        cached_s = clock(lambda: build(copies[0]), repeat=20 if n < 10000 else 10)
        ctx.sample(f"constraint_cold_{n}", cold_s)
        ctx.sample(f"constraint_cached_{n}", cached_s)
        baseline = None
        if n in outlines_sizes:
            regex = Constraint.choice([r.id for r in replies]).regex()
            backend._outlines_vocabulary()  # built once per model; not part of the index
            baseline = median(clock(lambda: _outlines_index(backend, regex), repeat=1, warmup=0))
            ctx.sample(f"outlines_regex_index_{n}", [baseline])
        cold_m, cached_m = median(cold_s), median(cached_s)
        target = met = None
        if n == 10000:
            target, met = "<= 1 s", cold_m <= 1.0
        ctx.row("constraint", f"build, {n} responses, cold", cold_m, "s",
                baseline=f"outlines regex index {baseline:.3g} s" if baseline else "",
                ratio=baseline / cold_m if baseline else None, target=target or "", met=met,
                note="ratio = baseline / engine")
        ctx.row("constraint", f"build, {n} responses, cached", cached_m, "s",
                target="<= 1 ms" if n == 10000 else "", met=cached_m <= 1e-3 if n == 10000 else None,
                ratio=cold_m / cached_m, baseline="cold", note="ratio = cold / cached")
        ctx.tick(f"constraint build {n}")


def _clear_constraint_caches(backend) -> None:
    from dialogue import grammar

    for name in ("reply_grammar", "constraint_for"):
        fn = getattr(grammar, name)
        clear = getattr(fn, "cache_clear", None)
        if clear:
            clear()
    backend._tries.clear()
    grammar.clear_caches()


def _outlines_index(backend, regex: str):
    from outlines_core import Index

    return Index(regex, backend._outlines_vocabulary())


# -- validation -------------------------------------------------------------------------------

def validation(ctx: Context) -> None:
    """Parse one raw output under the turn's grammar and check its slots, as the engine does."""
    from dialogue import explore, load_policy
    from dialogue.grammar import constraint_for, display, reply_grammar

    cases = {"blacksmith": ({"gold": 60}, "OFFER(item=sword, price=50)"),
             "refunds": ({}, "CHECK_ZIP(zip=94107)")}
    for name, (state, raw) in cases.items():
        policy = load_policy(POLICIES[name])
        exploration = explore(policy, state)
        constraint = constraint_for(exploration.reachable, policy.catalog)
        grammar = reply_grammar(constraint)

        def validate():
            index, holes = grammar.parse(raw)
            target = exploration.reachable[index]
            for line in target.lines:
                policy.catalog.check_slots(line.id, line.slots if not holes else {"zip": holes[0]})

        assert raw in [display(a) for a in constraint.alternatives] or name == "refunds"
        samples = clock_batch(validate, calls=50 if ctx.quick else 500, rounds=5 if ctx.quick else 15)
        ctx.sample(f"validation_{name}", samples)
        m = median(samples)
        kind = "regex hole" if constraint.is_choice is False else "choice"
        ctx.row("validation", f"per turn, {name} ({kind}, {len(constraint.alternatives)} replies)", m, "s",
                target="<= 50 µs", met=m <= 50e-6)
        ctx.tick(f"validation {name}")


# -- exploration ------------------------------------------------------------------------------

def exploration(ctx: Context) -> None:
    from dialogue import explore, load_policy

    depths = (2, 10) if ctx.quick else (2, 4, 6, 8, 10, 12)
    for tree in (False, True):
        for depth in depths:
            policy = load_policy(nested_policy(depth, tree=tree))
            samples = clock(lambda: explore(policy), repeat=3 if ctx.quick or (tree and depth >= 10) else 10)
            ctx.sample(f"explore_{'tree' if tree else 'chain'}_{depth}", samples)
            m = median(samples)
            # A chain of `depth` nested said is a `depth`-decision policy (the target's case); a full
            # tree of that depth has 2**depth - 1 said calls in its code and 2**depth paths.
            label = (f"tree of depth {depth} ({2 ** depth - 1} said, {2 ** depth} paths)" if tree
                     else f"{depth} nested said ({depth + 1} paths)")
            is_target = depth == 10 and not tree
            ctx.row("exploration", label, m, "s",
                    target="<= 20 ms" if is_target else "", met=(m <= 0.020) if is_target else None)
            ctx.tick(f"explore {'tree' if tree else 'chain'} {depth}")
    for name, path in POLICIES.items():
        policy = load_policy(path)
        samples = clock(lambda: explore(policy), repeat=5 if ctx.quick else 30)
        ctx.sample(f"explore_{name}", samples)
        ctx.row("exploration", f"{name} policy, default state", median(samples), "s")
        ctx.tick(f"explore {name}")


# -- prompt build -----------------------------------------------------------------------------

def prompt_build(ctx: Context) -> None:
    from dialogue import explore, load_policy
    from dialogue.grammar import constraint_for, display
    from dialogue.prompt import HistoryLine, build_prompt, static_prefix

    for name, path in POLICIES.items():
        policy = load_policy(path)
        state = policy.new_state({})
        allowed = [display(a) for a in constraint_for(explore(policy, state).reachable, policy.catalog).alternatives]
        history = [HistoryLine("hello there", allowed[0])] * 6
        static_prefix(policy)
        samples = clock_batch(lambda: build_prompt(policy, state, history, "do you sell swords?", allowed),
                              calls=50 if ctx.quick else 500, rounds=5 if ctx.quick else 15)
        ctx.sample(f"prompt_{name}", samples)
        ctx.row("prompt", f"build, {name} (6 turns of history)", median(samples), "s")
        ctx.tick(f"prompt {name}")
