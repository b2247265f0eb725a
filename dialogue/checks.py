"""Load-time checks of a policy against its catalog: the contract of what may be said."""

from __future__ import annotations

import difflib
import json
from typing import Any

from .errors import DialogueError, Location, PolicyError
from .explore import explore
from .policy import Policy
from .reply import Reply
from .said import Extracted

__all__ = ["check_policy", "check_reply"]


class PolicyWarning(PolicyError):
    """A policy problem that does not stop it from running."""

    kind = "warning"


def check_policy(policy: Policy) -> list[DialogueError]:
    """Errors and warnings for `policy` over its default state and its sample states."""
    problems: list[DialogueError] = []
    states = _states(policy, problems)
    reached: set[str] = set()
    by_node: dict[str, list[Reply]] = {}
    for node in policy.nodes:
        seen: dict[Reply, None] = {}
        for state in states:
            for r in explore(policy, state, node=node).reachable:
                seen.setdefault(r)
        by_node[node] = list(seen)
        for r in seen:
            reached.update(line.id for line in r.lines)
            problems.extend(check_reply(policy, r))
    problems.extend(check_graph(policy, by_node))
    problems.extend(check_required(policy, by_node, explore(policy, states[0]).reachable))
    problems.extend(_effect_problems(policy))
    problems.extend(_unreached(policy, reached))
    problems.extend(_question_warnings(policy))
    problems.extend(unclear_problems(policy))
    return _dedupe(problems)


def unclear_problems(policy: Policy, catalog: Any = None) -> list[DialogueError]:
    """The policy's `unclear` lines name nodes it has and approved, slot-free catalog lines."""
    catalog = catalog if catalog is not None else policy.catalog
    named = policy.unclear if isinstance(policy.unclear, dict) else {None: policy.unclear}
    at = getattr(policy, "unclear_at", {})
    out: list[DialogueError] = []
    for node, id in named.items():
        where = at.get(node) or at.get(None)
        if node is not None and node not in policy.nodes:
            out.append(PolicyError(f"the unclear line is given for node {node!r}, which policy {policy.name!r} "
                                   "does not have", location=where, entry=node, hint=_node_hint(policy, node)))
            continue
        if id is None:
            continue
        if id not in catalog:
            close = difflib.get_close_matches(id, [r.id for r in catalog], n=1, cutoff=0.7)
            out.append(PolicyError(f"unclear line {id!r} is not a line of catalog {catalog.id!r}", location=where,
                                   entry=id, hint=(f"did you mean {close[0]!r}? " if close else "") +
                                   "name an approved line without slots, said when nothing matches well"))
        elif catalog[id].slots:
            out.append(PolicyError(f"unclear line {id!r} has slots; it is said without values", location=where,
                                   entry=id, hint="name a line without slots"))
    return out


def check_graph(policy: Policy, by_node: dict[str, list[Reply]]) -> list[DialogueError]:
    """Every goto names a node; every node is reachable from the start; no dead ends."""
    problems: list[DialogueError] = []
    edges: dict[str, set[str]] = {n: set() for n in policy.nodes}
    for node, replies in by_node.items():
        for r in replies:
            if r.goto is not None and r.goto not in policy.nodes:
                problems.append(PolicyError(f"reply {r.id} moves to node {r.goto!r}, which does not exist",
                                            location=_origin(r), entry=r.id, hint=_node_hint(policy, r.goto)))
            edges[node].update(n for n in policy.moves(r) if n in policy.nodes)
    if len(policy.nodes) < 2:
        return problems
    reachable = _closure(policy.start, edges)
    for node in policy.nodes:
        where = _node_location(policy, node)
        if node not in reachable:
            problems.append(PolicyError(f"node {node!r} cannot be reached from the start node "
                                        f"{policy.start!r}", location=where, entry=node,
                                        hint="add a reply with goto=... that leads to it, or remove it"))
        ends = any(r.end for r in by_node.get(node, ()))
        if not ends and not (edges[node] - {node}):
            problems.append(PolicyError(f"node {node!r} is a dead end: no reply leaves it or ends the "
                                        "conversation", location=where, entry=node,
                                        hint='add reply(..., goto="next_node") or reply("GOODBYE", end=True)'))
    return problems


def check_required(policy: Policy, by_node: dict[str, list[Reply]], first_turn) -> list[DialogueError]:
    """Lines marked `required_before` another are said before it, on every path.

    Proved per node from what every way into the node has said; a line that can be
    reached on the very first turn without its required line is an error, one that
    cannot be proved otherwise is a warning (the engine refuses it at run time).
    """
    catalog = policy.catalog
    if not any(catalog.required_before(r.id) for r in catalog):
        return []
    must = _said_on_entry(policy, by_node)
    first = set(first_turn)
    problems: list[DialogueError] = []
    for node, replies in by_node.items():
        for r in replies:
            said = set(must[node])
            for line in r.lines:
                for needed in catalog.required_before(line.id):
                    if needed in said:
                        continue
                    on_first = node == policy.start and r in first
                    cls = PolicyError if on_first else PolicyWarning
                    problems.append(cls(
                        f"reply {line.id} can be said before {needed}, which the catalog requires first"
                        + (" (on the first turn)" if on_first else ""), location=_origin(r), entry=line.id,
                        hint=f'say it in the same turn: reply("{needed}") + reply("{line.id}", ...), or in '
                             "an earlier node on every way here"))
                said.add(line.id)
    return problems


def _said_on_entry(policy: Policy, by_node: dict[str, list[Reply]]) -> dict[str, set[str]]:
    """For each node, the line ids said on every way into it (a forward must-analysis)."""
    everything = {line.id for rs in by_node.values() for r in rs for line in r.lines}
    must = {n: (set() if n == policy.start else set(everything)) for n in policy.nodes}
    changed = True
    while changed:
        changed = False
        for node, replies in by_node.items():
            for r in replies:
                for target in policy.moves(r):
                    if target in must and target != policy.start:
                        incoming = must[node] | {line.id for line in r.lines}
                        if not must[target] <= incoming:
                            must[target] &= incoming
                            changed = True
    return must


def _closure(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _node_location(policy: Policy, node: str) -> Location | None:
    code = getattr(policy.nodes[node], "__code__", None)
    first = getattr(policy.nodes[node], "__dialogue_first_line__", None)
    if first is not None and policy.file:
        return Location(str(policy.file), first)
    return Location(code.co_filename, code.co_firstlineno) if code else None


def _states(policy: Policy, problems: list) -> list:
    states = [policy.new_state()]
    for i, sample in enumerate(policy.sample_states):
        try:
            states.append(policy.new_state(sample))
        except PolicyError as exc:
            problems.append(PolicyError(f"sample state #{i + 1} is invalid: {exc.message}",
                                        location=Location(str(policy.file)), hint=exc.hint))
    return states


def check_reply(policy: Policy, reply: Reply) -> list[DialogueError]:
    """Whether every line of a reply names a catalog line with exactly its slots and types."""
    return [p for line in reply.lines for p in _check_line(policy, line)]


def _check_line(policy: Policy, reply: Reply) -> list[DialogueError]:
    catalog = policy.catalog
    where = _origin(reply)
    if reply.id not in catalog:
        close = difflib.get_close_matches(reply.id, [r.id for r in catalog], n=1)
        hint = f"did you mean {close[0]}?" if close else f"add [[response]] id = \"{reply.id}\" to {catalog.path}"
        return [PolicyError(f"reply {reply.id} is not in catalog {catalog.id!r}", location=where,
                            entry=reply.id, hint=hint)]
    response = catalog[reply.id]
    problems: list[DialogueError] = []
    declared, given = set(response.slots), set(reply.slots)
    if declared != given:
        missing, extra = sorted(declared - given), sorted(given - declared)
        detail = "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                         extra and f"unknown {', '.join(extra)}"]))
        problems.append(PolicyError(f"reply {reply.id} has the wrong slots: {detail}", location=where,
                                    entry=reply.id,
                                    hint=f"the catalog declares: {', '.join(response.slots) or '(no slots)'}"))
    for name in sorted(declared & given):
        problems.extend(_slot_problem(reply, name, response.slots[name], where))
    if response.status == "retired":
        problems.append(PolicyError(f"reply {reply.id} is retired in the catalog", location=where,
                                    entry=reply.id, hint="stop returning it, or set status = \"approved\""))
    elif response.status != "approved":
        problems.append(PolicyWarning(f"reply {reply.id} is {response.status}: the engine will not "
                                      "emit it outside development mode", location=where, entry=reply.id,
                                      hint="have it approved in the catalog"))
    return problems


def _slot_problem(reply: Reply, name: str, slot_type: Any, where) -> list[DialogueError]:
    value = reply.slots[name]
    if isinstance(value, Extracted):
        if getattr(slot_type, "type", None) != "pattern" and type(slot_type).__name__ != "PatternSlot":
            return [PolicyError(f"reply {reply.id}: slot {name} gets an extracted value but is "
                                f"{slot_type.describe()}", location=where, entry=reply.id,
                                hint="extracted values fill `pattern` slots; declare "
                                     f"{name} = {{ type = \"pattern\", regex = ..., max_length = ... }}")]
        return []
    try:
        slot_type.validate(value)
    except (ValueError, TypeError) as exc:
        return [PolicyError(f"reply {reply.id}: slot {name} = {value!r} is not {slot_type.describe()}: {exc}",
                            location=where, entry=reply.id,
                            hint="fix the value in the policy or the slot's bounds in the catalog")]
    return []


def _effect_problems(policy: Policy) -> list[DialogueError]:
    problems = []
    for reply_id, fn in policy.effects.items():
        code = getattr(fn, "__code__", None)
        where = Location(code.co_filename, code.co_firstlineno) if code else None
        if reply_id not in policy.catalog:
            problems.append(PolicyError(f"effect for {reply_id}, which is not in the catalog", location=where,
                                        entry=reply_id, hint="fix the id in @policy.effect(...)"))
        for target in policy.effect_gotos.get(reply_id, ()):
            if target not in policy.nodes:
                problems.append(PolicyError(f"the effect for {reply_id} may move to node {target!r}, which does "
                                            "not exist", location=where, entry=reply_id,
                                            hint=_node_hint(policy, target)))
    return problems


def _node_hint(policy: Policy, name: str) -> str:
    """The node meant by a misspelt `name`, or the list of nodes."""
    close = difflib.get_close_matches(name, list(policy.nodes), n=1)
    return f"did you mean {close[0]!r}?" if close else f"nodes: {', '.join(policy.nodes)}"


def _unreached(policy: Policy, reached: set[str]) -> list[DialogueError]:
    catalog = policy.catalog
    unclear = set(policy.unclear.values()) if isinstance(policy.unclear, dict) else {policy.unclear}
    said = reached | unclear  # the unclear line is said when nothing matches well
    out = []
    for response in catalog:
        if response.id in said or response.id == catalog.fallback or response.status == "retired":
            continue
        out.append(PolicyWarning(f"response {response.id} is never reached by policy {policy.name!r}",
                                 location=Location(str(catalog.path), catalog.line_of(response.id)),
                                 entry=response.id,
                                 hint="no path returns it for the default or sample states; add a "
                                      + ("state to [tree] samples" if _is_tree(policy) else "sample state")
                                      + " that reaches it, or retire it"))
    return out


_EXAMPLE_HINTS = {
    "ask": ("said({text!r})", "add examples=[...]: short messages a person might type that mean yes"),
    "pick": ("said.pick({text!r})", 'add examples={{"OPTION": [...], ...}}: for each option, short messages '
                                    "that choose it"),
    "extract": ("said.extract({text!r})", "add examples=[...]: short messages that contain {text}, the way a "
                                          "person would write them"),
}


_TREE_EXAMPLE_HINTS = {
    "ask": ("the branch if = {quoted}", 'add examples = ["...", ...] to the branch: short messages a person '
                                        "might type that mean yes"),
    "extract": ("the extraction {quoted}", 'add examples = ["...", ...] to its inline table: short messages '
                                           "that contain {text}, the way a person would write them"),
}


def _question_warnings(policy: Policy) -> list[DialogueError]:
    hints = _TREE_EXAMPLE_HINTS if _is_tree(policy) else _EXAMPLE_HINTS
    out = []
    for q in policy.questions:
        if not q.examples:
            call, hint = hints.get(q.kind, hints["ask"])
            quoted = json.dumps(q.text, ensure_ascii=False)
            out.append(PolicyWarning(f"{call.format(text=q.text, quoted=quoted)} has no examples",
                                     location=Location(str(policy.file), q.line),
                                     hint=f"{hint.format(text=q.text, quoted=quoted)}; the matcher understands by them"))
    return out


def _is_tree(policy: Policy) -> bool:
    return policy.file is not None and policy.file.name.endswith(".tree.toml")


def _origin(reply: Reply) -> Location | None:
    return Location(reply.origin[0], reply.origin[1]) if reply.origin else None


def _dedupe(problems: list[DialogueError]) -> list[DialogueError]:
    seen: dict[str, DialogueError] = {}
    for p in problems:
        seen.setdefault(str(p), p)
    return list(seen.values())


