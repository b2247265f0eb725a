"""Conversation trees as data: `policies/NAME.tree.toml` compiled into a `Policy`.

A tree is nodes of ordered branches. A branch has an optional condition (a question
for the model, which becomes a `said` call, and/or guards on state fields), the
lines it says (catalog ids with slot values from literals, state fields or
extraction) and a transition. The compiler writes one readable Python decision
function per node, so lint, tree, exploration, both modes and tests treat a tree
exactly like a policy written in Python; the model reads that generated code.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .errors import Location, PolicyError
from .policy import Policy
from .reply import reply

__all__ = ["compile_tree", "load_tree"]

NAME = r"^[a-z_][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExtractSpec(_Strict):
    extract: str
    pattern: str
    examples: list[str] = []
    max_length: int = 64


class LineSpec(_Strict):
    id: str
    slots: dict[str, Any] = {}


class Branch(_Strict):
    if_: str | None = Field(None, alias="if")
    examples: list[str] = []
    state: dict[str, Any] = {}
    say: str | LineSpec | list[str | LineSpec]
    goto: str | None = None
    end: bool = False


class Node(_Strict):
    id: str = Field(pattern=NAME)
    about: str = ""
    branch: list[Branch]


class Effect(_Strict):
    on: str
    set: dict[str, Any] = {}
    add: dict[str, int | float] = {}


class TreeMeta(_Strict):
    name: str
    catalog: str
    persona: str = ""
    start: str | None = None
    samples: list[dict[str, Any]] = []


class TreeFile(_Strict):
    tree: TreeMeta
    state: dict[str, Any] = {}
    node: list[Node]
    effect: list[Effect] = []


def load_tree(path: str | Path) -> Policy:
    """Read and compile a `.tree.toml` file; errors carry file and line."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, col = _toml_position(str(exc))
        raise PolicyError(f"TOML syntax error: {str(exc).split(' (at')[0]}",
                          location=_loc(path, text, line, col),
                          hint="check quotes, brackets and commas on this line") from None
    try:
        spec = TreeFile.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(path, text, exc) from None
    return compile_tree(spec, path, text)


def compile_tree(spec: TreeFile, path: Path, text: str = "") -> Policy:
    """The `Policy` a tree describes: a state model, one generated function per node, effects."""
    lines = _Lines(text)
    state_model = _state_model(spec, path, text)
    policy = Policy(spec.tree.name, catalog=str((path.parent / spec.tree.catalog).resolve()),
                    state=state_model, persona=spec.tree.persona, sample_states=spec.tree.samples,
                    start=spec.tree.start)
    policy.file = path.resolve()
    ids = [n.id for n in spec.node]
    for n, node in enumerate(spec.node):
        if ids.count(node.id) > 1:
            raise PolicyError(f"two nodes named {node.id!r}", location=_loc(path, text, lines.node(n)),
                              entry=node.id, hint="give every node its own id")
        policy.nodes[node.id] = _compile_node(node, n, spec, path, text, lines)
    if spec.tree.start is not None and spec.tree.start not in ids:
        raise PolicyError(f"start node {spec.tree.start!r} does not exist", location=_loc(path, text, 1),
                          hint=f"nodes: {', '.join(ids)}")
    for effect in spec.effect:
        policy.effects[effect.on] = _effect(effect, state_model, path, text)
    return policy


def _state_model(spec: TreeFile, path: Path, text: str) -> type[BaseModel]:
    fields = {}
    for name, default in spec.state.items():
        if not re.match(NAME, name):
            raise PolicyError(f"state field {name!r} is not a lower_snake name",
                              location=_loc(path, text, _Lines(text).key("state", name)))
        fields[name] = (type(default), default) if not isinstance(default, list) else (list, default)
    return create_model(f"{spec.tree.name.title().replace('_', '')}State",
                        __config__=ConfigDict(extra="forbid"), **fields)


def _compile_node(node: Node, n: int, spec: TreeFile, path: Path, text: str, lines: "_Lines"):
    """Generate, compile and return the node's decision function (with readable source)."""
    _check_branches(node, n, path, text, lines)
    body, padded = [f"def {node.id}(said, state):"], []
    first = lines.node(n) or 1
    if node.about:
        body.append(f"    # {node.about}")
    for k, branch in enumerate(node.branch):
        code = _branch_code(branch, spec, path, text, lines.branch(n, k))
        body.extend(code)
        padded.append((lines.branch(n, k), code))
    source = "\n".join(body)
    namespace = {"reply": reply, "__name__": f"dialogue_tree_{spec.tree.name}"}
    exec(compile(_padded_source(node.id, first, padded), str(path), "exec"), namespace)
    fn = namespace[node.id]
    fn.__dialogue_source__ = source
    fn.__dialogue_first_line__ = first
    return fn


def _check_branches(node: Node, n: int, path: Path, text: str, lines: "_Lines") -> None:
    for k, branch in enumerate(node.branch):
        default = branch.if_ is None and not branch.state
        if default and k != len(node.branch) - 1:
            raise PolicyError(f"node {node.id!r}: a branch without a condition must be the last",
                              location=_loc(path, text, lines.branch(n, k)), entry=node.id,
                              hint="branches are tried in order; the unconditional one catches the rest")
    last = node.branch[-1] if node.branch else None
    if last is None or last.if_ is not None or last.state:
        raise PolicyError(f"node {node.id!r} has no default branch", location=_loc(path, text, lines.node(n)),
                          entry=node.id,
                          hint="end the node with a [[node.branch]] that has no `if`: what to say otherwise")


def _branch_code(branch: Branch, spec: TreeFile, path: Path, text: str, line: int | None) -> list[str]:
    conditions = [f"state.{k} == {v!r}" for k, v in branch.state.items()]
    for field_name in branch.state:
        if field_name not in spec.state:
            raise PolicyError(f"branch tests state field {field_name!r}, which [state] does not declare",
                              location=_loc(path, text, line), hint=f"fields: {', '.join(spec.state)}")
    if branch.if_ is not None:
        conditions.append(f"said({branch.if_!r}, examples={branch.examples!r})")
    ret = "return " + _say_code(branch, spec, path, text, line)
    if not conditions:
        return [f"    {ret}"]
    return [f"    if {' and '.join(conditions)}:", f"        {ret}"]


def _say_code(branch: Branch, spec: TreeFile, path: Path, text: str, line: int | None) -> str:
    items = branch.say if isinstance(branch.say, list) else [branch.say]
    if not items:
        raise PolicyError("a branch must say at least one line", location=_loc(path, text, line))
    parts = []
    for i, item in enumerate(items):
        spec_line = LineSpec(id=item) if isinstance(item, str) else item
        args = [repr(spec_line.id)]
        for slot, value in spec_line.slots.items():
            args.append(f"{slot}={_slot_code(value, spec, path, text, line)}")
        if i == len(items) - 1:
            args += [f"goto={branch.goto!r}"] if branch.goto else []
            args += ["end=True"] if branch.end else []
        parts.append(f"reply({', '.join(args)})")
    return " + ".join(parts)


def _slot_code(value: Any, spec: TreeFile, path: Path, text: str, line: int | None) -> str:
    if isinstance(value, str) and value.startswith("state."):
        name = value[len("state."):]
        if name not in spec.state:
            raise PolicyError(f"slot value {value!r} names a state field [state] does not declare",
                              location=_loc(path, text, line), hint=f"fields: {', '.join(spec.state)}")
        return f"state.{name}"
    if isinstance(value, dict):
        try:
            ex = ExtractSpec.model_validate(value)
        except ValidationError:
            raise PolicyError(f"slot value {value!r} is not a literal, a state.FIELD or an extraction",
                              location=_loc(path, text, line),
                              hint='write { extract = "what", pattern = "regex" }') from None
        return (f"said.extract({ex.extract!r}, {ex.pattern!r}, examples={ex.examples!r}, "
                f"max_length={ex.max_length})")
    return repr(value)


def _padded_source(name: str, first: int, branches: list[tuple[int | None, list[str]]]) -> str:
    """The node's code with each branch on its TOML line, so errors point into the file."""
    out = [""] * max(0, first - 1) + [f"def {name}(said, state):"]
    for line, code in branches:
        if line is not None and line - 1 > len(out):
            out.extend([""] * (line - 1 - len(out)))
        out.extend(code)
    return "\n".join(out) + "\n"


def _effect(effect: Effect, state_model: type[BaseModel], path: Path, text: str):
    unknown = [k for k in [*effect.set, *effect.add] if k not in state_model.model_fields]
    if unknown:
        raise PolicyError(f"effect on {effect.on} changes {unknown[0]!r}, which [state] does not declare",
                          location=_loc(path, text, _Lines(text).key("effect", "on")), entry=effect.on)

    def apply(state: BaseModel, r) -> None:
        for name, value in effect.set.items():
            setattr(state, name, value)
        for name, value in effect.add.items():
            setattr(state, name, getattr(state, name) + value)

    apply.__name__ = f"effect_{effect.on.lower()}"
    return apply


class _Lines:
    """Where the `[[node]]` and `[[node.branch]]` headers and keys are in the file."""

    def __init__(self, text: str) -> None:
        self.text = text.splitlines()
        self.nodes: list[int] = []
        self.branches: list[list[int]] = []
        for i, raw in enumerate(self.text, 1):
            header = raw.strip()
            if header == "[[node]]":
                self.nodes.append(i)
                self.branches.append([])
            elif header == "[[node.branch]]" and self.branches:
                self.branches[-1].append(i)

    def node(self, n: int) -> int | None:
        return self.nodes[n] if n < len(self.nodes) else None

    def branch(self, n: int, k: int) -> int | None:
        found = self.branches[n] if n < len(self.branches) else []
        return found[k] if k < len(found) else self.node(n)

    def key(self, table: str, key: str) -> int | None:
        current = None
        for i, raw in enumerate(self.text, 1):
            stripped = raw.strip()
            if stripped.startswith("["):
                current = stripped.strip("[]").strip()
            elif current == table and re.match(rf"{re.escape(key)}\s*=", stripped):
                return i
        return None


def _loc(path: Path, text: str, line: int | None, col: int | None = None) -> Location:
    source = text.splitlines()[line - 1] if line and text and line <= len(text.splitlines()) else None
    return Location(str(path), line, col, source)


def _toml_position(message: str) -> tuple[int | None, int | None]:
    m = re.search(r"at line (\d+), column (\d+)", message)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def _validation_error(path: Path, text: str, exc: ValidationError) -> PolicyError:
    err = exc.errors()[0]
    loc = err["loc"]
    line = _Lines(text)
    where = None
    if loc and loc[0] == "node" and len(loc) > 1 and isinstance(loc[1], int):
        where = line.node(loc[1])
        if len(loc) > 3 and loc[2] == "branch" and isinstance(loc[3], int):
            where = line.branch(loc[1], loc[3])
    elif loc and loc[0] in ("tree", "state", "effect"):
        where = line.key(str(loc[0]), str(loc[-1])) if len(loc) > 1 else None
    key = ".".join(str(p) for p in loc)
    hint = "remove it or check its spelling" if err["type"] == "extra_forbidden" else \
        "see the conversation tree format in the README"
    return PolicyError(f"{key}: {err['msg']}", location=_loc(path, text, where), hint=hint)


