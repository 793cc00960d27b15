"""Learning-rate search: a log lattice with several points per decade, successive halving over
budgets, and a final choice that the full budget confirms.

The lattice is 10^(k / per_decade) for integer k (3 significant digits), so every search on a
method shares points (and cached runs) with every other. A method's range is given in its own
units (signSGD's rates are ~1000x smaller than SGD's). Successive halving runs every point of
that range at the first (smallest) budget, keeps the best ``1/eta`` for the next budget, and so
on up to the full budget.

Short budgets favour large rates, so the rungs before the last only screen: the choice is made
at the full budget, and it is a local optimum there. While a lattice neighbour of the best rate
(one point below or above, inside the hard bounds) has not run at the full budget, it runs, and
the best moves to it if it scores better; a neighbour the screen dropped comes back this way,
and so does a point beyond the initial range (widening). While every rate run at the full budget
diverged, the next smaller one runs (down to the bottom of the initial range).

A count to a target (iterations, steps) cannot rank rates on a rung where none reaches the
target within the rung's budget: there every rate goes on, rather than being ranked by how
close it came (which can drop the only rate that reaches the target at the full budget).

A neighbour must score strictly better to move the choice: on a plateau (no rate reaching a
target, every score the same) ties would otherwise walk it to a bound. A tie is not a slope
either, so past a neighbour that ties the best the next point runs too: the audit found Signum's
validation accuracy equal at two neighbouring rates and better one point further.

The rungs before the last screen on one tuning seed; at the full budget every comparison scores
a rate by its mean over every tuning seed, so a rate that diverges on any of them scores inf and
is never chosen. One seed cannot tell a good rate from one at the edge of stability that
happened to survive it (such a rate then fails on most evaluation seeds), but it can screen: an
edge-of-stability finalist diverges on another seed at the full budget, and the choice walks
down from it there. A rung shorter than a
schedule's warm-up judges the warm-up, not the method: a claim with a warm-up sets the shortest
rung (``halving_budgets(..., minimum=)``) past it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gradkit.checks import InputError
from gradkit.experiments.runs import RunRecord, RunSpec


def lattice_value(k: int, per_decade: int) -> float:
    return float(f"{10 ** (k / per_decade):.3g}")


def lattice_index(value: float, per_decade: int) -> int:
    return round(math.log10(value) * per_decade)


@dataclass(frozen=True)
class LrRange:
    """Where a method's learning rate is searched: ``[low, high]`` to start, never beyond
    ``[floor, ceiling]``, ``per_decade`` lattice points per decade (at least 3)."""

    low: float
    high: float
    floor: float | None = None
    ceiling: float | None = None
    per_decade: int = 3

    def __post_init__(self) -> None:
        floor = self.low / 1e3 if self.floor is None else self.floor
        ceiling = self.high * 1e3 if self.ceiling is None else self.ceiling
        object.__setattr__(self, "floor", floor)
        object.__setattr__(self, "ceiling", ceiling)
        if not 0 < floor <= self.low <= self.high <= ceiling:
            raise InputError(
                f"learning-rate range must satisfy 0 < floor <= low <= high <= ceiling, got "
                f"floor={floor}, low={self.low}, high={self.high}, ceiling={ceiling}"
            )
        if self.per_decade < 1:
            raise InputError(f"per_decade must be >= 1, got {self.per_decade}")

    def indices(self) -> list[int]:
        d = self.per_decade
        return list(range(lattice_index(self.low, d), lattice_index(self.high, d) + 1))

    def values(self) -> list[float]:
        return [lattice_value(k, self.per_decade) for k in self.indices()]

    def centre(self) -> LrRange:
        """The lattice point at the middle of the range, alone and not widened."""
        indices = self.indices()
        value = lattice_value(indices[len(indices) // 2], self.per_decade)
        return LrRange(value, value, value, value, self.per_decade)


def halving_budgets(total: int, rungs: int = 3, eta: int = 3, minimum: int = 1) -> list[int]:
    """Budgets total/eta^(rungs-1), ..., total/eta, total (each >= ``minimum``, increasing,
    duplicates removed): the rungs of successive halving."""
    budgets = [max(minimum, round(total / eta**r)) for r in range(rungs - 1, -1, -1)]
    return sorted(set(budgets))


@dataclass
class SearchResult:
    """The chosen rate, the score of every rate at every rung, and how the search ended."""

    best: float
    scores: list[dict[float, float]]  # per rung: lr -> score (lower is better)
    budgets: list[int]
    at_bound: bool  # the best rate is at a hard bound: the optimum may lie beyond
    widened: list[float] = field(default_factory=list)  # rates added beyond the initial range

    def final_scores(self) -> dict[float, float]:
        return self.scores[-1]

    def searched(self) -> list[float]:
        return sorted({lr for rung in self.scores for lr in rung})

    def note(self) -> str:
        """One sentence for a report, empty when there is nothing to say (or nothing was
        searched)."""
        if not self.budgets:
            return ""
        if not math.isfinite(self.final_scores()[self.best]):
            return "every rate run at the full budget diverged on a tuning seed"
        if self.at_bound:
            return f"best lr {self.best:.3g} is at the hard bound of the search"
        return ""


def search_lr(
    lr_range: LrRange,
    budgets: Sequence[int],
    make_spec: Callable[[float, int, int], RunSpec],
    score: Callable[[RunRecord], float],
    run: Callable[[list[RunSpec]], list[RunRecord]],
    seeds: Sequence[int] = (0,),
    eta: int = 3,
    counts: bool = False,
) -> SearchResult:
    """Successive halving over ``budgets``; at the full budget, the best rate's lattice
    neighbours until it is a local optimum there.

    ``make_spec(lr, budget, seed)`` describes one tuning run, ``score(record)`` rates it (lower
    is better; a diverged run should score ``inf``), ``run(specs)`` executes a batch. Each rung
    before the last keeps the best ``1/eta`` of its rates and runs ``seeds[0]`` only; the full
    budget scores a rate by its mean over every seed. Ties go to the smaller
    rate. With ``counts``, scores are counts to a target within the rung's budget (budget + 1
    and more: not reached): a rung where no rate reached it cannot rank them, so every rate
    that did not diverge goes on.
    """
    if not seeds:
        raise InputError("search_lr needs at least one tuning seed")
    d = lr_range.per_decade
    lowest = lattice_index(lr_range.floor, d)
    highest = lattice_index(lr_range.ceiling, d)
    initial = set(lr_range.indices())
    survivors = sorted(initial)
    all_scores: list[dict[float, float]] = []

    for rung, budget in enumerate(budgets):
        runs: dict[tuple[int, int], float] = {}  # (lattice index, seed) -> score at this rung

        def scores_of(ks, rung_seeds, budget=budget, runs=runs) -> dict[int, float]:
            missing = [(k, seed) for k in ks for seed in rung_seeds if (k, seed) not in runs]
            specs = [make_spec(lattice_value(k, d), budget, seed) for k, seed in missing]
            runs.update(zip(missing, (score(r) for r in run(specs)), strict=True))
            return {k: statistics.fmean(runs[k, seed] for seed in rung_seeds) for k in ks}

        last = rung == len(budgets) - 1
        scores = scores_of(survivors, seeds if last else seeds[:1])
        if last:
            scores, best = _local_optimum(scores, scores_of, seeds, min(initial), lowest, highest)
        all_scores.append({lattice_value(k, d): v for k, v in scores.items()})
        ranked = sorted(scores, key=lambda k: (scores[k], k))
        survivors = ranked[: max(1, math.ceil(len(ranked) / eta))]
        if counts and all(v >= budget + 1 for v in scores.values()):  # none reached the target
            survivors = [k for k in ranked if math.isfinite(scores[k])] or survivors
    searched = {k for rung in all_scores for k in (lattice_index(lr, d) for lr in rung)}
    return SearchResult(
        best=lattice_value(best, d),
        scores=all_scores,
        budgets=list(budgets),
        at_bound=best in (lowest, highest) and lowest != highest,
        widened=[lattice_value(k, d) for k in sorted(searched - initial)],
    )


def _local_optimum(scores, scores_of, seeds, bottom: int, lowest: int, highest: int):
    """From the best of ``scores`` (ties to the smaller rate), run its missing lattice
    neighbours (inside [lowest, highest]) at the full budget and move to one only if it scores
    strictly better, until neither does; while the best diverged, run the next smaller rate
    instead, down to ``bottom``. A neighbour that ties the best is no evidence of a slope, so
    the point beyond it runs too (the best moves there only if it scores strictly better). On a
    plateau of equal scores (no rate reaching a target, say) the choice stays where it is
    rather than walking to a bound. Returns every score at the full budget and the chosen
    rate."""
    best = min(scores, key=lambda k: (scores[k], k))
    while True:
        if math.isfinite(scores[best]):
            near = [best - 1, best + 1]
            past = [2 * k - best for k in near if k in scores and scores[k] == scores[best]]
            new = [k for k in [*near, *past] if lowest <= k <= highest and k not in scores]
        else:
            new = [min(scores) - 1] if min(scores) - 1 >= bottom else []
        if not new:
            return scores, best
        scores = scores_of([*scores, *new], seeds)
        challenger = min(new, key=lambda k: (scores[k], k))
        if scores[challenger] < scores[best] or not math.isfinite(scores[best]):
            best = challenger
