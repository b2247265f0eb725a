"""Understanding: which reachable reply fits, chosen by the encoder's matcher, by the language
model (the previous engine) or by both (hybrid), and what the matcher costs.

All figures come from one run:

- accuracy on the dev messages (tests/data/understanding) and on a second held-out set that
  nobody tunes against (benchmarks/data/heldout), per policy, mode and understanding. The
  encoder runs every message; "model" (the previous behaviour: the language model picks)
  and "hybrid" (the model picks among the matcher's best candidates) run an evenly spaced
  sample of each set, and their ratio is taken against the encoder on that same sample;
- a 77-topic banking front door (benchmarks/data/frontdoor): accuracy against a 1-nearest-
  example baseline on the same encoder, load time with a cold and a warm matcher cache,
  memory, matcher and turn latency, and accuracy after 0, 1, 2, 3 and 5 reviewed
  corrections per topic (frontdoor.pool.toml as a frontdoor.examples.toml), and the learning
  loop on held-out-like traffic (one half of the held-out set corrected, the other measured);
- a generated policy with 1,000 catalog lines: load time, turn latency, memory;
- the warm turn of a policy without extracted values (blacksmith) and the cold start of a
  fresh process (import, load, first reply), each by wall time.

Held-out messages are never written to the results: only their index, expected and chosen
reply. The matcher cache (DIALOGUE_CACHE_DIR) is a temporary folder per phase.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import ROOT, UNDERSTANDING, Context, median, rss_bytes

HELDOUT = ROOT / "benchmarks" / "data" / "heldout"
FRONTDOOR = ROOT / "benchmarks" / "data" / "frontdoor"
POLICY_FILES = {"blacksmith": ROOT / "dialogue" / "examples" / "policies" / "blacksmith.py", "refunds": ROOT / "dialogue" / "examples" / "policies" / "refunds.py",
                "card_block": ROOT / "dialogue" / "examples" / "policies" / "card_block.tree.toml"}
MODES = ("prompted", "executed")
TARGET_ACCURACY = 0.90
TARGET_MATCH_S = 0.010
TARGET_WARM_S = 0.030
TARGET_COLD_S = 5.0
CORRECTIONS = (0, 1, 2, 3, 5)


def _size(ctx: Context) -> dict[str, Any]:
    """Toy sizes for --quick (CI, two cores, no GPU), full sizes otherwise. At toy size the
    language model (model, hybrid) runs on a generated three-question policy only: a real
    policy's first prompted turn prefills thousands of tokens."""
    if ctx.quick:
        return {"cases": 2, "model_cases": 1, "model_policies": ("toy",), "frontdoor_cases": 12,
                "corrections": (0, 1), "shop_lines": 100, "shop_turns": 2, "warm_turns": 3,
                "cold_policies": ("blacksmith",), "knn": False}
    return {"cases": None, "model_cases": 12, "model_policies": tuple(POLICY_FILES), "frontdoor_cases": None,
            "corrections": CORRECTIONS, "shop_lines": 1000, "shop_turns": 4, "warm_turns": 20,
            "cold_policies": ("blacksmith", "refunds"), "knn": True}


def units(quick: bool) -> int:
    """Progress units of one run (run.py's bar)."""
    size = _size(Context(quick=quick))
    combos = sum(1 for name in POLICY_FILES for _ in _sets(name)) + (1 if quick else 0)
    return 1 + 3 + len(size["corrections"]) + 2 + 2 + combos * len(MODES) + 1 + 1 + len(size["cold_policies"])


def run(ctx: Context) -> None:
    size = _size(ctx)
    root = Path(tempfile.mkdtemp(prefix="dialogue-bench-understanding-"))
    saved = os.environ.get("DIALOGUE_CACHE_DIR")
    try:
        encoder_load(ctx, root)
        frontdoor(ctx, root, size)
        corrections(ctx, root, size)
        reviewed_traffic(ctx, root, size)
        catalog_scale(ctx, root, size)
        model_warm = accuracy(ctx, root, size)
        warm_turn(ctx, root, size, model_warm)
        cold_start(ctx, root, size)
    finally:
        if saved is None:
            os.environ.pop("DIALOGUE_CACHE_DIR", None)
        else:
            os.environ["DIALOGUE_CACHE_DIR"] = saved
        shutil.rmtree(root, ignore_errors=True)


# -- helpers ------------------------------------------------------------------------------


@contextmanager
def _cache(root: Path, name: str):
    """DIALOGUE_CACHE_DIR set to root/name (created empty if new) for the block."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    before = os.environ.get("DIALOGUE_CACHE_DIR")
    os.environ["DIALOGUE_CACHE_DIR"] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop("DIALOGUE_CACHE_DIR", None)
        else:
            os.environ["DIALOGUE_CACHE_DIR"] = before


class _NoModel:
    """A backend that must not be called: encoder turns of policies without extracted
    values never need the language model, and this proves it (and keeps its memory out)."""

    name = "none"
    model = "none"

    def generate(self, prompt, constraint):
        raise AssertionError("the language model was called on an encoder turn without extracted values")


class _LazyModel:
    """The run's embedded model, loaded on the first call that needs it: encoder turns whose
    extracted values the message decides never load it."""

    name = "llamacpp"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def model(self) -> str:  # read into every trace: answered without loading the model
        loaded = self._ctx._backend
        return getattr(loaded, "model", "") if loaded is not None else ""

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(self._ctx.backend(), attribute)


def _cases(path: Path) -> list[dict]:
    return tomllib.loads(path.read_text(encoding="utf-8"))["case"]


def _sets(name: str) -> list[tuple[str, Path]]:
    found = [("dev", UNDERSTANDING / f"{name}.toml"), ("held-out", HELDOUT / f"{name}.toml")]
    return [(label, path) for label, path in found if path.is_file()]


def _policies(ctx: Context, root: Path) -> list[tuple[str, Path, list[tuple[str, list[dict]]]]]:
    """(name, policy file, [(set label, cases)]) for the accuracy runs."""
    found = [(name, path, [(label, _cases(file)) for label, file in _sets(name)])
             for name, path in POLICY_FILES.items()]
    if ctx.quick:
        from generated import nested_policy

        folder = root / "toy"
        folder.mkdir()
        found.append(("toy", nested_policy(3, tree=False, folder=folder),
                      [("toy", [{"message": "question 0, yes", "expect": "LEAF_00001"}])]))
    return found


def _spread(n: int, k: int | None) -> list[int]:
    """`k` indices spread evenly over range(n) (all of them when k is None or >= n)."""
    if k is None or k >= n:
        return list(range(n))
    if k <= 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


_count = 0


def _session(engine, case: dict):
    global _count
    _count += 1
    return engine.session(f"bench-u-{_count}", state=case.get("state"), node=case.get("node"))


def _got(turn) -> str:
    return " + ".join(line.id for line in turn.reply.lines)


def _ok(turn, case: dict) -> bool:
    if _got(turn) != case["expect"]:
        return False
    return all(str(turn.reply.slots.get(k)) == str(v) for k, v in case.get("slots", {}).items())


def _say(engine, case: dict) -> dict:
    """One case on a fresh session: whether the reply was the expected one, and its times."""
    session = _session(engine, case)
    t = time.perf_counter()
    turn = session.say(case["message"])
    wall = time.perf_counter() - t
    trace = turn.trace
    return {"ok": _ok(turn, case), "expect": case["expect"], "got": _got(turn), "wall_s": wall,
            "match_s": trace.timings.get("match_s"), "model_calls": trace.model_calls,
            "fallback": trace.fallback, "understanding": trace.understanding}


def _share(results: list[dict]) -> float:
    return sum(r["ok"] for r in results) / len(results) if results else float("nan")


def _engine(policy, understanding: str, mode: str = "prompted", backend: Any = None):
    from dialogue import Engine

    return Engine(policy, understanding=understanding, mode=mode,
                  backend=backend if backend is not None else _NoModel())


# -- the encoder itself -------------------------------------------------------------------


def encoder_load(ctx: Context, root: Path) -> None:
    """The shared sentence encoder's first load (ONNX session), paid once per process."""
    from dialogue.understanding.encoder import shared_encoder

    gc.collect()
    before = rss_bytes()
    t = time.perf_counter()
    encoder = shared_encoder()
    encoder.embed(["warm up the encoder"])
    seconds = time.perf_counter() - t
    grown = rss_bytes() - before
    t = time.perf_counter()
    for _ in range(20):
        encoder.embed(["how much is a sword in this village?"])
    per_message = (time.perf_counter() - t) / 20
    ctx.sample("understanding_encoder", {"load_s": seconds, "rss_bytes": grown, "embed_s": per_message,
                                         "model": getattr(encoder, "model_id", "")})
    ctx.row("understanding", "encoder load (first embed)", seconds, "s",
            note=f"{getattr(encoder, 'model_id', '')}; RSS +{grown / 2**20:.0f} MiB; one message embedded in "
                 f"{per_message * 1e3:.1f} ms")
    ctx.tick("encoder load")


# -- the front door -----------------------------------------------------------------------


def frontdoor(ctx: Context, root: Path, size: dict) -> None:
    from dialogue import load_policy

    path = FRONTDOOR / "frontdoor.py"
    cases = _cases(FRONTDOOR / "frontdoor.heldout.toml")
    picked = [cases[i] for i in _spread(len(cases), size["frontdoor_cases"])]
    first = {"message": "my card never turned up", "expect": ""}
    loads = {}
    with _cache(root, "frontdoor"):
        for label in ("cold", "warm"):
            gc.collect()
            before = rss_bytes()
            t = time.perf_counter()
            policy = load_policy(path)
            loaded = time.perf_counter() - t
            engine = _engine(policy, "encoder")
            _say(engine, first)
            total = time.perf_counter() - t
            loads[label] = {"load_policy_s": loaded, "first_turn_s": total - loaded, "total_s": total,
                            "rss_bytes": rss_bytes() - before}
        ctx.tick("front door load")
        results = {mode: [] for mode in MODES}
        for mode in MODES:
            engine = _engine(policy, "encoder", mode)
            _say(engine, first)
            results[mode] = [_say(engine, case) for case in picked]
        ctx.tick("front door accuracy")
    knn = _nearest_example(policy, picked) if size["knn"] else None
    ctx.tick("front door baseline")
    ctx.sample("understanding_frontdoor", {"loads": loads, "knn": knn, "cases": len(picked),
                                           "turns": {m: [_public(r, i) for i, r in enumerate(rs)]
                                                     for m, rs in results.items()}})
    cold, warm = loads["cold"], loads["warm"]
    ctx.row("frontdoor", "load + first turn, cold matcher cache", cold["total_s"], "s",
            note=f"load_policy {cold['load_policy_s'] * 1e3:.0f} ms + first turn (matcher fit: embeds the "
                 f"770 examples) {cold['first_turn_s']:.2f} s; encoder already loaded")
    ctx.row("frontdoor", "load + first turn, warm matcher cache", warm["total_s"], "s",
            baseline=f"cold cache {cold['total_s']:.2f} s", ratio=cold["total_s"] / warm["total_s"],
            note="ratio = cold / warm: what the disk cache saves on a restart")
    ctx.row("frontdoor", "memory: load + first turn (RSS delta)", cold["rss_bytes"], "bytes",
            note=f"cold cache; warm cache {warm['rss_bytes'] / 2**20:.1f} MiB")
    for mode in MODES:
        acc = _share(results[mode])
        base = f"1-NN {knn['accuracy']:.0%}" if knn else ""
        ratio = acc / knn["accuracy"] if knn and knn["accuracy"] else None
        ctx.row("frontdoor", f"accuracy, encoder, {mode}", acc, "fraction", baseline=base, ratio=ratio,
                target=">= 90%", met=acc >= TARGET_ACCURACY,
                note=f"{len(picked)} held-out messages, 77 topics, 10 examples each; baseline: nearest example "
                     "by the same encoder")
    if not ctx.quick:  # what the previous engine would have had to prefill
        from dialogue.prompt import static_prefix

        backend = ctx.backend()
        tokens = backend.count_tokens(static_prefix(policy))
        ctx.row("frontdoor", "model understanding: static prompt", tokens, "tokens", target=f"<= {backend.n_ctx}",
                met=tokens <= backend.n_ctx, note="persona, decision code with its 770 examples, catalog; the "
                                                  "previous engine's prompt, before the reachable replies")
    match = median([r["match_s"] for r in results["prompted"] if r["match_s"] is not None])
    turn = median([r["wall_s"] for r in results["prompted"]])
    ctx.row("frontdoor", "matcher per turn (median match_s)", match, "s", target="<= 10 ms",
            met=match <= TARGET_MATCH_S, note="77 reachable replies")
    ctx.row("frontdoor", "warm turn, encoder (wall)", turn, "s", target="<= 30 ms", met=turn <= TARGET_WARM_S,
            note=f"median over {len(picked)} turns, prompted; model calls "
                 f"{sum(r['model_calls'] for r in results['prompted'])}")


def _public(result: dict, index: int) -> dict:
    """A sample without the message: held-out text stays out of the results."""
    return {"case": index, **{k: v for k, v in result.items() if k != "message"}}


def _nearest_example(policy, cases: list[dict]) -> dict:
    """Baseline: the topic of the nearest author example, by cosine on the same encoder."""
    import numpy as np

    from dialogue.understanding.encoder import shared_encoder

    module = policy.module
    texts, labels = [], []
    for topic, messages in module.EXAMPLES.items():
        for message in messages:
            texts.append(message)
            labels.append(module.REPLY_OF[topic])
    encoder = shared_encoder()
    t = time.perf_counter()
    examples = np.asarray(encoder.embed(texts))
    queries = np.asarray(encoder.embed([c["message"] for c in cases]))
    nearest = (queries @ examples.T).argmax(axis=1)
    ok = [labels[j] == c["expect"] for j, c in zip(nearest, cases)]
    return {"accuracy": sum(ok) / len(ok), "seconds": time.perf_counter() - t}


def corrections(ctx: Context, root: Path, size: dict) -> None:
    """Front door accuracy after k reviewed corrections per topic (frontdoor.pool.toml)."""
    from dialogue import load_policy
    from dialogue.understanding.examples import Example, append_examples

    pool = _cases(FRONTDOOR / "frontdoor.pool.toml")
    by_reply: dict[str, list[str]] = {}
    for case in pool:
        by_reply.setdefault(case["expect"], []).append(case["message"])
    cases = _cases(FRONTDOOR / "frontdoor.heldout.toml")
    picked = [cases[i] for i in _spread(len(cases), size["frontdoor_cases"])]
    curve = {}
    for k in size["corrections"]:
        folder = root / f"corrections-{k}"
        folder.mkdir()
        for name in ("frontdoor.py", "frontdoor.toml"):
            shutil.copy(FRONTDOOR / name, folder / name)
        if k:
            append_examples(folder / "frontdoor.examples.toml",
                            [Example(message=m, reply=reply, source="correction")
                             for reply, messages in by_reply.items() for m in messages[:k]],
                            policy_name="frontdoor")
        with _cache(root, "frontdoor"):  # k = 0 has the front door's texts: warm; each k > 0 embeds anew
            t = time.perf_counter()
            engine = _engine(load_policy(folder / "frontdoor.py"), "encoder")
            results = [_say(engine, case) for case in picked]
            curve[k] = {"accuracy": _share(results), "seconds": time.perf_counter() - t,
                        "examples_added": k * len(by_reply)}
        ctx.tick(f"corrections {k}")
    ctx.sample("understanding_corrections", curve)
    base = curve[size["corrections"][0]]["accuracy"]
    last = size["corrections"][-1]
    for k, point in curve.items():
        ctx.row("corrections", f"front door after {k} correction(s) per topic", point["accuracy"], "fraction",
                baseline=f"0 corrections {base:.0%}" if k else "",
                ratio=point["accuracy"] / base if k and base else None,
                target="> 0 corrections" if k == last and k else "",
                met=(point["accuracy"] > base) if k == last and k else None,
                note=f"{point['examples_added']} reviewed examples in frontdoor.examples.toml; {len(picked)} "
                     f"held-out messages; fit + turns {point['seconds']:.1f} s")


def reviewed_traffic(ctx: Context, root: Path, size: dict) -> None:
    """The learning loop on traffic like the held-out messages: the front door's held-out set
    in two halves; a reviewer corrects the replies the engine got wrong in one half (`dialogue
    correct` + `dialogue learn`), and the other half is measured, before and after. Both ways
    round; no message is ever measured by a policy that learned from it."""
    from dialogue import load_policy
    from dialogue.understanding.examples import Example, append_examples

    cases = _cases(FRONTDOOR / "frontdoor.heldout.toml")
    picked = [cases[i] for i in _spread(len(cases), size["frontdoor_cases"])]
    halves = [picked[0::2], picked[1::2]]
    before, after, corrected = [], [], 0
    with _cache(root, "frontdoor"):
        base = _engine(load_policy(FRONTDOOR / "frontdoor.py"), "encoder")
        answered = [[_say(base, case) for case in half] for half in halves]
        ctx.tick("reviewed traffic: first pass")
        for traffic, measured in ((0, 1), (1, 0)):
            wrong = [Example(message=case["message"], reply=case["expect"], source="correction")
                     for case, result in zip(halves[traffic], answered[traffic]) if not result["ok"]]
            corrected += len(wrong)
            folder = root / f"reviewed-{traffic}"
            folder.mkdir()
            for name in ("frontdoor.py", "frontdoor.toml"):
                shutil.copy(FRONTDOOR / name, folder / name)
            if wrong:
                append_examples(folder / "frontdoor.examples.toml", wrong, policy_name="frontdoor")
            learned = _engine(load_policy(folder / "frontdoor.py"), "encoder")
            before += answered[measured]
            after += [_say(learned, case) for case in halves[measured]]
        ctx.tick("reviewed traffic: after corrections")
    was, now = _share(before), _share(after)
    ctx.sample("understanding_reviewed_traffic", {"cases": len(picked), "corrected": corrected,
                                                  "before": was, "after": now})
    ctx.row("corrections", "front door, the other half after correcting one half's wrong replies", now, "fraction",
            baseline=f"before {was:.0%}", ratio=now / was if was else None, target="> before", met=now > was,
            note=f"held-out set in two halves, each way round: {corrected} wrong replies corrected in all "
                 f"({len(picked)} messages); measured only on the half the policy did not learn from")


# -- 1,000 catalog lines ------------------------------------------------------------------


def catalog_scale(ctx: Context, root: Path, size: dict) -> None:
    from dialogue import load_policy
    from generated import shop_policy

    lines = size["shop_lines"]
    folder = root / "shop"
    folder.mkdir()
    path = shop_policy(lines, folder=folder)
    module_items = [f"I'd like the {item}" for item in ("iron sword", "oak bow", "silk cloak", "brass lantern")]
    messages = ["hello there", "bye then", *module_items][:2 + size["shop_turns"]]
    with _cache(root, "shop"):
        gc.collect()
        before = rss_bytes()
        t = time.perf_counter()
        policy = load_policy(path)
        loaded = time.perf_counter() - t
        ctx.tick("1,000 lines: load")
        engine = _engine(policy, "encoder")
        first = _say(engine, {"message": "what does the steel dagger cost?", "expect": ""})
        grown = rss_bytes() - before
        turns = [_say(engine, {"message": m, "expect": ""}) for m in messages]
    ctx.tick("1,000 lines: turns")
    turn = median([r["wall_s"] for r in turns])
    match = median([r["match_s"] for r in turns if r["match_s"] is not None])
    ctx.sample("understanding_catalog_scale", {"lines": lines, "load_policy_s": loaded, "first_turn_s": first["wall_s"],
                                               "rss_bytes": grown, "turns": turns})
    group = f"{lines:,} lines"
    ctx.row(group, "load_policy (checks included)", loaded, "s",
            note=f"generated shop: {lines - 4} items in one said.pick, 2 examples each, + 4 lines")
    ctx.row(group, "first turn (matcher fit, cold cache)", first["wall_s"], "s")
    ctx.row(group, "memory: load + first turn (RSS delta)", grown, "bytes")
    ctx.row(group, "warm turn, encoder (wall)", turn, "s", target="<= 30 ms", met=turn <= TARGET_WARM_S,
            note=f"median of {len(turns)} turns; no extracted values, no model call")
    ctx.row(group, "matcher per turn (median match_s)", match, "s", target="<= 10 ms", met=match <= TARGET_MATCH_S,
            note=f"{lines - 1} reachable replies")


# -- accuracy: encoder, model, hybrid -----------------------------------------------------


def accuracy(ctx: Context, root: Path, size: dict) -> float:
    """Accuracy per policy, set, mode and understanding. Returns the median warm wall time of
    a blacksmith turn with model understanding (prompted), the previous engine's turn."""
    from dialogue import load_policy

    backend = _LazyModel(ctx)
    table: dict[tuple, dict] = {}
    model_walls: list[float] = []
    with _cache(root, "policies"):
        for name, path, sets in _policies(ctx, root):
            policy = load_policy(path)
            with_model = name in size["model_policies"]
            for mode in MODES:
                engines = {"encoder": _engine(policy, "encoder", mode, backend)}
                if with_model and not (ctx.quick and mode == "executed"):  # bench_turn covers it at toy size
                    engines["model"] = _engine(policy, "model", mode, backend)
                    if mode == "prompted":  # executed hybrid turns are the matcher's alone
                        engines["hybrid"] = _engine(policy, "hybrid", mode, backend)
                for label, cases in sets:
                    everything = _spread(len(cases), size["cases"])
                    sample = [i for i in _spread(len(everything), size["model_cases"])]
                    sample = [everything[i] for i in sample]
                    entry = {"n": len(everything), "sample": sample}
                    entry["encoder"] = {i: _say(engines["encoder"], cases[i]) for i in everything}
                    for understanding in ("model", "hybrid"):
                        if understanding in engines:
                            entry[understanding] = {i: _say(engines[understanding], cases[i]) for i in sample}
                    if name == "blacksmith" and mode == "prompted" and "model" in entry:
                        model_walls += [r["wall_s"] for r in entry["model"].values()][1:]  # the first is cold
                    table[(name, label, mode)] = entry
                    ctx.tick(f"accuracy {name} {label} {mode}")
    _accuracy_rows(ctx, table)
    ctx.sample("understanding_accuracy", [
        {"policy": n, "set": s, "mode": m, "n": e["n"], "sample": e["sample"],
         **{u: [{"case": i, **r} for i, r in e[u].items()] for u in ("encoder", "model", "hybrid") if u in e},
         **({"messages": {i: c["message"] for i, c in enumerate(_cases(UNDERSTANDING / f"{n}.toml"))}}
            if s == "dev" else {})}
        for (n, s, m), e in table.items()])
    return median(model_walls) if model_walls else float("nan")


def _on(entry: dict, understanding: str, indices: list[int]) -> float:
    results = entry.get(understanding, {})
    return _share([results[i] for i in indices if i in results])


def _accuracy_rows(ctx: Context, table: dict) -> None:
    for (name, label, mode), e in table.items():
        acc = _share(list(e["encoder"].values()))
        note = f"{e['n']} messages"
        baseline, ratio = "", None
        if "model" in e:
            enc_s, model_s = _on(e, "encoder", e["sample"]), _on(e, "model", e["sample"])
            baseline = f"model {model_s:.0%} (n={len(e['sample'])})"
            ratio = enc_s / model_s if model_s else None
            note += f"; on the model's {len(e['sample'])}: encoder {enc_s:.0%}, model {model_s:.0%}"
            if "hybrid" in e:
                note += f", hybrid {_on(e, 'hybrid', e['sample']):.0%}"
            walls = {u: median([r["wall_s"] for r in e[u].values()]) for u in ("encoder", "model", "hybrid") if u in e}
            note += "; median turn " + ", ".join(f"{u} {w * 1e3:.0f} ms" for u, w in walls.items())
        fallbacks = sum(r["fallback"] for r in e["encoder"].values())
        if fallbacks:
            note += f"; {fallbacks} engine fallback(s)"
        judged = label != "toy"
        ctx.row("understanding", f"{name} {label}, {mode}: encoder accuracy", acc, "fraction", baseline=baseline,
                ratio=ratio, target=">= 90%" if judged else "", met=acc >= TARGET_ACCURACY if judged else None,
                note=note if judged else note + "; a generated toy (quick size): exercises the code paths only")
    for label in ("dev", "held-out"):
        for mode in MODES:
            entries = [e for (n, s, m), e in table.items() if s == label and m == mode]
            if not entries:
                continue
            enc = [r for e in entries for r in e["encoder"].values()]
            paired = [e for e in entries if "model" in e]
            enc_s = _share([e["encoder"][i] for e in paired for i in e["sample"]])
            model_s = _share([r for e in paired for r in e["model"].values()])
            acc = _share(enc)
            ctx.row("understanding", f"all policies {label}, {mode}: encoder accuracy", acc, "fraction",
                    baseline=f"model {model_s:.0%}" if paired else "",
                    ratio=enc_s / model_s if paired and model_s else None,
                    target=">= 90%", met=acc >= TARGET_ACCURACY,
                    note=f"{len(enc)} messages" + (f"; ratio on the {sum(len(e['sample']) for e in paired)} the model "
                                                   f"ran (encoder {enc_s:.0%} there)" if paired else ""))
            hybrid = [r for e in paired if "hybrid" in e for r in e["hybrid"].values()]
            if hybrid:
                h = _share(hybrid)
                ctx.row("understanding", f"all policies {label}, {mode}: hybrid accuracy", h, "fraction",
                        baseline=f"model {model_s:.0%}", ratio=h / model_s if model_s else None,
                        note=f"{len(hybrid)} messages: the model chooses among the matcher's top candidates")


# -- latency: warm turn, cold start -------------------------------------------------------


def warm_turn(ctx: Context, root: Path, size: dict, model_warm: float) -> None:
    """A warm encoder turn of blacksmith (no extracted values: never a model call)."""
    from dialogue import load_policy

    cases = _cases(UNDERSTANDING / "blacksmith.toml")
    with _cache(root, "policies"):
        engine = _engine(load_policy(POLICY_FILES["blacksmith"]), "encoder")
        _say(engine, cases[0])
        walls = []
        for i in range(size["warm_turns"]):
            walls.append(_say(engine, cases[i % len(cases)])["wall_s"])
    turn = median(walls)
    ctx.sample("understanding_warm_turn", {"walls": walls, "model_prompted_wall_s": model_warm})
    have_model = model_warm == model_warm
    ctx.row("latency", "blacksmith warm turn, encoder (wall)", turn, "s",
            baseline=f"model {model_warm * 1e3:.0f} ms" if have_model else "",
            ratio=model_warm / turn if have_model else None, target="<= 30 ms", met=turn <= TARGET_WARM_S,
            note=f"median of {len(walls)} turns; ratio = model (previous engine, prompted, warm) / encoder")
    ctx.tick("warm turn")


COLD_SCRIPT = r"""
import json, sys, time
t = time.perf_counter()
from dialogue import Engine, load_policy
imported = time.perf_counter() - t
if sys.argv[1] != "-":
    policy = load_policy(sys.argv[1])
    turn = Engine(policy).session("cold").say(sys.argv[2])
    print(json.dumps({"import_s": imported, "inner_s": time.perf_counter() - t, "reply": turn.reply.id,
                      "understanding": turn.trace.understanding, "model_calls": turn.trace.model_calls}))
else:
    print(json.dumps({"import_s": imported, "inner_s": imported}))
"""


def _cold_process(policy: str, message: str, cache: Path) -> dict:
    env = {**os.environ, "DIALOGUE_CACHE_DIR": str(cache)}
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", COLD_SCRIPT, policy, message], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"cold start of {policy} failed:\n{done.stderr[-2000:]}")
    return {"wall_s": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def cold_start(ctx: Context, root: Path, size: dict) -> None:
    """A fresh process: import, load the policy, first reply (default Engine), by wall time."""
    floor = _cold_process("-", "", root / "cold-floor")
    ctx.tick("cold start floor")
    messages = {"blacksmith": "hello there", "refunds": "hi, is anyone there?"}
    samples = {"floor": floor}
    for name in size["cold_policies"]:
        cache = root / f"cold-{name}"
        cold = _cold_process(str(POLICY_FILES[name]), messages[name], cache)  # empty matcher cache
        warm = _cold_process(str(POLICY_FILES[name]), messages[name], cache)  # the cache it wrote
        samples[name] = {"cold_cache": cold, "warm_cache": warm}
        ctx.row("latency", f"{name} cold start (fresh process, empty cache)", cold["wall_s"], "s",
                baseline=f"import only {floor['wall_s']:.2f} s", ratio=cold["wall_s"] / floor["wall_s"],
                target="<= 5 s", met=cold["wall_s"] <= TARGET_COLD_S,
                note=f"import, load_policy, Engine(policy), first reply ({cold.get('understanding')}, "
                     f"{cold.get('model_calls')} model calls); with the matcher cache warm {warm['wall_s']:.2f} s")
        ctx.tick(f"cold start {name}")
    ctx.sample("understanding_cold_start", samples)
