"""The protocol of a tuned comparison of methods on a problem.

For every method: search its learning rate (its own range, >= 3 points per decade, successive
halving over the budget, the choice a local optimum of the full budget's score on three tuning
seeds, widened past the range's edges where that optimum lies beyond) on tuning runs (seeds
apart from the evaluation seeds; a validation split for training tasks), scored on the metric
the claim is about; then run it at the chosen rate with every evaluation seed. Every run goes
through the executor (cache, parallel workers); the searches of all (problem, method) pairs
proceed concurrently.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from gradkit.checks import InputError
from gradkit.experiments.executor import Executor
from gradkit.experiments.runs import RunRecord, RunSpec
from gradkit.experiments.search import (
    LrRange,
    SearchResult,
    halving_budgets,
    lattice_index,
    lattice_value,
    search_lr,
)
from gradkit.experiments.stats import PairedInterval, paired_interval

TUNING_SEEDS = (1000, 1001, 1002)
"""Seeds of the tuning runs (model, data order and validation split): the first screens every
rate, all three compare the rates that survive it, at the full budget too; evaluation seeds are
0, 1, 2, ... (and never reach these)."""


def evaluation_seeds(count: int, first: int = 0) -> list[int]:
    """The evaluation seeds first, ..., first + count - 1; they must not reach the tuning seeds
    (a rate tuned on a seed would then be judged on it)."""
    seeds = list(range(first, first + count))
    if first < 0 or set(seeds) & set(TUNING_SEEDS):
        raise InputError(
            f"evaluation seeds {first}..{first + count - 1} must be >= 0 and stay clear of the "
            f"tuning seeds {', '.join(map(str, TUNING_SEEDS))}; choose another first seed"
        )
    return seeds


@dataclass(frozen=True)
class Budget:
    """A claim's run length per scale, and how it relates to the paper's."""

    smoke: int
    quick: int
    full: int
    paper: str  # the paper's budget, in its words
    why: str  # why ours is long enough for the effect
    unit: str = "epochs"

    def at(self, scale: str) -> int:
        return {"smoke": self.smoke, "quick": self.quick, "full": self.full}[scale]

    def describe(self, scale: str) -> str:
        ours = f"ours: {self.at(scale)} {self.unit} ({scale} scale)"
        return f"{ours}; the paper: {self.paper}. {self.why}"


@dataclass(frozen=True)
class Method:
    """A method: its name in results, its label, where to search its rate, and what it runs
    (``optimizer``, the name the run kind knows, default ``name``; ``hyper``, extra keyword
    arguments, as (key, value) pairs)."""

    name: str
    label: str
    lr_range: LrRange
    optimizer: str = ""
    hyper: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def runs(self) -> str:
        return self.optimizer or self.name


@dataclass(frozen=True)
class Metric:
    """A metric of a run's final evaluation and its direction. On a tuning run of a training
    task the held-out validation split is what the record calls ``test_*``. A metric with a
    ``tie_break`` is a count to a target within the run's budget (budget + 1: never reached),
    whose ties the tie-break metric (in [0, 1), lower is better) breaks."""

    name: str
    higher_is_better: bool = False
    tie_break: str = ""

    def score(self, record: RunRecord) -> float:
        """Lower is better (accuracies negated; a diverged run's loss is inf)."""
        value = record.metric(self.name)
        value = -value if self.higher_is_better else value
        if self.tie_break:
            value += min(max(record.metric(self.tie_break), 0.0), 0.999)
        return value


@dataclass
class MethodOutcome:
    """A method's search and its runs at the chosen rate, one per evaluation seed. An outcome
    made by :func:`tuned_runs` also knows how to run more of itself (``source``, ``budget``):
    more seeds (:meth:`extend`) or another rate (:meth:`at`)."""

    method: Method
    search: SearchResult
    runs: list[RunRecord]
    source: SpecFactory | None = field(default=None, repr=False, compare=False)
    budget: int | None = None

    @classmethod
    def fixed(
        cls,
        method: Method,
        value: float,
        runs: list[RunRecord],
        source: SpecFactory | None = None,
        budget: int | None = None,
    ) -> MethodOutcome:
        """An outcome whose rate was set, not searched (e.g. a paper's value); given ``source``
        and ``budget``, it can run more of itself."""
        return cls(
            method, SearchResult(value, [{value: math.nan}], [], False), runs, source, budget
        )

    @property
    def lr(self) -> float:
        return self.search.best

    @property
    def searched(self) -> bool:
        """Whether its rate was chosen among several (not set, nor one rate at smoke scale)."""
        return len(self.search.searched()) > 1

    def extend(self, executor: Executor, seeds: Sequence[int]) -> None:
        """Run the seeds of ``seeds`` beyond those already run (its first ``len(runs)`` are)."""
        new = list(seeds)[len(self.runs) :]
        self.runs += runs_at(executor, self._source(), self.method, self.lr, self.budget, new)

    def at(self, executor: Executor, lr: float, seeds: Sequence[int]) -> MethodOutcome:
        """The same method at ``lr`` (reported as its rate), run with ``seeds``."""
        runs = runs_at(executor, self._source(), self.method, lr, self.budget, seeds)
        search = replace(self.search, best=lr)
        return MethodOutcome(self.method, search, runs, self.source, self.budget)

    def _source(self) -> SpecFactory:
        if self.source is None or self.budget is None:
            raise RuntimeError(
                f"the outcome of {self.method.name} does not know how its runs were made (give "
                "it source and budget, as tuned_runs and fixed_outcomes do)"
            )
        return self.source

    def neighbours(self) -> list[float]:
        """The lattice points next to the chosen rate, inside the method's hard bounds."""
        r, k = self.method.lr_range, lattice_index(self.lr, self.method.lr_range.per_decade)
        values = (lattice_value(k + step, r.per_decade) for step in (-1, 1))
        return [v for v in values if r.floor <= v <= r.ceiling]

    def values(self, metric: str) -> list[float]:
        return [r.metric(metric) for r in self.runs]

    def median(self, metric: str) -> float:
        return statistics.median(self.values(metric))


SpecFactory = Callable[[Method, float, int, int, bool], RunSpec]
"""(method, lr, budget, seed, tuning) -> the run."""


@dataclass(frozen=True)
class BatchedRuns:
    """A spec factory whose evaluation seeds may also run as one run: ``batched(method, lr,
    budget, seeds)`` is that run (None where batching does not apply), its record's
    ``extra["runs"]`` one record (as JSON) per seed."""

    each: SpecFactory
    batched: Callable[[Method, float, int, Sequence[int]], RunSpec | None]

    def __call__(self, method: Method, lr: float, budget: int, seed: int, tuning: bool) -> RunSpec:
        return self.each(method, lr, budget, seed, tuning)


def runs_per_seed(
    executor: Executor,
    keys: Sequence[str],
    seeds: Sequence[int],
    make: Callable[[str, int], RunSpec],
) -> dict[str, list[RunRecord]]:
    """The run ``make(key, seed)`` of every key for every seed, executed together:
    ``records[key]``, one per seed."""
    records = executor.run([make(key, seed) for key in keys for seed in seeds])
    return {key: records[i * len(seeds) : (i + 1) * len(seeds)] for i, key in enumerate(keys)}


def tuned_runs(
    executor: Executor,
    make_spec: SpecFactory,
    method: Method,
    budget: int,
    tune_on: Metric,
    seeds: Sequence[int],
    search: bool = True,
    min_rung: int = 1,
) -> MethodOutcome:
    """Search ``method``'s rate (successive halving up to ``budget``, no rung shorter than
    ``min_rung``), then run every seed.

    ``search=False`` (the smoke scale) runs one rate, the centre of the method's range, on one
    tuning seed.
    """
    lr_range = method.lr_range if search else method.lr_range.centre()
    result = search_lr(
        lr_range,
        halving_budgets(budget, minimum=min(min_rung, budget)),
        lambda lr, rung, seed: make_spec(method, lr, rung, seed, True),
        tune_on.score,
        executor.run,
        TUNING_SEEDS if search else TUNING_SEEDS[:1],
        counts=bool(tune_on.tie_break),
    )
    runs = runs_at(executor, make_spec, method, result.best, budget, seeds)
    return MethodOutcome(method, result, runs, make_spec, budget)


def runs_at(
    executor: Executor,
    make_spec: SpecFactory,
    method: Method,
    lr: float,
    budget: int,
    seeds: Sequence[int],
) -> list[RunRecord]:
    """``method`` at ``lr`` with every evaluation seed (e.g. a rate tuned elsewhere), as one
    batched run where the spec factory offers it."""
    spec = (
        make_spec.batched(method, lr, budget, seeds) if isinstance(make_spec, BatchedRuns) else None
    )
    if spec is not None:
        (record,) = executor.run([spec])
        return [RunRecord.from_json(run) for run in record.extra["runs"]]
    return executor.run([make_spec(method, lr, budget, seed, False) for seed in seeds])


def compare_on_problems(
    executor: Executor,
    problems: dict[str, SpecFactory],
    methods: Sequence[Method] | Mapping[str, Sequence[Method]],
    budget: int,
    tune_on: Metric,
    seeds: Sequence[int],
    search: bool = True,
    min_rung: int = 1,
) -> dict[str, dict[str, MethodOutcome]]:
    """:func:`tuned_runs` of every method on every problem: ``outcomes[problem][method]``.
    ``methods`` is one sequence for every problem, or a mapping problem -> its methods (e.g.
    rate ranges that depend on the problem).

    The (problem, method) searches proceed concurrently (threads that only wait on the
    executor), so every worker process has runs to do even when one search has a single run
    left in its last rung.
    """
    per_problem = {p: methods[p] if isinstance(methods, Mapping) else methods for p in problems}
    pairs = [(p, m) for p in problems for m in per_problem[p]]
    threads = ThreadPoolExecutor(max_workers=len(pairs))
    try:
        futures = {
            (p, m.name): threads.submit(
                tuned_runs, executor, problems[p], m, budget, tune_on, seeds, search, min_rung
            )
            for p, m in pairs
        }
        return {p: {m.name: futures[p, m.name].result() for m in per_problem[p]} for p in problems}
    finally:  # an interruption must not wait for every search to finish
        threads.shutdown(wait=False, cancel_futures=True)


def paired(a: MethodOutcome, b: MethodOutcome, metric: str) -> PairedInterval:
    """Interval of mean(a - b) of ``metric`` over the shared seeds."""
    return paired_interval(a.values(metric), b.values(metric))


@dataclass(frozen=True)
class SearchAudit:
    """A search checked against the whole grid at the full budget: the rate it chose and the
    grid's best, each with its mean score over the tuning seeds (lower is better)."""

    problem: str
    method: str
    chosen: float
    chosen_score: float
    best: float
    best_score: float

    @property
    def agrees(self) -> bool:
        return self.chosen == self.best or self.chosen_score <= self.best_score


def audit_searches(
    executor: Executor,
    problems: dict[str, SpecFactory],
    outcomes: dict[str, dict[str, MethodOutcome]],
    budget: int,
    tune_on: Metric,
) -> list[SearchAudit]:
    """Run every rate each search saw (its range and whatever it added) at the full budget on
    every tuning seed, and compare the search's choice with the grid's best: the diagnostic
    that shows whether the screen drops rates the full budget prefers. Runs the searches
    already made come from the cache. Outcomes that were not searched are skipped."""
    grids = {
        (p, name): sorted(set(o.method.lr_range.values()) | set(o.search.searched()))
        for p, per in outcomes.items()
        for name, o in per.items()
        if len(o.search.searched()) > 1
    }
    specs = [
        problems[p](outcomes[p][name].method, lr, budget, seed, True)
        for (p, name), grid in grids.items()
        for lr in grid
        for seed in TUNING_SEEDS
    ]
    scores = iter(tune_on.score(r) for r in executor.run(specs))
    audits = []
    for (p, name), grid in grids.items():
        mean = {lr: statistics.fmean(next(scores) for _ in TUNING_SEEDS) for lr in grid}
        best = min(grid, key=lambda lr: (mean[lr], lr))
        chosen = outcomes[p][name].lr
        audits.append(SearchAudit(p, name, chosen, mean[chosen], best, mean[best]))
    return audits
