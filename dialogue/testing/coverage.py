"""Coverage of a test run: responses emitted, decision paths taken, `said` questions answered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..said import ASK, EXTRACT

__all__ = ["Coverage"]


@dataclass
class Coverage:
    """What the cases exercised of one or more policies.

    Responses: approved catalog lines ever emitted, of all approved lines. Paths: decision
    paths taken, of those explored from every state the tests passed through. Questions:
    yes/no `said` questions answered both ways, of those on the explored paths.
    """

    approved: dict[str, set[str]] = field(default_factory=dict)  # policy -> approved ids
    emitted: dict[str, set[str]] = field(default_factory=dict)
    explored: set[tuple] = field(default_factory=set)  # (policy, node, path)
    taken: set[tuple] = field(default_factory=set)
    questions: dict[tuple, set[Any]] = field(default_factory=dict)  # (policy, node, question) -> answers

    def add_policy(self, policy) -> None:
        catalog = policy.catalog
        self.approved.setdefault(policy.name, {r.id for r in catalog if catalog.emittable(r.id)})
        self.emitted.setdefault(policy.name, set())

    def add_exploration(self, policy: str, node: str, exploration) -> dict[str, Any]:
        """Record the paths explored from one state; returns step text -> step, to map a trace."""
        steps = {}
        for path in exploration.paths:
            self.explored.add((policy, node, _path_key(path.steps)))
            for step in path.steps:
                if step.kind == EXTRACT:
                    continue  # an extracted value is symbolic here; it is no branch
                steps[step.describe()] = step
                if step.kind == ASK:
                    self.questions.setdefault((policy, node, step.question), set())
        return steps

    def add_turn(self, policy: str, node: str, lines: list[dict], path: list[str], steps: dict) -> None:
        """Record one turn: the lines said and the path taken (its steps as the trace writes them)."""
        self.emitted.setdefault(policy, set()).update(line["id"] for line in lines)
        taken = [steps[text] for text in path if text in steps]
        self.taken.add((policy, node, _path_key(taken)))
        for step in taken:
            if step.kind == ASK:
                self.questions.setdefault((policy, node, step.question), set()).add(step.answer)

    # -- the numbers -----------------------------------------------------------------

    @property
    def responses(self) -> tuple[int, int]:
        total = sum(len(ids) for ids in self.approved.values())
        said = sum(len(self.emitted.get(p, set()) & ids) for p, ids in self.approved.items())
        return said, total

    @property
    def never_emitted(self) -> list[str]:
        many = len(self.approved) > 1
        return sorted(f"{p}:{i}" if many else i for p, ids in self.approved.items()
                      for i in ids - self.emitted.get(p, set()))

    @property
    def paths(self) -> tuple[int, int]:
        return len(self.taken & self.explored), len(self.explored)

    @property
    def both_ways(self) -> tuple[int, int]:
        return sum(1 for answers in self.questions.values() if {True, False} <= answers), len(self.questions)

    @property
    def one_way(self) -> list[str]:
        """Questions never answered both ways, with the answers they got."""
        out = []
        for (_, _, question), answers in sorted(self.questions.items()):
            if not {True, False} <= answers:
                got = "/".join("yes" if a else "no" for a in sorted(answers, reverse=True)) or "never asked"
                out.append(f"{question!r}: {got}")
        return out

    @property
    def percent(self) -> float:
        said, total = self.responses
        return 100.0 * said / total if total else 100.0

    def __str__(self) -> str:
        said, total = self.responses
        taken, explored = self.paths
        both, questions = self.both_ways
        return (f"responses {said}/{total} ({self.percent:.0f}%); paths {taken}/{explored}; "
                f"said both ways {both}/{questions}")

    def report(self) -> str:
        """The summary and what is left: lines never emitted, questions answered one way."""
        out = [f"coverage: {self}"]
        if self.never_emitted:
            out.append("  never emitted: " + ", ".join(self.never_emitted))
        if self.one_way:
            out.append("  answered one way only:")
            out += [f"    {q}" for q in self.one_way]
        return "\n".join(out)

    def as_dict(self) -> dict[str, Any]:
        said, total = self.responses
        taken, explored = self.paths
        both, questions = self.both_ways
        return {"responses": {"emitted": said, "total": total, "percent": round(self.percent, 1),
                              "never_emitted": self.never_emitted},
                "paths": {"taken": taken, "explored": explored},
                "said": {"both_ways": both, "total": questions, "one_way": self.one_way}}


def _path_key(steps) -> tuple:
    return tuple((s.question, s.answer) for s in steps if s.kind != EXTRACT)
