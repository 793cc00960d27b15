"""What a claim is, what running it produces, and the context it runs in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from matplotlib.figure import Figure

SCALES = ("quick", "full")


class Verdict(StrEnum):
    HOLDS = "holds"
    DOES_NOT_HOLD = "does not hold"
    INCONCLUSIVE = "inconclusive"


@dataclass
class ClaimResult:
    """The outcome of one claim: verdict, a summary with the numbers, a table and a figure."""

    verdict: Verdict
    summary: str
    numbers: dict[str, Any]
    table: list[dict[str, Any]] = field(default_factory=list)
    figure: Figure | None = None


@dataclass
class RunContext:
    """Scale, seeds and a progress sink for a claim's run.

    ``plan(units)`` announces how many units of work (training runs, usually) the claim will do;
    ``advance()`` reports one done.
    """

    scale: str
    seeds: list[int]
    on_plan: Callable[[int], None] = lambda units: None
    on_advance: Callable[[int], None] = lambda units: None

    def plan(self, units: int) -> None:
        self.on_plan(units)

    def advance(self, units: int = 1) -> None:
        self.on_advance(units)

    def pick(self, quick, full):
        """The value for this run's scale."""
        return quick if self.scale == "quick" else full


@dataclass(frozen=True)
class Claim:
    """A statement of the notes, turned into an experiment with a criterion fixed in code.

    ``criterion`` states, before anything runs, the ordering or ratio that decides the verdict;
    ``run`` implements exactly that criterion.
    """

    id: str
    statement: str
    source: str
    criterion: str
    run: Callable[[RunContext], ClaimResult]
