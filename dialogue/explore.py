"""Exploration: run a decision function under every answer to its `said` questions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ValidationError

from . import deadline
from .errors import AuthorError, DialogueError, ExplorationError, PolicyError
from .policy import Policy, location_in
from .reply import Reply
from .said import EXTRACT, Extracted, Said, Step

__all__ = ["Exploration", "Path", "explore", "frozen_copy", "run_decision"]

MAX_PATHS = 4096
MAX_CALLS = 64
MAX_SECONDS = 5.0  # policy time for one exploration, or one decision during a turn


@dataclass(frozen=True)
class Path:
    """One run of the decision function: the questions asked, their answers, the reply."""

    steps: tuple[Step, ...]
    reply: Reply

    def describe(self) -> str:
        return " / ".join(s.describe() for s in self.steps) or "(no questions)"


@dataclass(frozen=True)
class Exploration:
    """Every path of a decision function for one state, and the replies they reach."""

    paths: tuple[Path, ...]

    @property
    def reachable(self) -> tuple[Reply, ...]:
        """Distinct replies, in the order exploration first reached them."""
        seen: dict[Reply, None] = {}
        for path in self.paths:
            seen.setdefault(path.reply)
        return tuple(seen)

    def paths_to(self, target: Reply) -> tuple[Path, ...]:
        return self._by_reply.get(target, ())

    @cached_property
    def _by_reply(self) -> dict[Reply, tuple[Path, ...]]:
        index: dict[Reply, list[Path]] = {}
        for path in self.paths:
            index.setdefault(path.reply, []).append(path)
        return {reply: tuple(paths) for reply, paths in index.items()}


class _ExploringSaid(Said):
    """Answers with a fixed prefix of choices, then the first option; records branching."""

    def __init__(self, prefix: list[int], max_calls: int) -> None:
        super().__init__()
        self.prefix = prefix
        self.max_calls = max_calls
        self.choices: list[int] = []
        self.widths: list[int] = []

    def _answer(self, step: Step, index: int) -> Any:
        if step.kind == EXTRACT:
            width, value = 1, Extracted(index, step.question, step.pattern, step.max_length)
        else:
            width = len(step.options)
            choice = self.prefix[index] if index < len(self.prefix) else 0
            value = step.options[choice]
        self.choices.append(self.prefix[index] if index < len(self.prefix) else 0)
        self.widths.append(width)
        return value

    def _repeated(self, step: Step, index: int) -> None:
        self.choices.append(0)
        self.widths.append(1)


class ReplayingSaid(Said):
    """Answers as a recorded path did; extractions get the values the model produced."""

    def __init__(self, steps: tuple[Step, ...], extracted: dict[int, str] | None = None) -> None:
        super().__init__()
        self.recorded = steps
        self.extracted = extracted or {}

    def _answer(self, step: Step, index: int) -> Any:
        if index >= len(self.recorded) or self.recorded[index].question != step.question:
            raise ExplorationError(
                f"the decision function asked {step.question!r} where the explored path asked "
                f"{self.recorded[index].question if index < len(self.recorded) else 'nothing'!r}",
                hint="a decision function must be deterministic: no randomness, clocks or I/O")
        if step.kind == EXTRACT:
            return self.extracted.get(index, "")
        return self.recorded[index].answer


_FROZEN: dict[type, type] = {}


def frozen_copy(state: BaseModel) -> BaseModel:
    """A read-only copy of `state`: assigning a field raises."""
    cls = type(state)
    frozen = _FROZEN.get(cls)
    if frozen is None:
        frozen = type(f"Frozen{cls.__name__}", (cls,),
                      {"model_config": {**cls.model_config, "frozen": True}, "__module__": cls.__module__})
        _FROZEN[cls] = frozen
    return frozen.model_construct(**state.model_copy(deep=True).__dict__)


def run_decision(policy: Policy, said: Said, state: BaseModel, node: str | None = None,
                 max_seconds: float | None = None) -> Reply:
    """Call a node's decision function once; convert its mistakes to `PolicyError`s.

    Bounded by `max_seconds` (default `MAX_SECONDS`) of policy time, unless an
    exploration's bound is active.
    """
    max_seconds = MAX_SECONDS if max_seconds is None else max_seconds
    with deadline.bounded(max_seconds, lambda: _over_time(policy, node, max_seconds, "the decision function")):
        return _decision_result(policy, said, state, node)


def _decision_result(policy: Policy, said: Said, state: BaseModel, node: str | None) -> Reply:
    decision = policy.decision_of(node)
    try:
        result = decision(said, state)
    except AuthorError as exc:
        raise _located(exc, policy) from None
    except DialogueError:
        raise
    except (SystemExit, KeyboardInterrupt) as exc:
        budget = deadline.active()
        if isinstance(exc, KeyboardInterrupt) and budget is not None and budget.interrupted:
            raise  # a real Ctrl-C: it stops the program, as anywhere else
        raise _raised(policy, said, exc) from None
    except ValidationError as exc:
        if "frozen" in str(exc):
            raise ExplorationError("the decision function assigned to the state",
                                   location=location_in(exc, policy.file),
                                   hint="the decision only reads the state; change it in an "
                                        "@policy.effect(...) function") from None
        raise _raised(policy, said, exc) from exc
    except Exception as exc:
        raise _raised(policy, said, exc) from exc
    if not isinstance(result, Reply):
        raise PolicyError(f"the decision function returned {result!r}, not a reply",
                          location=location_in_function(policy, node),
                          hint='every path must end in return reply("ID", ...); '
                               f"the path: {' / '.join(s.describe() for s in said.steps) or '(none)'}")
    return result


def _located(exc: AuthorError, policy: Policy) -> AuthorError:
    """`exc` (a `said.pick` without options, a computation on an extracted value) at the line
    of the policy that made it, when it was raised without a location."""
    if exc.location is not None or hasattr(exc, "errors"):
        return exc
    return type(exc)(exc.message, location=location_in(exc, policy.file), entry=exc.entry, hint=exc.hint)


def _raised(policy: Policy, said: Said, exc: Exception) -> PolicyError:
    path = " / ".join(s.describe() for s in said.steps) or "(no questions)"
    return ExplorationError(f"the decision function raised {type(exc).__name__}: {exc}",
                            location=location_in(exc, policy.file), hint=f"on the path: {path}")


def _over_time(policy: Policy, node: str | None, seconds: float, what: str) -> ExplorationError:
    return ExplorationError(
        f"policy {policy.name!r}, node {node or policy.start!r}: {what} ran past its bound of {seconds:g} s",
        location=location_in_function(policy, node),
        hint="a decision function only reads the state and asks said(): no loops that wait, no sleep, "
             "no I/O; raise the bound with explore(..., max_seconds=N) if the work is intended")


def location_in_function(policy: Policy, node: str | None = None):
    from .errors import Location

    code = policy.decision_of(node).__code__
    return Location(code.co_filename, code.co_firstlineno)


def explore(policy: Policy, state: BaseModel | dict | None = None, *, node: str | None = None,
            max_paths: int = MAX_PATHS, max_calls: int = MAX_CALLS,
            max_seconds: float | None = None) -> Exploration:
    """Every path of a node's decision function (default: the start node) for `state`.

    Depth-first over every answer to its `said` calls, bounded.

    Raises `ExplorationError` when the function blows a bound (paths, said calls on a
    path, `max_seconds` (default `MAX_SECONDS`) for the whole exploration), mutates the state or
    computes on an extracted value; the message names the policy and the bound.
    """
    state = policy.new_state(state) if not isinstance(state, BaseModel) else state
    max_seconds = MAX_SECONDS if max_seconds is None else max_seconds
    with deadline.bounded(max_seconds, lambda: _over_time(policy, node, max_seconds, "exploration")):
        return _explored(policy, state, node, max_paths, max_calls)


def _explored(policy: Policy, state: BaseModel, node: str | None, max_paths: int, max_calls: int) -> Exploration:
    before = state.model_dump()
    frozen = frozen_copy(state)
    paths: list[Path] = []
    prefix: list[int] = []
    while True:
        said = _ExploringSaid(prefix, max_calls)
        result = run_decision(policy, said, frozen, node)
        paths.append(Path(tuple(said.steps), result))
        if len(paths) > max_paths:
            raise ExplorationError(
                f"policy {policy.name!r}, node {node or policy.start!r}: more than {max_paths} paths "
                f"for this state",
                hint="simplify the decision tree, or raise the bound: explore(..., max_paths=N)")
        prefix = _next_prefix(said.choices, said.widths)
        if prefix is None:
            break
    if frozen.model_dump() != before:
        raise ExplorationError(f"the decision function of {policy.name!r} changed the state",
                               location=location_in_function(policy, node),
                               hint="the decision only reads the state (lists and dicts too); "
                                    "change it in an @policy.effect(...) function")
    return Exploration(tuple(paths))


def _next_prefix(choices: list[int], widths: list[int]) -> list[int] | None:
    """The next answer sequence in depth-first order, or None when all are done."""
    for i in range(len(choices) - 1, -1, -1):
        if choices[i] + 1 < widths[i]:
            return choices[:i] + [choices[i] + 1]
    return None


