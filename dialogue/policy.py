"""Policies: a state model, a decision function and effects, checked against a catalog."""

from __future__ import annotations

import ast
import difflib
import dis
import hashlib
import importlib.util
import inspect
import linecache
import logging
import sys
import textwrap
import traceback
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from . import deadline  # noqa: F401  (wraps time.sleep before any policy module imports it)
from .errors import DialogueError, Location, PolicyError
from .reply import Reply

__all__ = ["Policy", "Question", "load_policy"]

log = logging.getLogger(__name__)

Decision = Callable[..., Any]
Effect = Callable[[BaseModel, Reply], Any]


@dataclass(frozen=True)
class Question:
    """A `said` question a node can ask, with its examples (for a pick: {option: [...]}).

    Found by exploring the node, so questions held in constants or asked in helper
    functions count, and by reading its source, so those behind a state no sample reaches do.
    """

    kind: str  # "ask" | "pick" | "extract"
    text: str
    examples: Any = ()
    options: tuple = ()
    line: int | None = None


class Policy:
    """A policy: persona, state model, one decision function, effects and a catalog.

    Create one at module level in `policies/NAME.py`; `load_policy` loads it by path.
    """

    def __init__(self, name: str, *, catalog: str | Path, state: type[BaseModel] | None = None,
                 persona: str = "", sample_states: list[dict] | None = None,
                 start: str | None = None, unclear: str | dict[str, str] | None = None) -> None:
        if state is not None and not (isinstance(state, type) and issubclass(state, BaseModel)):
            raise PolicyError(f"Policy({name!r}, state=...) needs a pydantic model class",
                              hint="class State(BaseModel): ...; Policy(..., state=State)")
        frame = sys._getframe(1)
        caller = frame.f_globals.get("__file__")
        self.name = name
        self.file = Path(caller).resolve() if caller else None
        base = self.file.parent if self.file else Path.cwd()
        self.catalog_path = (base / catalog).resolve()
        self.state_model: type[BaseModel] = state or _EmptyState
        self.persona = persona
        self.sample_states = list(sample_states or [])
        self.nodes: dict[str, Decision] = {}
        self._start = start
        # The catalog line said when nothing the person typed matches well: one id for every
        # node, or {node: id} (a node not named has none).
        self.unclear = unclear
        # Where `unclear` is written, for errors: {None: the policy-wide one, node: a node's own}.
        here = (Location(str(self.file), frame.f_lineno,
                         source_line=linecache.getline(str(self.file), frame.f_lineno).rstrip("\n") or None)
                if self.file else None)
        self.unclear_at: dict[str | None, Location | None] = {None: here}
        # Examples the policy's files give outside `said` calls (a tree's default branches):
        # the matcher learns them as it learns NAME.examples.toml.
        self.examples: list[Any] = []
        self.effects: dict[str, Effect] = {}
        self.effect_gotos: dict[str, tuple[str, ...]] = {}  # reply id -> nodes its effect may move to
        self.module: ModuleType | None = None
        self.warnings: list[DialogueError] = []
        self._node_cache: dict[tuple[str, str], Any] = {}

    def __repr__(self) -> str:
        return f"<Policy {self.name!r} catalog={self.catalog_path.name!r}>"

    def decide(self, fn: Decision) -> Decision:
        """Decorator: the decision function, `fn(said, state) -> reply(...)`."""
        return self.node(MAIN)(fn)

    def node(self, name: str) -> Callable[[Decision], Decision]:
        """Decorator: the decision function of one node of a multi-step flow."""
        def register(fn: Decision) -> Decision:
            if name in self.nodes:
                what = "two @policy.decide functions" if name == MAIN else f"two nodes named {name!r}"
                raise PolicyError(f"policy {self.name!r} has {what}", location=_where(fn),
                                  hint="give each node its own name; a policy has one start node")
            self.nodes[name] = fn
            return fn
        return register

    @property
    def start(self) -> str:
        """The node every session starts in."""
        return self._start or next(iter(self.nodes), MAIN)

    def unclear_of(self, node: str | None = None) -> str | None:
        """The catalog id to say in `node` when the matcher is not confident, or None."""
        if isinstance(self.unclear, dict):
            return self.unclear.get(node or self.start)
        return self.unclear

    @property
    def decision(self) -> Decision | None:
        """The start node's decision function."""
        return self.nodes.get(self.start)

    def decision_of(self, node: str | None = None) -> Decision:
        """The decision function of `node` (default: the start node)."""
        name = node or self.start
        if name not in self.nodes:
            raise PolicyError(f"policy {self.name!r} has no node {name!r}",
                              hint=f"nodes: {', '.join(self.nodes) or '(none)'}")
        return self.nodes[name]

    def effect(self, reply_id: str, *, goto: str | Sequence[str] = ()) -> Callable[[Effect], Effect]:
        """Decorator: `fn(state, reply)` runs after `reply_id` is chosen, on a copy of the state.

        An effect may move the conversation where only code can tell (a ZIP code checked
        against the account, an order looked up): it returns the name of a node, one of those
        declared in `goto` so that lint and `dialogue tree` know the edge, or None to leave
        the move to the reply.
        """
        targets = (goto,) if isinstance(goto, str) else tuple(goto)

        def register(fn: Effect) -> Effect:
            if reply_id in self.effects:
                raise PolicyError(f"two effects for {reply_id}", location=_where(fn), entry=reply_id)
            self.effects[reply_id] = fn
            self.effect_gotos[reply_id] = targets
            return fn
        return register

    def moves(self, reply: Reply) -> tuple[str, ...]:
        """The nodes `reply` may move the conversation to: its goto, then its effects' gotos."""
        out = [reply.goto] if reply.goto else []
        for line in reply.lines:
            out += [n for n in self.effect_gotos.get(line.id, ()) if n not in out]
        return tuple(out)

    # -- state ---------------------------------------------------------------------

    def new_state(self, data: dict | BaseModel | None = None) -> BaseModel:
        """A validated state: the model's defaults updated with `data`."""
        if isinstance(data, self.state_model):
            return data.model_copy(deep=True)
        self._refuse_unknown_fields(dict(data or {}))
        try:
            return self.state_model.model_validate(dict(data or {}))
        except ValidationError as exc:
            raise PolicyError(f"invalid state for policy {self.name!r}: {_pydantic_summary(exc)}",
                              hint=f"fields of {self.state_model.__name__}: "
                                   f"{', '.join(self.state_model.model_fields) or '(none)'}") from None

    def _refuse_unknown_fields(self, data: dict) -> None:
        """A field the state model does not declare is a misspelling, unless the model allows extras."""
        model = self.state_model
        if model.model_config.get("extra") == "allow":
            return
        known = {*model.model_fields, *(f.alias for f in model.model_fields.values() if f.alias)}
        unknown = [name for name in data if name not in known]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(model.model_fields), n=1)
            raise PolicyError(f"state of policy {self.name!r} has no field {unknown[0]!r}"
                              + (f" (did you mean {close[0]!r}?)" if close else ""),
                              hint=f"fields of {model.__name__}: {', '.join(model.model_fields) or '(none)'}")

    # -- what goes into prompts and hashes -----------------------------------------

    @cached_property
    def catalog(self):
        from .catalog import load_catalog

        catalog = load_catalog(self.catalog_path)
        log.debug("loaded catalog %r %s from %s: %d lines, hash %s", catalog.id, catalog.version,
                  self.catalog_path, len(catalog), catalog.hash[:12])
        return catalog

    def source_of(self, node: str | None = None) -> str:
        """A node's decision function source, as the model reads it."""
        return self._cached("source", node, lambda fn: _source(fn))

    def constants_of(self, node: str | None = None) -> dict[str, Any]:
        """Module-level data the node's decision function reads (dicts, lists, numbers, text)."""
        return self._cached("constants", node, _constants)

    def questions_of(self, node: str | None = None) -> tuple[Question, ...]:
        """Every `said` question the node can ask, in the order its code asks them.

        Those its runs ask over the default and sample states (helper functions and module
        constants included) merged with those written in its source.
        """
        name = node or self.start
        return self._cached("questions", name, lambda fn: _questions(fn, _runs(self, name)))

    @property
    def source(self) -> str:
        return self.source_of()

    @property
    def constants(self) -> dict[str, Any]:
        return self.constants_of()

    @property
    def questions(self) -> tuple[Question, ...]:
        return tuple(q for node in self.nodes for q in self.questions_of(node))

    def _cached(self, what: str, node: str | None, compute: Callable[[Decision], Any]) -> Any:
        key = (what, node or self.start)
        if key not in self._node_cache:
            self._node_cache[key] = compute(self.decision_of(node))
        return self._node_cache[key]

    @cached_property
    def module_source(self) -> str:
        return self.file.read_text(encoding="utf-8") if self.file and self.file.exists() else ""

    @cached_property
    def hash(self) -> str:
        """SHA-256 of the policy module's source."""
        return hashlib.sha256(self.module_source.encode()).hexdigest()

    def check(self) -> list[DialogueError]:
        """Errors and warnings of this policy against its catalog (see `dialogue.checks`)."""
        from .checks import check_policy

        return check_policy(self)


class _EmptyState(BaseModel):
    model_config = ConfigDict(extra="forbid")


def load_policy(path: str | Path, *, check: bool = True) -> Policy:
    """Load a policy by path and, by default, check it against its catalog.

    `path` is a Python module defining `policy = Policy(...)`, or a conversation tree
    (`NAME.tree.toml`). Raises `PolicyError` (or `CatalogError`) with file and line when
    anything is wrong; warnings are kept on `policy.warnings`.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"no policy file at {path}",
                          hint="pass the path of a policies/NAME.py or NAME.tree.toml file")
    if path.name.endswith(".tree.toml"):
        from .tree import load_tree

        policy = load_tree(path)
    else:
        policy = _policy_of_module(path)
    log.info("loaded policy %r from %s: %d node%s", policy.name, path, len(policy.nodes),
             "s" * (len(policy.nodes) != 1))
    if check:
        problems = policy.check()
        errors = [p for p in problems if getattr(p, "kind", "error") == "error"]
        policy.warnings = [p for p in problems if getattr(p, "kind", "error") != "error"]
        if errors:
            raise errors[0] if len(errors) == 1 else _combined(errors)
    return policy


def _policy_of_module(path: Path) -> Policy:
    module = _import_module(path)
    policy = getattr(module, "policy", None)
    if not isinstance(policy, Policy):
        raise PolicyError(f"{path} defines no `policy = Policy(...)` at module level",
                          location=Location(str(path)),
                          hint="add: policy = Policy('name', catalog='../catalogs/name.toml', ...)")
    policy.module = module
    policy.file = path.resolve()
    if not policy.nodes:
        raise PolicyError(f"policy {policy.name!r} has no decision function",
                          location=Location(str(path)), hint="decorate one function with @policy.decide")
    if policy._start is not None and policy._start not in policy.nodes:
        raise PolicyError(f"policy {policy.name!r} starts at node {policy._start!r}, which does not exist",
                          location=Location(str(path)), hint=f"nodes: {', '.join(policy.nodes)}")
    return policy


def _combined(errors: list[DialogueError]) -> PolicyError:
    first = errors[0]
    err = PolicyError(f"{len(errors)} errors; the first: {getattr(first, 'message', first)}",
                      location=getattr(first, "location", None), entry=getattr(first, "entry", None),
                      hint=getattr(first, "hint", None))
    err.errors = errors
    err.args = ("\n".join(str(e) for e in errors),)
    return err


def _import_module(path: Path) -> ModuleType:
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"dialogue_policy_{path.stem.replace('.', '_')}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PolicyError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except DialogueError:
        sys.modules.pop(name, None)
        raise
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        loc = Location(str(path), exc.lineno, exc.offset, exc.text)
        raise PolicyError(f"syntax error: {exc.msg}", location=loc) from None
    except Exception as exc:
        sys.modules.pop(name, None)
        raise PolicyError(f"importing the policy raised {type(exc).__name__}: {exc}",
                          location=location_in(exc, path)) from exc
    return module


def location_in(exc: BaseException, path: Path | str | None) -> Location | None:
    """The innermost traceback frame of `exc` that lies in `path`, as a Location."""
    if path is None:
        return None
    target = str(Path(path).resolve())
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()) == target:
            found = frame
    if found is None:
        return Location(str(path))
    column = found.colno + 1 if found.colno is not None else None
    one_line = found.end_lineno == found.lineno and found.end_colno is not None and column is not None
    span = max(1, found.end_colno - found.colno) if one_line else 1
    source = linecache.getline(found.filename, found.lineno) or found.line  # unstripped: the column counts indent
    return Location(str(path), found.lineno, column, source, span)


def _where(fn: Callable) -> Location | None:
    code = getattr(fn, "__code__", None)
    return Location(code.co_filename, code.co_firstlineno) if code else None


def _pydantic_summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'state'}: {e['msg']}" for e in exc.errors())


def _is_data(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool, type(None))):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_is_data(v) for v in value)
    if isinstance(value, dict):
        return all(_is_data(k) and _is_data(v) for k, v in value.items())
    return False


def _global_names(fn: Callable) -> list[str]:
    """Global names the function (and its nested code) reads, in first-use order."""
    seen: dict[str, None] = {}
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        for name in code.co_names:
            seen.setdefault(name)
        stack.extend(c for c in code.co_consts if inspect.iscode(c))
    return list(seen)


MAIN = "main"


def _source(fn: Callable) -> str:
    generated = getattr(fn, "__dialogue_source__", None)
    return generated if generated is not None else textwrap.dedent(inspect.getsource(fn)).strip()


def _constants(fn: Callable) -> dict[str, Any]:
    module_globals = fn.__globals__
    return {n: module_globals[n] for n in _global_names(fn)
            if n in module_globals and _is_data(module_globals[n])}


def _runs(policy: Policy, node: str) -> list[tuple]:
    """The `said` steps of every explored path of `node`, over the default and sample states."""
    from .explore import explore  # explore builds on this module

    runs: list[tuple] = []
    for data in (None, *policy.sample_states):
        try:
            runs += [path.steps for path in explore(policy, data, node=node).paths]
        except DialogueError:  # a state that does not validate or explore: lint reports it
            continue
    return runs


def _questions(fn: Callable, runs: list[tuple]) -> tuple[Question, ...]:
    """The questions written in `fn`, with those its runs asked merged in where they were asked."""
    found = {(q.kind, q.text): q for q in _find_questions(fn)}
    order = list(found)
    lines = _call_lines(fn) if runs else {}
    for steps in runs:
        at = 0
        for step in steps:
            key = (step.kind, step.question)
            if key not in found:
                order.insert(at, key)
            found[key] = _with_step(found.get(key), step, lines.get(key))
            at = order.index(key) + 1
    return tuple(found[key] for key in order)


def _with_step(question: Question | None, step: Any, line: int | None) -> Question:
    """`question` (None: not written literally) with what a run of `step` showed added."""
    pick = step.kind == "pick"
    examples = {option: list(e) for option, e in step.examples if e} if pick else list(step.examples)
    options = tuple(step.options) if pick else ()
    if question is None:
        return Question(step.kind, step.question, examples or (), options, line)
    return Question(question.kind, question.text, _union(question.examples, examples) or (),
                    tuple(dict.fromkeys((*question.options, *options))), question.line)


def _union(written: Any, asked: Any) -> Any:
    """Examples of two calls of one question, each message once, first seen first."""
    if isinstance(written, dict) or isinstance(asked, dict):
        written, asked = dict(written or {}), dict(asked or {})
        return {o: list(dict.fromkeys([*written.get(o, ()), *asked.get(o, ())])) for o in {**written, **asked}}
    return list(dict.fromkeys([*written, *asked]))


def _find_questions(fn: Callable) -> list[Question]:
    """The `said` calls written in `fn`'s source whose question is a literal or a constant."""
    source = _source(fn)
    first_line = getattr(fn, "__dialogue_first_line__", fn.__code__.co_firstlineno)
    said_name = next(iter(inspect.signature(fn).parameters), "said")
    generated = _constant_lines(fn) if getattr(fn, "__dialogue_source__", None) is not None else {}
    found: dict[tuple[str, str], Question] = {}
    for node in ast.walk(ast.parse(source)):
        kind = _said_call_kind(node, said_name)
        text = _literal(node.args[0], fn.__globals__) if kind is not None and node.args else None
        if not isinstance(text, str):
            continue
        examples = _literal(_keyword(node, "examples"), fn.__globals__)
        options = _literal(node.args[1], fn.__globals__) if kind == "pick" and len(node.args) > 1 else ()
        line = generated.get(text, first_line + node.lineno - 1)
        question = Question(kind, text, _copied(examples) or (), tuple(options or ()), line)
        if (kind, text) not in found or question.line < found[kind, text].line:
            found[kind, text] = question
    return sorted(found.values(), key=lambda q: q.line or 0)


def _constant_lines(fn: Callable) -> dict[str, int]:
    """Text constant -> the line of the compiled code that loads it first.

    A generated node (a conversation tree's) shows a compact source but is compiled with
    each branch on its line of the tree file: this is where its questions are written.
    """
    lines: dict[str, int] = {}
    for instruction in dis.get_instructions(fn):
        line = instruction.positions.lineno if instruction.positions else None
        if isinstance(instruction.argval, str) and line is not None:
            lines.setdefault(instruction.argval, line)
    return lines


def _copied(examples: Any) -> Any:
    """Examples as lists (a pick's as {option: [...]}), never the author's own objects."""
    if isinstance(examples, dict):
        return {option: list(e) for option, e in examples.items()}
    return list(examples) if isinstance(examples, (list, tuple)) else examples


def _call_lines(fn: Callable) -> dict[tuple[str, str], int]:
    """(kind, question) -> the first line of `fn`'s file calling `said` with it: helpers too."""
    if getattr(fn, "__dialogue_source__", None) is not None:
        return {}  # a generated node: every question is written in it
    try:
        tree = ast.parse(Path(fn.__code__.co_filename).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    lines: dict[tuple[str, str], int] = {}
    for node in ast.walk(tree):
        kind = _call_kind(node)
        text = _literal(node.args[0], fn.__globals__) if kind is not None and node.args else None
        if isinstance(text, str):
            lines[kind, text] = min(node.lineno, lines.get((kind, text), node.lineno))
    return lines


def _call_kind(node: ast.AST) -> str | None:
    """The kind of `said` call `node` would be, whatever the said object is named there."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return "ask"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("pick", "extract"):
        return node.func.attr
    return None


def _said_call_kind(node: ast.AST, said_name: str) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id == said_name:
        return "ask"
    if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            and func.value.id == said_name and func.attr in ("pick", "extract")):
        return func.attr
    return None


def _keyword(node: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _literal(node: ast.AST | None, namespace: dict) -> Any:
    """The value of a literal or of a module constant (or `list(CONST)`), else None."""
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if isinstance(node, ast.Name) and node.id in namespace and _is_data(namespace[node.id]):
        return namespace[node.id]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("list", "tuple", "sorted") and len(node.args) == 1):
        inner = _literal(node.args[0], namespace)
        return list(inner) if inner is not None else None
    return None
