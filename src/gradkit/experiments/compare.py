"""The protocol of a tuned comparison of methods on a problem.

For every method: search its learning rate (its own range, >= 3 points per decade, widened at
the edges, successive halving over the budget, rates compared on two tuning seeds) on tuning
runs (seeds apart from the evaluation seeds; a validation split for training tasks), scored on
the metric the claim is about; then run it at the chosen rate with every evaluation seed. Every
run goes through the executor (cache, parallel workers); the searches of all (problem, method)
pairs proceed concurrently.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gradkit.experiments.batched import ELEMENTWISE
from gradkit.experiments.executor import Executor
from gradkit.experiments.runs import RunRecord, RunSpec
from gradkit.experiments.search import LrRange, SearchResult, halving_budgets, search_lr
from gradkit.experiments.stats import PairedInterval, paired_interval

TUNING_SEEDS = (1000, 1001)
"""Seeds of the tuning runs (model, data order and validation split): the first screens every
rate, both compare the rates that survive it; evaluation seeds are 0, 1, 2, ..."""

TRAIN = "gradkit.experiments.kinds:train_task"
TRAIN_SEEDS = "gradkit.experiments.batched:train_task_seeds"
CONVEX = "gradkit.experiments.kinds:convex_run"
SIMULATE = "gradkit.experiments.kinds:simulate_run"
QUADRATIC = "gradkit.experiments.kinds:quadratic_run"
LOGISTIC = "gradkit.experiments.kinds:logistic_work_run"
DEEP_LINEAR = "gradkit.experiments.kinds:deep_linear_run"
STABILITY = "gradkit.experiments.kinds:noise_stability_run"
DEEP_CNN = "gradkit.experiments.deep_cnn:deep_cnn_run"
INIT_SPECTRUM = "gradkit.experiments.deep_cnn:init_spectrum_run"
DELAYED = "gradkit.experiments.async_delays:delayed_sgd_run"
DELAYED_SEEDS = "gradkit.experiments.async_delays:delayed_sgd_runs"
PROXIMAL = "gradkit.experiments.delay_tolerant:proximal_run"
STABILITY_EPOCHS = {"true": (30, 60), "random": (150, 300), "init": (1, 1)}
"""(quick, full) epochs of each net of :func:`stability_runs`: enough for both trained nets
to fit their labels (smoke: 2)."""


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
    task the held-out validation split is what the record calls ``test_*``."""

    name: str
    higher_is_better: bool = False
    tie_break: str = ""  # a metric in [0, 1), lower is better, that breaks ties (e.g. counts)

    def score(self, record: RunRecord) -> float:
        """Lower is better (accuracies negated; a diverged run's loss is inf)."""
        value = record.metric(self.name)
        value = -value if self.higher_is_better else value
        if self.tie_break:
            value += min(max(record.metric(self.tie_break), 0.0), 0.999)
        return value


@dataclass
class MethodOutcome:
    """A method's search and its runs at the chosen rate, one per evaluation seed."""

    method: Method
    search: SearchResult
    runs: list[RunRecord]

    @classmethod
    def fixed(cls, method: Method, value: float, runs: list[RunRecord]) -> MethodOutcome:
        """An outcome whose rate was set, not searched (e.g. a paper's value)."""
        return cls(method, SearchResult(value, [{value: math.nan}], [], False), runs)

    @property
    def lr(self) -> float:
        return self.search.best

    def values(self, metric: str) -> list[float]:
        return [r.metric(metric) for r in self.runs]

    def median(self, metric: str) -> float:
        return statistics.median(self.values(metric))


SpecFactory = Callable[[Method, float, int, int, bool], RunSpec]
"""(method, lr, budget, seed, tuning) -> the run."""


class TrainingRuns:
    """Runs of a registered training task (a :data:`SpecFactory`); tuning runs use a
    validation split; ``Method.hyper`` adds the kind's options (``pipeline``). With
    ``batch_seeds`` (off by default: see :mod:`gradkit.experiments.batched` for why), the
    evaluation seeds of a method with an elementwise optimizer train as one batched model
    (:mod:`gradkit.experiments.batched`), one run for all seeds."""

    def __init__(self, task: str, evals_per_epoch: int = 1, batch_seeds: bool = False) -> None:
        self.task, self.evals_per_epoch, self.batch_seeds = task, evals_per_epoch, batch_seeds

    def __call__(self, method: Method, lr: float, epochs: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            TRAIN,
            task=self.task,
            optimizer=method.runs,
            lr=lr,
            seed=seed,
            epochs=epochs,
            validation=tuning,
            evals_per_epoch=self.evals_per_epoch,
            **dict(method.hyper),
        )

    def batched(
        self, method: Method, lr: float, epochs: int, seeds: Sequence[int]
    ) -> RunSpec | None:
        """One run training every seed, or None where batching does not apply."""
        if not self.batch_seeds or method.runs not in ELEMENTWISE or len(seeds) < 2:
            return None
        return RunSpec.of(
            TRAIN_SEEDS,
            task=self.task,
            optimizer=method.runs,
            lr=lr,
            seeds=list(seeds),
            epochs=epochs,
            evals_per_epoch=self.evals_per_epoch,
        )


def training(task: str, evals_per_epoch: int = 1, batch_seeds: bool = False) -> TrainingRuns:
    """Runs of a registered training task (see :class:`TrainingRuns`)."""
    return TrainingRuns(task, evals_per_epoch, batch_seeds)


def full_batch(problem: str, target_gap: float, **options: Any) -> SpecFactory:
    """Full-batch runs on a convex problem of :mod:`gradkit.tasks.convex` (instance drawn from
    the seed, so tuning runs use a different instance)."""

    def make(method: Method, lr: float, iterations: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            CONVEX,
            problem=problem,
            seed=seed,
            optimizer=method.runs,
            lr=lr,
            iterations=iterations,
            target_gap=target_gap,
            options=options,
            hyper=dict(method.hyper),
        )

    return make


def logistic_work(problem: str, target_gap: float) -> SpecFactory:
    """Runs of :func:`gradkit.experiments.kinds.logistic_work_run` on a logistic regression of
    :mod:`gradkit.tasks.logistic`, budgets in epochs of per-sample gradients. The searched value
    is PBQN's ``theta`` (its own unit; it has no learning rate) and the learning rate of the
    others; ``Method.hyper`` adds the kind's options (``batch``, ``theta``)."""

    def make(method: Method, value: float, epochs: int, seed: int, tuning: bool) -> RunSpec:
        rate = {"theta": value, "lr": 1.0} if method.runs == "pbqn" else {"lr": value}
        options = dict(method.hyper) | rate
        return RunSpec.of(
            LOGISTIC, problem=problem, seed=seed, method=method.runs, epochs=epochs,
            target_gap=target_gap, **options,
        )  # fmt: skip

    return make


def deep_linear(problem: str, power: int) -> SpecFactory:
    """Runs of :func:`gradkit.experiments.kinds.deep_linear_run`: l_``power`` regression on
    ``problem`` (the synthetic instance drawn from the seed), budgets in iterations."""

    def make(method: Method, lr: float, iterations: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            DEEP_LINEAR, problem=problem, power=power, seed=seed, method=method.runs, lr=lr,
            iterations=iterations,
        )  # fmt: skip

    return make


def deep_cnn(depth: int) -> SpecFactory:
    """Runs of :func:`gradkit.experiments.deep_cnn.deep_cnn_run`: the vanilla tanh CNN of
    ``depth`` initialised by ``Method.optimizer`` (an init of
    :data:`gradkit.experiments.deep_cnn.INITS`), budgets in epochs. The metric is the training
    loss, so tuning runs train on the training set too."""

    def make(method: Method, lr: float, epochs: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(DEEP_CNN, init=method.runs, depth=depth, seed=seed, lr=lr, epochs=epochs)

    return make


def init_spectra(
    executor: Executor, inits: Sequence[str], depth: int, seeds: Sequence[int]
) -> dict[str, list[RunRecord]]:
    """:func:`gradkit.experiments.deep_cnn.init_spectrum_run` of every init at ``depth`` for
    every seed: ``records[init]``, one per seed."""
    return runs_per_seed(
        executor, inits, seeds, lambda i, s: RunSpec.of(INIT_SPECTRUM, init=i, depth=depth, seed=s)
    )


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


def delayed(problem: str, delays: str) -> SpecFactory:
    """Runs of :func:`gradkit.experiments.async_delays.delayed_sgd_run` on ``problem`` under
    the delay profile ``delays``; the searched value is the schedule's first step c, the
    schedule is ``Method.optimizer`` with ``Method.hyper`` (its exponent ``q``), budgets in
    server updates. The instance and the noise are drawn from the seed. Evaluation seeds run
    as the rows of one recursion (``delayed_sgd_runs``)."""

    def make(method: Method, c: float, updates: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            DELAYED, problem=problem, delays=delays, schedule=method.runs, c=c, seed=seed,
            updates=updates, **dict(method.hyper),
        )  # fmt: skip

    def batched(method: Method, c: float, updates: int, seeds: Sequence[int]) -> RunSpec:
        return RunSpec.of(
            DELAYED_SEEDS, problem=problem, delays=delays, schedule=method.runs, c=c,
            seeds=list(seeds), updates=updates, **dict(method.hyper),
        )  # fmt: skip

    make.batched = batched
    return make


def proximal(
    problem: str, l1: float, l2: float, time_scale: float = 1.0, **cluster: Any
) -> SpecFactory:
    """Runs of :func:`gradkit.experiments.delay_tolerant.proximal_run` of a method's algorithm
    (``Method.optimizer``, options ``Method.hyper``) on the sparse logistic ``problem``; a budget
    B runs until simulated time B x ``time_scale``; ``cluster`` adds the kind's ``straggler``
    and ``latency``. The seed draws the shards and compute times, so tuning seeds differ from
    evaluation seeds."""

    def make(method: Method, lr: float, budget: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            PROXIMAL, algorithm=method.runs, problem=problem, l1=l1, l2=l2, seed=seed, lr=lr,
            until=budget * time_scale, **cluster, **dict(method.hyper),
        )  # fmt: skip

    return make


def stability_epochs(net: str, scale: str) -> int:
    """Training epochs of net ("true", "random", "init") at ``scale``."""
    quick, full = STABILITY_EPOCHS[net]
    return {"smoke": min(2, quick), "quick": quick, "full": full}[scale]


def stability_runs(
    executor: Executor, nets: Sequence[str], seeds: Sequence[int], scale: str, relative: float
) -> dict[str, list[RunRecord]]:
    """:func:`gradkit.experiments.kinds.noise_stability_run` of each net ("true", "random",
    "init") for every seed, with the epochs of :data:`STABILITY_EPOCHS` at ``scale`` (shared,
    so claims probing the same nets share the cached runs)."""

    def make(net: str, seed: int) -> RunSpec:
        epochs = stability_epochs(net, scale)
        return RunSpec.of(STABILITY, labels=net, seed=seed, epochs=epochs, relative=relative)

    return runs_per_seed(executor, nets, seeds, make)


def simulated(
    task: str, workers: int, evals_per_epoch: int = 2, hold_out: bool = True, **cluster: Any
) -> SpecFactory:
    """Simulated data-parallel runs of a method's algorithm (``Method.optimizer``) on
    ``workers`` workers training ``task``; ``cluster`` adds the kind's options (``slowdown``,
    ``jitter``, ``transfer_cost``, ``batch_size``, ``sampling``, ``suboptimality``). Tuning
    runs hold out a validation split, unless ``hold_out`` is False (for a task whose instance is
    drawn from the seed, the tuning seed's instance is already a separate one)."""

    def make(method: Method, lr: float, epochs: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            SIMULATE,
            algorithm=method.runs,
            task=task,
            workers=workers,
            seed=seed,
            lr=lr,
            epochs=epochs,
            validation=tuning and hold_out,
            evals_per_epoch=evals_per_epoch,
            hyper=dict(method.hyper),
            **cluster,
        )

    return make


def noisy_quadratic(rotated: bool, noise: float, target_fraction: float) -> SpecFactory:
    """Runs on the noisy quadratic of :func:`gradkit.experiments.kinds.quadratic_run` (instance
    and start drawn from the seed, so tuning runs use a different instance)."""

    def make(method: Method, lr: float, steps: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            QUADRATIC,
            rotated=rotated,
            noise=noise,
            seed=seed,
            optimizer=method.runs,
            lr=lr,
            steps=steps,
            target_fraction=target_fraction,
        )

    return make


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
    )
    return MethodOutcome(
        method, result, runs_at(executor, make_spec, method, result.best, budget, seeds)
    )


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
    batched = getattr(make_spec, "batched", None)
    spec = batched(method, lr, budget, seeds) if batched is not None else None
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


def per_seed(outcomes: dict[str, dict[str, MethodOutcome]], metric: str):
    """``values[problem][method]``: the metric of every seed's run."""
    return {p: {m: o.values(metric) for m, o in per.items()} for p, per in outcomes.items()}


def tuned_lrs(outcomes: dict[str, dict[str, MethodOutcome]]) -> dict[str, dict[str, float]]:
    return {p: {m: o.lr for m, o in per.items()} for p, per in outcomes.items()}


def search_notes(outcomes: dict[str, dict[str, MethodOutcome]]) -> str:
    """Sentences on searches that widened past their range or stopped at a hard bound."""
    notes = []
    for problem, per_method in outcomes.items():
        for name, outcome in per_method.items():
            if outcome.search.note():
                notes.append(f"{name} on {problem}: {outcome.search.note()}")
            elif outcome.search.widened:
                notes.append(f"{name} on {problem}: search widened to {outcome.search.widened}")
    return (" " + "; ".join(notes) + ".") if notes else ""
