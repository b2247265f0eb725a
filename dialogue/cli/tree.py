"""`dialogue tree`: a policy's nodes, transitions and decision trees, as text or a diagram."""

from __future__ import annotations

import argparse
import json

from ..errors import PolicyError

ORDER = 20
JSON_SCHEMA = "dialogue.tree/1"


def add(commands) -> None:
    p = commands.add_parser("tree", help="show a policy's nodes and decision trees for a state",
                            description="Explore each node's decision function for one state and print "
                                        "its questions as branches and its replies as leaves, with the "
                                        "transitions between nodes; or export a diagram.")
    p.add_argument("policy", metavar="POLICY", help="a policies/NAME.py or NAME.tree.toml file")
    p.add_argument("--state", metavar="JSON", help='state fields as JSON, e.g. \'{"gold": 10}\'')
    p.add_argument("--node", metavar="NAME", help="show only this node")
    p.add_argument("--format", choices=["text", "mermaid", "dot"], default="text",
                   help="text for the terminal (default), mermaid or dot for docs and reviews")
    p.add_argument("--json", action="store_true",
                   help=f"print one JSON object for scripts ({JSON_SCHEMA}: policy, start, state, and per node "
                        "its moves, whether it can end, its paths (steps and reply) and reachable replies)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..explore import explore
    from ..policy import load_policy

    policy = load_policy(args.policy)
    state = policy.new_state(parse_state(args.state))
    nodes = [args.node] if args.node else list(policy.nodes)
    for name in nodes:
        policy.decision_of(name)  # a clear error for an unknown --node
    explored = {name: explore(policy, state, node=name) for name in nodes}
    if args.json:
        from ._output import print_json

        print_json(as_json(policy, state, explored))
    elif args.format == "mermaid":
        print(mermaid(policy, explored))
    elif args.format == "dot":
        print(dot(policy, explored))
    else:
        print("\n".join(text(policy, state, explored)))
    return 0


def parse_state(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"--state is not valid JSON: {exc}", hint='e.g. --state \'{"gold": 10}\'') from None
    if not isinstance(value, dict):
        raise PolicyError("--state must be a JSON object", hint='e.g. --state \'{"gold": 10}\'')
    return value


def text(policy, state, explored) -> list[str]:
    """The terminal view: a header, the node graph when there are several, each tree."""
    out = [f"{policy.name}  state {json.dumps(state.model_dump(mode='json'), ensure_ascii=False)}"]
    many = len(policy.nodes) > 1
    if many:
        out.append("nodes (start: %s):" % policy.start)
        for name, result in explored.items():
            moves = sorted({m for r in result.reachable for m in policy.moves(r) if m != name})
            ends = any(r.end for r in result.reachable)
            out.append(f"  {name} → {', '.join(moves) or '(stays)'}{'  [can end]' if ends else ''}")
    for name, result in explored.items():
        if many:
            out.append(f"\n[{name}]")
        out.extend(render_tree(result.paths, policy))
        out.append(f"{len(result.paths)} path{'s' * (len(result.paths) != 1)}, "
                   f"{len(result.reachable)} reachable replies")
    return out


def as_json(policy, state, explored) -> dict:
    """The `--json` shape: what the text view shows, as data."""
    return {"schema": JSON_SCHEMA, "policy": policy.name, "start": policy.start,
            "state": state.model_dump(mode="json"),
            "nodes": {name: _node_json(policy, name, result) for name, result in explored.items()}}


def _node_json(policy, name: str, result) -> dict:
    from ..grammar import display, serialize

    return {"moves": sorted({m for r in result.reachable for m in policy.moves(r) if m != name}),
            "can_end": any(r.end for r in result.reachable),
            "paths": [{"steps": [_step_json(s) for s in path.steps], "reply": display(serialize(path.reply)),
                       "moves": list(policy.moves(path.reply)), "end": path.reply.end} for path in result.paths],
            "reachable": [display(serialize(r)) for r in result.reachable]}


def _step_json(step) -> dict:
    answer = bool(step.answer) if step.kind == "ask" else None if step.kind == "extract" else str(step.answer)
    out = {"kind": step.kind, "question": step.question, "answer": answer}
    if step.kind == "pick":
        out["options"] = [str(o) for o in step.options]
    if step.kind == "extract":
        out["pattern"] = step.pattern
    return out


def render_tree(paths, policy=None) -> list[str]:
    """Box-drawn lines: each question a branch with its answers, each reply a leaf."""
    root: dict = {}
    for path in paths:
        node = root
        for step in path.steps:
            node = node.setdefault(_label(step), {}).setdefault(_answer(step), {})
        node.setdefault(_leaf(path.reply, policy), {})
    lines: list[str] = []
    _draw(root, "", lines)
    return lines


def _draw(node: dict, indent: str, lines: list[str]) -> None:
    items = list(node.items())
    for i, (label, children) in enumerate(items):
        last = i == len(items) - 1
        lines.append(indent + ("└── " if last else "├── ") + label)
        _draw(children, indent + ("    " if last else "│   "), lines)


def _label(step) -> str:
    if step.kind == "ask":
        return f"said: {step.question}?"
    if step.kind == "pick":
        return f"pick: {step.question} [{' | '.join(map(str, step.options))}]"
    return f"extract: {step.question} /{step.pattern}/"


def _answer(step) -> str:
    if step.kind == "ask":
        return "yes" if step.answer else "no"
    if step.kind == "extract":
        return "<value>"
    return str(step.answer)


def _leaf(reply, policy=None) -> str:
    from ..grammar import display, serialize

    moves = policy.moves(reply) if policy is not None else ((reply.goto,) if reply.goto else ())
    move = f"  ⇒ {' | '.join(moves)}" if moves else ""
    return "→ " + display(serialize(reply)) + move + ("  [end]" if reply.end else "")


def _graph(policy, explored):
    """Diagram elements: per node, (id, label, shape) vertices and (from, to, label) edges."""
    from ..grammar import display, serialize

    clusters, edges = {}, []
    for name, result in explored.items():
        vertices, seen = [], {}
        for p_index, path in enumerate(result.paths):
            parent, label = f"{name}__entry", None
            for step in path.steps:
                vid = seen.setdefault((name, _label(step), parent), f"{name}_q{len(seen)}")
                if vid not in [v[0] for v in vertices]:
                    vertices.append((vid, _label(step), "question"))
                    edges.append((parent, vid, label))
                parent, label = vid, _answer(step)
            leaf = f"{name}_r{p_index}"
            vertices.append((leaf, display(serialize(path.reply)), "reply"))
            edges.append((parent, leaf, label))
            for target in policy.moves(path.reply):
                if target in explored:
                    edges.append((leaf, f"{target}__entry", "goto" if target == path.reply.goto else "effect"))
        clusters[name] = vertices
    return clusters, edges


def mermaid(policy, explored) -> str:
    clusters, edges = _graph(policy, explored)
    out = ["flowchart TD"]
    for name, vertices in clusters.items():
        out.append(f"  subgraph {name}")
        out.append(f"    {name}__entry(({_q(name)}))")
        for vid, label, shape in vertices:
            out.append(f"    {vid}{{{_q(label)}}}" if shape == "question" else f"    {vid}[{_q(label)}]")
        out.append("  end")
    for a, b, label in edges:
        out.append(f"  {a} -->|{_q(label)}| {b}" if label else f"  {a} --> {b}")
    return "\n".join(out)


def dot(policy, explored) -> str:
    clusters, edges = _graph(policy, explored)
    out = ["digraph policy {", "  rankdir=TB;", "  node [fontname=Helvetica];"]
    for name, vertices in clusters.items():
        out.append(f"  subgraph cluster_{name} {{")
        out.append(f"    label={json.dumps(name)};")
        out.append(f"    {name}__entry [label={json.dumps(name)}, shape=circle];")
        for vid, label, shape in vertices:
            out.append(f"    {vid} [label={json.dumps(label)}, shape={'diamond' if shape == 'question' else 'box'}];")
        out.append("  }")
    for a, b, label in edges:
        out.append(f"  {a} -> {b}" + (f" [label={json.dumps(label)}];" if label else ";"))
    out.append("}")
    return "\n".join(out)


def _q(text: str) -> str:
    return '"' + str(text).replace('"', "#quot;") + '"'
