"""The protocol of a tuned comparison of optimizers on a training task.

For every method: search its learning rate (its own range, >= 3 points per decade, widened at
the edges, successive halving over epochs) on a validation split with the tuning seed, scored
on the metric the claim is about; then train at the chosen rate with every evaluation seed on
the real split. Every run goes through the executor (cache, parallel workers).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
class Budget:
    """A claim's training length per scale, and how it relates to the paper's."""

    smoke: int
    quick: int
    full: int
    paper: str  # the paper's budget, in its words
    why: str  # why ours is long enough for the effect

    def at(self, scale: str) -> int:
        return {"smoke": self.smoke, "quick": self.quick, "full": self.full}[scale]

    def describe(self, scale: str, unit: str = "epochs") -> str:
        return f"ours: {self.at(scale)} {unit} ({scale} scale); the paper: {self.paper}. {self.why}"


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
    search: bool = True,
) -> dict[str, MethodOutcome]:
    """Search each method's rate, then run it with every seed. Returns outcomes by name.

    ``search=False`` (the smoke scale) runs one rate per method, the centre of its range.
    """
    budgets = halving_budgets(epochs)
    outcomes = {}
    for method in methods:
        lr_range = method.lr_range if search else method.lr_range.centre()

        def tuning_spec(lr: float, budget: int, name=method.name) -> RunSpec:
            return train_spec(task, name, lr, TUNING_SEED, budget, True, evals_per_epoch)

        result = search_lr(lr_range, budgets, tuning_spec, tune_on.score, executor.run)
        specs = [
            train_spec(task, method.name, result.best, seed, epochs, False, evals_per_epoch)
            for seed in seeds
        ]
        outcomes[method.name] = MethodOutcome(method, result, executor.run(specs))
    return outcomes


def paired(a: MethodOutcome, b: MethodOutcome, metric: str) -> PairedInterval:
    """Interval of mean(a - b) of ``metric`` over the shared seeds."""
    return paired_interval(a.values(metric), b.values(metric))


def planned_runs(methods: int, lr_points: int, seeds: int, epochs: int) -> int:
    """Progress units of :func:`tuned_comparison` without widening."""
    rungs = len(halving_budgets(epochs))
    tuning = sum(max(1, -(-lr_points // 3**r)) for r in range(rungs))
    return methods * (tuning + seeds)


def compare_on_problems(
    executor: Executor,
    problems: Sequence[str],
    methods: Sequence[Method],
    epochs: int,
    tune_on: Metric,
    seeds: Sequence[int],
    search: bool = True,
) -> dict[str, dict[str, MethodOutcome]]:
    """:func:`tuned_comparison` on every problem: ``outcomes[problem][method]``.

    The (problem, method) searches proceed concurrently (threads that only wait on the
    executor), so every worker process has runs to do even when one search has a single run
    left in its last rung.
    """
    pairs = [(p, m) for p in problems for m in methods]
    with ThreadPoolExecutor(max_workers=len(pairs)) as threads:
        futures = {
            (p, m.name): threads.submit(
                tuned_comparison, executor, p, [m], epochs, tune_on, seeds, search=search
            )
            for p, m in pairs
        }
        return {p: {m.name: futures[p, m.name].result()[m.name] for m in methods} for p in problems}


def per_seed(outcomes: dict[str, dict[str, MethodOutcome]], metric: str):
    """``values[problem][method]``: the metric of every seed's run."""
    return {p: {m: o.values(metric) for m, o in per.items()} for p, per in outcomes.items()}


def search_notes(outcomes: dict[str, dict[str, MethodOutcome]]) -> str:
    """Sentences on searches that widened past their range or stopped at a hard bound."""
    notes = []
    for problem, per_method in outcomes.items():
        for name, outcome in per_method.items():
            if outcome.search.at_bound:
                notes.append(f"{name} on {problem}: {outcome.search.note()}")
            elif outcome.search.widened:
                notes.append(f"{name} on {problem}: search widened to {outcome.search.widened}")
    return (" " + "; ".join(notes) + ".") if notes else ""
