"""The protocol of a tuned comparison of optimizers on a training task.

For every method: search its learning rate (its own range, >= 3 points per decade, widened at
the edges, successive halving over epochs) on a validation split with the tuning seed, scored
on the metric the claim is about; then train at the chosen rate with every evaluation seed on
the real split. Every run goes through the executor (cache, parallel workers).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from gradkit.experiments.executor import Executor
from gradkit.experiments.runs import RunRecord, RunSpec
from gradkit.experiments.search import LrRange, SearchResult, halving_budgets, search_lr
from gradkit.experiments.stats import PairedInterval, paired_interval

TUNING_SEED = 1000
"""Seed of the tuning runs (model, data order and validation split); evaluation seeds are
0, 1, 2, ..."""

TRAIN = "gradkit.experiments.kinds:train_task"


@dataclass(frozen=True)
class Method:
    """An optimizer of the registry, how to label it, and where to search its rate."""

    name: str
    label: str
    lr_range: LrRange


@dataclass(frozen=True)
class Metric:
    """A metric of a run's final evaluation and its direction. On a tuning run the held-out
    validation split is what the record calls ``test_*``."""

    name: str
    higher_is_better: bool = False

    def score(self, record: RunRecord) -> float:
        """Lower is better (accuracies negated; a diverged run's loss is inf)."""
        value = record.metric(self.name)
        return -value if self.higher_is_better else value


@dataclass
class MethodOutcome:
    """A method's search and its runs at the chosen rate, one per evaluation seed."""

    method: Method
    search: SearchResult
    runs: list[RunRecord]

    @property
    def lr(self) -> float:
        return self.search.best

    def values(self, metric: str) -> list[float]:
        return [r.metric(metric) for r in self.runs]

    def median(self, metric: str) -> float:
        return statistics.median(self.values(metric))


def train_spec(
    task: str, optimizer: str, lr: float, seed: int, epochs: int, validation: bool, evals: int
) -> RunSpec:
    """One training run of ``task`` (see :func:`gradkit.experiments.kinds.train_task`)."""
    return RunSpec.of(
        TRAIN,
        task=task,
        optimizer=optimizer,
        lr=lr,
        seed=seed,
        epochs=epochs,
        validation=validation,
        evals_per_epoch=evals,
    )


def tuned_comparison(
    executor: Executor,
    task: str,
    methods: Sequence[Method],
    epochs: int,
    tune_on: Metric,
    seeds: Sequence[int],
    evals_per_epoch: int = 1,
) -> dict[str, MethodOutcome]:
    """Search each method's rate, then run it with every seed. Returns outcomes by name."""
    budgets = halving_budgets(epochs)
    outcomes = {}
    for method in methods:

        def tuning_spec(lr: float, budget: int, name=method.name) -> RunSpec:
            return train_spec(task, name, lr, TUNING_SEED, budget, True, evals_per_epoch)

        search = search_lr(method.lr_range, budgets, tuning_spec, tune_on.score, executor.run)
        specs = [
            train_spec(task, method.name, search.best, seed, epochs, False, evals_per_epoch)
            for seed in seeds
        ]
        outcomes[method.name] = MethodOutcome(method, search, executor.run(specs))
    return outcomes


def paired(a: MethodOutcome, b: MethodOutcome, metric: str) -> PairedInterval:
    """Interval of mean(a - b) of ``metric`` over the shared seeds."""
    return paired_interval(a.values(metric), b.values(metric))


def planned_runs(methods: int, lr_points: int, seeds: int, epochs: int) -> int:
    """Progress units of :func:`tuned_comparison` without widening."""
    rungs = len(halving_budgets(epochs))
    tuning = sum(max(1, -(-lr_points // 3**r)) for r in range(rungs))
    return methods * (tuning + seeds)
