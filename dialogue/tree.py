"""Conversation trees as data: `policies/NAME.tree.toml` compiled into a `Policy`.

A tree is nodes of ordered branches. A branch has an optional condition (a question
for the model, which becomes a `said` call, and/or guards on state fields), the
lines it says (catalog ids with slot values from literals, state fields or
extraction) and a transition. The compiler writes one readable Python decision
function per node, so lint, tree, exploration, both modes and tests treat a tree
exactly like a policy written in Python; the model reads that generated code.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from . import patterns
from .catalog import _implied_missing_dropped
from .errors import DialogueError, Location, PolicyError
from .locator import Locator
from .policy import Policy, _combined
from .reply import reply
from .understanding.examples import Example

__all__ = ["README_SECTION", "compile_tree", "load_tree"]

NAME = r"^[a-z_][a-z0-9_]*$"
README_SECTION = "Conversation tree files"  # the README heading that describes this format
SEE_README = f'see "{README_SECTION}" in the README'


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # TOML values are typed: "yes" is no boolean


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
    unclear: str | None = None
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
    unclear: str | None = None
    samples: list[dict[str, Any]] = []


class TreeFile(_Strict):
    tree: TreeMeta
    state: dict[str, Any] = {}
    node: list[Node]
    effect: list[Effect] = []


def load_tree(path: str | Path) -> Policy:
    """Read and compile a `.tree.toml` file; errors carry file, line and column."""
    path = Path(path)
    src = _Source(path, path.read_text(encoding="utf-8"))
    try:
        data = tomllib.loads(src.text)
    except tomllib.TOMLDecodeError as exc:
        line, col = _toml_position(str(exc))
        raise PolicyError(f"TOML syntax error: {str(exc).split(' (at')[0]}", location=src.location(line, col),
                          hint="check quotes, brackets and commas on this line") from None
    try:
        spec = TreeFile.model_validate(data)
    except ValidationError as exc:
        faults = _implied_missing_dropped(exc.errors(include_url=False))
        found = [_validation_error(src, data, e) for e in _one_per_key(faults)]
        errors = sorted({str(e): e for e in found}.values(), key=lambda e: e.location.line or 0)
        raise (errors[0] if len(errors) == 1 else _combined(errors)) from None
    return compile_tree(spec, path, src.text)


class _Source:
    """A tree file's text and where its tables and keys are, for errors in the file's words."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text, self.where = path, text, Locator(text)

    def location(self, line: int | None, column: int | None = None, span: int = 1) -> Location:
        lines = self.where.lines
        source = lines[line - 1] if line and 0 < line <= len(lines) else None
        return Location(str(self.path), line, column if source is not None else None, source, span)

    def at(self, *key: Any, value: bool = False) -> Location:
        """The location of `key` (("node", 0, "branch", 1, "say")), or of its nearest table."""
        found = self.where.find(tuple(key))
        if found is None:
            return Location(str(self.path))
        at, spot = found
        if value and at == tuple(key) and spot.value_column is not None:
            return self.location(spot.line, spot.value_column, spot.value_length)
        return self.location(spot.line, spot.column, spot.length)

    def line(self, *key: Any) -> int | None:
        found = self.where.find(tuple(key))
        return found[1].line if found else None


def compile_tree(spec: TreeFile, path: Path, text: str = "") -> Policy:
    """The `Policy` a tree describes: a state model, one generated function per node, effects."""
    src = _Source(path, text)
    state_model = _state_model(spec, src)
    policy = Policy(spec.tree.name, catalog=str((path.parent / spec.tree.catalog).resolve()),
                    state=state_model, persona=spec.tree.persona, sample_states=spec.tree.samples,
                    start=spec.tree.start, unclear=_unclear(spec))
    policy.file = path.resolve()
    policy.unclear_at = {None: src.at("tree", "unclear", value=True),
                         **{node.id: src.at("node", n, "unclear", value=True)
                            for n, node in enumerate(spec.node) if node.unclear}}
    ids = [n.id for n in spec.node]
    for n, node in enumerate(spec.node):
        if ids.count(node.id) > 1:
            raise PolicyError(f"two nodes with id {node.id!r}", location=src.at("node", n, "id", value=True),
                              entry=node.id, hint="give every [[node]] its own id")
        policy.nodes[node.id] = _compile_node(node, n, spec, state_model, src)
        policy.examples.extend(_default_examples(node))
    if spec.tree.start is not None and spec.tree.start not in ids:
        raise PolicyError(f"start = {spec.tree.start!r} in [tree] names no [[node]]",
                          location=src.at("tree", "start", value=True), hint=f"node ids: {', '.join(ids)}")
    _check_samples(spec, state_model, src)
    catalog = _catalog(policy)
    for i, effect in enumerate(spec.effect):
        if effect.on in policy.effects:
            first = next(k for k, e in enumerate(spec.effect) if e.on == effect.on)
            raise PolicyError(f"two [[effect]] tables on {effect.on}", location=src.at("effect", i, "on", value=True),
                              entry=effect.on, hint=f"merge them into the first, on line {src.line('effect', first)}")
        if catalog is not None and effect.on not in catalog:
            close = difflib.get_close_matches(effect.on, [r.id for r in catalog], n=1)
            raise PolicyError(f"[[effect]] on {effect.on}: catalog {catalog.id!r} has no line {effect.on}",
                              location=src.at("effect", i, "on", value=True), entry=effect.on,
                              hint=f"did you mean {close[0]}?" if close else "`on` names a catalog line id")
        policy.effects[effect.on] = _effect(effect, i, state_model, src)
    return policy


def _unclear(spec: TreeFile) -> str | dict[str, str] | None:
    """`unclear` of [tree] for every node, a node's own `unclear` for that node."""
    if not any(node.unclear for node in spec.node):
        return spec.tree.unclear
    named = {node.id: node.unclear or spec.tree.unclear for node in spec.node}
    return {node: line for node, line in named.items() if line}


def _default_examples(node: Node) -> list[Example]:
    """The default branch's `examples`: messages that mean none of the other branches. The
    matcher learns them for the line the branch says first, in this node."""
    default = node.branch[-1]
    items = default.say if isinstance(default.say, list) else [default.say]
    if not default.examples or not items:
        return []
    first = items[0] if isinstance(items[0], str) else items[0].id
    return [Example(message=m, reply=first, node=node.id, source="manual") for m in default.examples]


def _catalog(policy: Policy) -> Any:
    """The policy's catalog, or None when it does not load (its own errors are reported for it)."""
    try:
        return policy.catalog
    except DialogueError:
        return None


def _check_samples(spec: TreeFile, state_model: type[BaseModel], src: _Source) -> None:
    for i, sample in enumerate(spec.tree.samples):
        for name, value in sample.items():
            if name not in spec.state:
                raise PolicyError(f"sample state #{i + 1} in [tree] samples sets {name!r}, which [state] does "
                                  "not declare", location=src.at("tree", "samples", value=True),
                                  hint=_fields_hint(spec.state, name))
            _check_value(state_model, src, name, value, f"sample state #{i + 1} in [tree] samples sets",
                         ("tree", "samples"))


def _state_model(spec: TreeFile, src: _Source) -> type[BaseModel]:
    fields = {}
    for name, default in spec.state.items():
        if not re.match(NAME, name):
            raise PolicyError(f"state field {name!r} in [state] is not a lower_snake name",
                              location=src.at("state", name), hint="write it like gold or card_blocked")
        fields[name] = (type(default), default) if not isinstance(default, list) else (list, default)
    return create_model(f"{spec.tree.name.title().replace('_', '')}State",
                        __config__=ConfigDict(extra="forbid"), **fields)


def _compile_node(node: Node, n: int, spec: TreeFile, state_model: type[BaseModel], src: _Source):
    """Generate, compile and return the node's decision function (with readable source)."""
    _check_branches(node, n, src)
    body, padded = [f"def {node.id}(said, state):"], []
    first = src.line("node", n) or 1
    if node.about:
        body.append(f"    # {node.about}")
    for k, branch in enumerate(node.branch):
        code = _branch_code(branch, spec, state_model, src, ("node", n, "branch", k))
        body.extend(code)
        padded.append((src.line("node", n, "branch", k), code))
    source = "\n".join(body)
    namespace = {"reply": reply, "__name__": f"dialogue_tree_{spec.tree.name}"}
    exec(compile(_padded_source(node.id, first, padded), str(src.path), "exec"), namespace)
    fn = namespace[node.id]
    fn.__dialogue_source__ = source
    fn.__dialogue_first_line__ = first
    return fn


def _check_branches(node: Node, n: int, src: _Source) -> None:
    for k, branch in enumerate(node.branch):
        default = branch.if_ is None and not branch.state
        if default and k != len(node.branch) - 1:
            raise PolicyError(f"node {node.id!r}: a [[node.branch]] without `if` or `state` must be the last",
                              location=src.at("node", n, "branch", k), entry=node.id,
                              hint="branches are tried in order; the unconditional one catches the rest")
    last = node.branch[-1] if node.branch else None
    if last is None or last.if_ is not None or last.state:
        raise PolicyError(f"node {node.id!r} has no default branch", location=src.at("node", n), entry=node.id,
                          hint="end the node with a [[node.branch]] that has no `if`: what to say otherwise")


def _branch_code(branch: Branch, spec: TreeFile, state_model: type[BaseModel], src: _Source,
                 key: tuple) -> list[str]:
    conditions = [f"state.{k} == {v!r}" for k, v in branch.state.items()]
    for field_name, value in branch.state.items():
        if field_name not in spec.state:
            raise PolicyError(f"branch tests state field {field_name!r}, which [state] does not declare",
                              location=src.at(*key, "state", field_name), hint=_fields_hint(spec.state, field_name))
        _check_value(state_model, src, field_name, value, "branch tests", (*key, "state", field_name))
    if branch.if_ is not None:
        conditions.append(f"said({branch.if_!r}, examples={branch.examples!r})")
    ret = "return " + _say_code(branch, spec, src, key)
    if not conditions:
        return [f"    {ret}"]
    return [f"    if {' and '.join(conditions)}:", f"        {ret}"]


def _say_code(branch: Branch, spec: TreeFile, src: _Source, key: tuple) -> str:
    items = branch.say if isinstance(branch.say, list) else [branch.say]
    if not items:
        raise PolicyError("`say` is empty: a branch must say at least one line",
                          location=src.at(*key, "say", value=True), hint='say = "ID" or say = ["ID", "ID2"]')
    parts = []
    for i, item in enumerate(items):
        spec_line = LineSpec(id=item) if isinstance(item, str) else item
        args = [repr(spec_line.id)]
        for slot, value in spec_line.slots.items():
            args.append(f"{slot}={_slot_code(value, spec, src, (*key, 'say'))}")
        if i == len(items) - 1:
            args += [f"goto={branch.goto!r}"] if branch.goto else []
            args += ["end=True"] if branch.end else []
        parts.append(f"reply({', '.join(args)})")
    return " + ".join(parts)


def _slot_code(value: Any, spec: TreeFile, src: _Source, key: tuple) -> str:
    if isinstance(value, str) and value.startswith("state."):
        name = value[len("state."):]
        if name not in spec.state:
            raise PolicyError(f"slot value {value!r} names a state field [state] does not declare",
                              location=src.at(*key, value=True), hint=_fields_hint(spec.state, name))
        return f"state.{name}"
    if isinstance(value, dict):
        try:
            ex = ExtractSpec.model_validate(value)
        except ValidationError:
            raise PolicyError(f"slot value {value!r} is not a literal, a state.FIELD or an extraction",
                              location=src.at(*key, value=True),
                              hint='write { extract = "what", pattern = "regex" }') from None
        problem = patterns.check(ex.pattern)
        if problem is not None:
            raise PolicyError(f"the extraction pattern {ex.pattern!r} cannot be used: {problem}",
                              location=src.at(*key, value=True),
                              hint="write a Python regular expression that RE2 also runs: no back-references "
                                   "or lookaround")
        return (f"said.extract({ex.extract!r}, {ex.pattern!r}, examples={ex.examples!r}, "
                f"max_length={ex.max_length})")
    return repr(value)


def _fields_hint(fields: Any, name: str) -> str:
    """Did you mean the field a misspelt `name` is close to, and the fields [state] declares."""
    close = difflib.get_close_matches(name, list(fields), n=1)
    fields = f"[state] declares: {', '.join(fields) or '(nothing)'}"
    return f"did you mean {close[0]!r}? {fields}" if close else fields


def _padded_source(name: str, first: int, branches: list[tuple[int | None, list[str]]]) -> str:
    """The node's code with each branch on its TOML line, so errors point into the file."""
    out = [""] * max(0, first - 1) + [f"def {name}(said, state):"]
    for line, code in branches:
        if line is not None and line - 1 > len(out):
            out.extend([""] * (line - 1 - len(out)))
        out.extend(code)
    return "\n".join(out) + "\n"


def _effect(effect: Effect, i: int, state_model: type[BaseModel], src: _Source):
    for table in ("set", "add"):
        for name in getattr(effect, table):
            if name not in state_model.model_fields:
                raise PolicyError(f"[[effect]] on {effect.on} changes {name!r}, which [state] does not declare",
                                  location=src.at("effect", i, table, name), entry=effect.on,
                                  hint=_fields_hint(list(state_model.model_fields), name))
    for name, value in effect.set.items():
        _check_value(state_model, src, name, value, f"[[effect]] on {effect.on} sets", ("effect", i, "set", name))
    for name, value in effect.add.items():
        _check_addition(state_model.model_fields[name].default, value, name, effect.on,
                        src.at("effect", i, "add", name, value=True))

    def apply(state: BaseModel, r) -> None:
        for name, value in effect.set.items():
            setattr(state, name, value)
        for name, value in effect.add.items():
            setattr(state, name, getattr(state, name) + value)

    apply.__name__ = f"effect_{effect.on.lower()}"
    return apply


def _check_value(model: type[BaseModel], src: _Source, name: str, value: Any, what: str, key: tuple) -> None:
    """`value` fits the type of [state]'s `name` (the type of its default), else a PolicyError at `key`."""
    try:
        model.model_validate({name: value})
    except ValidationError:
        default = model.model_fields[name].default
        raise PolicyError(f"{what} {name} = {_shown(value)}, but {name} is {_kind(default)} "
                          f"([state] {name} = {_shown(default)})", location=src.at(*key, value=True),
                          hint=f"write {_kind(default)}, of the type of its default in [state]") from None


def _check_addition(default: Any, value: Any, name: str, on: str, location: Location) -> None:
    """`add` counts: the field and the amount are numbers, and a whole-number field gets whole numbers."""
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        raise PolicyError(f"[[effect]] on {on} adds to {name}, which is not a number ([state] {name} = "
                          f"{_shown(default)})", location=location, entry=on,
                          hint="`add` counts numbers; change other fields with `set`")
    if isinstance(default, int) and not float(value).is_integer():
        raise PolicyError(f"[[effect]] on {on} adds {value!r} to {name}, a whole number in [state]",
                          location=location, entry=on, hint=f"add a whole number, or declare {name} = {default}.0")


def _shown(value: Any) -> str:
    """`value` as TOML writes it: true, 10, "text"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _kind(value: Any) -> str:
    """What kind of TOML value `value` is, in words."""
    for kind, words in ((bool, "true or false"), (int, "a whole number"), (float, "a number"),
                        (str, "text in quotes"), (list, "a list [...]"), (dict, "a table")):
        if isinstance(value, kind):
            return words
    return type(value).__name__


def _toml_position(message: str) -> tuple[int | None, int | None]:
    m = re.search(r"at line (\d+), column (\d+)", message)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


# -- schema errors, in the file's words ------------------------------------------------------

_KEYS = {"tree": TreeMeta, "node": Node, "branch": Branch, "effect": Effect, "say": LineSpec}
_TOP = "a tree file has [tree], [state], [[node]] with [[node.branch]] tables, and [[effect]]; " + SEE_README
_EXPECTED = {"string_type": "text in quotes", "bool_type": "true or false", "bool_parsing": "true or false",
             "list_type": "a list [...]", "dict_type": "a table", "model_type": "a table",
             "int_type": "a whole number", "int_parsing": "a whole number", "float_type": "a number",
             "float_parsing": "a number", "string_pattern_mismatch": "a lower_snake name (letters, digits, _)"}


def _validation_error(src: _Source, data: dict, err: dict) -> PolicyError:
    """One pydantic fault of a tree file as the file says it: the table, the key, what it takes."""
    loc = _file_key(err["loc"])
    table, name = _table_words(data, loc), loc[-1] if loc else ""
    in_say = "say" in loc and len(loc) < len(err["loc"])  # inside a `say` value: pydantic tried each shape
    if err["type"] == "extra_forbidden" and not in_say:
        return PolicyError(f"unknown key {name!r} in {table}", location=src.at(*loc),
                           hint=_known_keys_hint(loc, str(name)))
    if err["type"] == "missing":
        return PolicyError(f"{table} has no `{name}`", location=src.at(*loc[:-1]), hint=_MISSING.get(
            str(name), SEE_README))
    if in_say or loc[-1:] == ("say",):
        return PolicyError(f"`say` in {table} must be a catalog id, a {{ id, slots }} table or a list of them",
                           location=src.at(*loc, value=True), hint='say = "ID", or say = ["ID", { id = "ID2", '
                                                                   'slots = { price = 5 } }]')
    wanted = _EXPECTED.get(err["type"], err["msg"].lower())
    return PolicyError(f"`{name}` in {table} must be {wanted}", location=src.at(*loc, value=True),
                       hint=SEE_README)


_MISSING = {"say": 'say = "ID": the catalog line (or lines, as a list) this branch says',
            "id": 'id = "lower_snake_name": how goto and start name the node',
            "branch": "add [[node.branch]] tables under the [[node]]: its conditions and lines",
            "node": "add a [[node]] with its [[node.branch]] tables",
            "tree": 'start the file with [tree]: name = "...", catalog = "path/to/catalog.toml"',
            "name": 'name = "...": the policy\'s name', "catalog": 'catalog = "...": relative to this file',
            "on": 'on = "ID": the catalog line whose saying runs this effect'}


def _one_per_key(faults: list[dict]) -> list[dict]:
    """One fault per key of the file: a value that fits no member of a union (`add` takes whole
    numbers or numbers) is one mistake, not one per member; a number is what it wants."""
    by_key: dict[tuple, dict] = {}
    for fault in faults:
        key = _file_key(fault["loc"])
        if key in by_key and by_key[key]["type"] != fault["type"] and fault["type"] in _NUMBERS:
            by_key[key] = dict(fault, type="float_type")
        by_key.setdefault(key, fault)
    return list(by_key.values())


_NUMBERS = ("int_type", "int_parsing", "float_type", "float_parsing", "int_from_float")


def _file_key(loc: tuple) -> tuple:
    """A pydantic location as a key of the file: aliases as written (`if`), union members left out."""
    out: list = []
    for part in loc:
        if isinstance(part, str) and (part[:1].isupper() or "[" in part or part in ("str", "int", "float", "bool")):
            break  # pydantic names the union member tried: the key ends before it
        out.append("if" if part == "if_" else part)
    return tuple(out)


def _table_words(data: dict, loc: tuple) -> str:
    """Where `loc` is, as an author reads the file: [tree], [[node]] 'verify', [[effect]] on X..."""
    if len(loc) >= 4 and loc[0] == "node" and loc[2] == "branch" and isinstance(loc[3], int):
        return f"[[node.branch]] #{loc[3] + 1} of [[node]] {_node_id(data, loc[1])}"
    if len(loc) >= 2 and loc[0] == "node" and isinstance(loc[1], int):
        return f"[[node]] {_node_id(data, loc[1])}"
    if len(loc) >= 2 and loc[0] == "effect" and isinstance(loc[1], int):
        return f"[[effect]] {_effect_on(data, loc[1])}"
    if len(loc) >= 2 and loc[0] in ("tree", "state"):
        return f"[{loc[0]}]"
    return "the file"


def _node_id(data: dict, n: int) -> str:
    try:
        return repr(data["node"][n]["id"])
    except (KeyError, IndexError, TypeError):
        return f"#{n + 1}"


def _effect_on(data: dict, n: int) -> str:
    try:
        return f"on {data['effect'][n]['on']}"
    except (KeyError, IndexError, TypeError):
        return f"#{n + 1}"


def _known_keys_hint(loc: tuple, name: str) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return _TOP
    keys = [f.alias or k for k, f in model.model_fields.items()]
    close = difflib.get_close_matches(name, keys, n=1)
    return (f"did you mean {close[0]!r}? " if close else "") + f"it takes: {', '.join(keys)}"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return None
    if names[-1] == "slots" or names[0] in ("state",):
        return None
    return _KEYS.get(names[-1]) if names[-1] != "say" else LineSpec
