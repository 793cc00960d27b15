"""Fair comparisons of optimizers: one shared learning-rate grid, tuning on a validation split,
then fresh seeds on the real split. Runs are cached, so claims that compare the same methods on
the same task at the same budget share them."""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass

import numpy as np

from gradkit.claims.base import RunContext
from gradkit.tasks import TrainResult, get_task, train

TUNING_SEED = 1000
"""Seed of the tuning runs; distinct from the evaluation seeds 0, 1, 2, ..."""


def lr_grid(scale: str, low: float = 1e-4, high: float = 1.0) -> list[float]:
    """Log grid over [low, high]: one point per decade (quick) or per half decade (full)."""
    per_decade = 2 if scale == "full" else 1
    count = round(math.log10(high / low) * per_decade) + 1
    return [float(x) for x in np.logspace(math.log10(low), math.log10(high), count)]


@functools.cache
def cached_run(
    task: str,
    optimizer: str,
    lr: float,
    seed: int,
    epochs: int,
    validation: bool,
    evals_per_epoch: int = 1,
    max_steps: int | None = None,
) -> TrainResult:
    """One training run, memoised on its full description."""
    spec = get_task(task)
    data = spec.load(seed)
    if validation:
        data = data.validation_split(0.2, seed)
    return train(
        spec,
        optimizer,
        lr=lr,
        epochs=epochs,
        seed=seed,
        data=data,
        evals_per_epoch=evals_per_epoch,
        max_steps=max_steps,
    )


def score(result: TrainResult, metric: str, last: int = 1) -> float:
    """Mean of ``metric`` over the last ``last`` evaluations (``inf`` if the run diverged)."""
    values = [e[metric] for e in result.evals[-last:]]
    if result.diverged or not all(math.isfinite(v) for v in values):
        return math.inf
    return sum(values) / len(values)


@dataclass
class MethodOutcome:
    """A method's tuned learning rate, its tuning curve and its runs at that rate."""

    method: str
    lr: float
    tuning: dict[float, float]
    runs: list[TrainResult]

    def median(self, metric: str, last: int = 1) -> float:
        return statistics.median(score_value(r, metric, last) for r in self.runs)

    def spread(self, metric: str, last: int = 1) -> tuple[float, float]:
        values = [score_value(r, metric, last) for r in self.runs]
        return min(values), max(values)


def score_value(result: TrainResult, metric: str, last: int = 1) -> float:
    """Like :func:`score`, but accuracies of diverged runs count as 0 (not inf)."""
    value = score(result, metric, last)
    if "accuracy" in metric and not math.isfinite(value):
        return 0.0
    return value


def tuned_comparison(
    ctx: RunContext,
    task: str,
    methods: list[str],
    epochs: int,
    grid: list[float],
    tune_metric: str = "test_loss",
    evals_per_epoch: int = 1,
    max_steps: int | None = None,
    last: int = 1,
    validation: bool = True,
) -> dict[str, MethodOutcome]:
    """Tune each method's lr on ``grid`` (minimising ``tune_metric`` over the ``last``
    evaluations, on a validation split unless ``validation`` is False, with seed
    :data:`TUNING_SEED`), then run it at that lr with every seed of ``ctx``."""
    outcomes = {}
    for method in methods:
        tuning = {}
        for lr in grid:
            run = cached_run(
                task, method, lr, TUNING_SEED, epochs, validation, evals_per_epoch, max_steps
            )
            tuning[lr] = score(run, tune_metric, last)
            ctx.advance()
        best = min(grid, key=lambda lr: (tuning[lr], lr))
        runs = []
        for seed in ctx.seeds:
            runs.append(
                cached_run(task, method, best, seed, epochs, False, evals_per_epoch, max_steps)
            )
            ctx.advance()
        outcomes[method] = MethodOutcome(method, best, tuning, runs)
    return outcomes


def tuned_lrs(outcomes: dict[str, dict[str, MethodOutcome]]) -> dict[str, dict[str, float]]:
    """The tuned learning rate of every method on every problem."""
    return {
        problem: {m: o.lr for m, o in per_method.items()}
        for problem, per_method in outcomes.items()
    }


def grid_edge_note(outcomes: dict[str, dict[str, MethodOutcome]], grid: list[float]) -> str:
    """A sentence naming the (problem, method) pairs whose tuned lr sits at an end of the grid,
    where a wider grid might have found a better rate; empty if there are none."""
    edges = [
        f"{method} on {problem} ({o.lr:.0e})"
        for problem, per_method in outcomes.items()
        for method, o in per_method.items()
        if o.lr in (grid[0], grid[-1])
    ]
    return f" Tuned lr at an end of the grid: {', '.join(edges)}." if edges else ""


def comparison_units(methods: int, grid: int, seeds: int) -> int:
    """Progress units :func:`tuned_comparison` reports."""
    return methods * (grid + seeds)
