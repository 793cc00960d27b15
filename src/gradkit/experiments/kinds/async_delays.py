"""Run kind of asynchronous SGD under imposed delays (Zhou et al., ICML 2018): the exact
recursion x_{n+1} = x_n - alpha_n (grad f(x_{n - d_n}) + noise) of
:func:`gradkit.distributed.delays.delayed_sgd`, in float64, on problems with a known x*."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from gradkit.checks import InputError
from gradkit.distributed.delays import DelayProfile, delayed_sgd
from gradkit.experiments.compare import BatchedRuns, Method
from gradkit.experiments.runs import RunRecord, RunSpec, run_kind
from gradkit.optim.schedules import Schedule
from gradkit.tasks.synthetic import random_rotation

DIM = 20
NOISE = 0.1
"""Standard deviation of the Gaussian noise added to every gradient coordinate."""
PROBLEMS = ("quadratic", "nonconvex")
CURVE_POINTS = 60
WINDOW = 0.05
"""Distances are averaged over the last WINDOW fraction of the updates before a checkpoint
(one noisy iterate would decide nothing)."""


def _instance(problem: str, seed: int) -> tuple[Tensor, Tensor | None]:
    """(x_1, the quadratic's Hessian or None) of ``problem`` drawn from ``seed``."""
    if problem not in PROBLEMS:
        raise InputError(f"unknown problem {problem!r}; choose from {', '.join(PROBLEMS)}")
    rng = np.random.default_rng(seed)
    start = torch.from_numpy(2.0 * rng.standard_normal(DIM))
    if problem == "nonconvex":
        return start, None
    basis = random_rotation(DIM, rng)
    return start, torch.from_numpy(basis @ np.diag(np.geomspace(1.0, 4.0, DIM)) @ basis.T)


def delay_problems(problem: str, seeds: list[int]) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """(grad f, x_1 as rows): one instance of ``problem`` per seed, x* = 0, grad f applying
    row k's instance to row k. ``quadratic``: f(x) = x^T A x / 2, A with eigenvalues
    log-spaced over [1, 4] in a random basis (strongly convex); ``nonconvex``: f(x) =
    sum log(1 + x_i^2) (variationally coherent: <grad f(x), x> > 0 for x != 0). x_1 ~ N(0, 4 I)."""
    starts, hessians = zip(*(_instance(problem, seed) for seed in seeds), strict=True)
    if problem == "nonconvex":
        return (lambda x: 2 * x / (1 + x * x)), torch.stack(starts)
    if len(seeds) == 1:  # one product, not a batched one (a third of the time at d = 20)
        transposed = hessians[0].T
        return (lambda x: x @ transposed), torch.stack(starts)
    hessian = torch.stack(hessians)  # (seeds, d, d): row k is multiplied by its own Hessian
    return (lambda x: torch.bmm(hessian, x.unsqueeze(-1)).squeeze(-1)), torch.stack(starts)


@run_kind
def delayed_sgd_run(
    problem: str, delays: str, schedule: str, c: float, seed: int, updates: int, q: float = 1.0
) -> RunRecord:
    """``updates`` steps of x_{n+1} = x_n - alpha_n (grad f(x_{n - d_n}) + NOISE z_n) on
    ``problem`` (x* = 0) with the delay profile ``delays`` (e.g. ``linear:0.5``) and the
    schedule of kind ``schedule`` with first step ``c`` (exponent ``q``), from ``seed``.

    Metrics: ``distance`` (mean ||x_n|| over the last WINDOW of the updates, relative to
    ||x_1||), ``decade_ratio`` (that mean over the updates' last window divided by the same
    over the window ending at updates / 10; < 1 while the iterates still approach x*),
    ``max_delay``. Curve: ``distance`` (||x_n|| / ||x_1||) at log-spaced n. A run whose iterate
    stops being finite diverged."""
    return _rows(problem, delays, schedule, c, [seed], updates, q)[0]


@run_kind
def delayed_sgd_runs(
    problem: str,
    delays: str,
    schedule: str,
    c: float,
    seeds: list[int],
    updates: int,
    q: float = 1.0,
) -> RunRecord:
    """:func:`delayed_sgd_run` of every seed of ``seeds`` at once (the seeds' iterates as the
    rows of one recursion: the same numbers up to the rounding of a batched product). Returns
    one record whose ``extra["runs"]`` holds the per-seed records (as JSON), in order."""
    records = _rows(problem, delays, schedule, c, list(seeds), updates, q)
    return RunRecord(
        {},
        diverged=all(r.diverged for r in records),
        seconds=sum(r.seconds for r in records),
        extra={"runs": [r.to_json() for r in records]},
    )


class _AllDiverged(Exception):
    pass


def _rows(
    problem: str,
    delays: str,
    schedule: str,
    c: float,
    seeds: list[int],
    updates: int,
    q: float,
) -> list[RunRecord]:
    if not isinstance(updates, int) or updates < 1:
        raise InputError(f"updates must be a positive integer, got {updates!r}")
    started = time.perf_counter()
    gradient, start = delay_problems(problem, seeds)
    profile, steps = DelayProfile.parse(delays), Schedule(schedule, c, q)
    draws = [np.random.default_rng(seed + 1).standard_normal((updates, DIM)) for seed in seeds]
    noise = NOISE * torch.from_numpy(np.stack(draws, axis=1))  # (updates, seeds, d)
    marks = sorted({round(v) for v in np.geomspace(1, updates + 1, CURVE_POINTS)})

    def window(end: int) -> tuple[int, int]:  # the WINDOW fraction of updates up to ``end``
        return min(int(end * (1 - WINDOW)), end - 1), end

    windows = {"decade": window(max(1, updates // 10)), "end": window(updates)}
    seen = set(marks).union(*(range(low + 1, high + 1) for low, high in windows.values()))
    sums = {name: [0.0] * len(seeds) for name in windows}
    curves: list[list[list[float]]] = [[] for _ in seeds]
    alive, scale = [True] * len(seeds), start.norm(dim=1)

    def record(n: int, x: Tensor) -> None:  # a non-finite iterate stays so until the last mark
        if n not in seen:
            return
        for k, distance in enumerate((x.norm(dim=1) / scale).tolist()):
            if not alive[k]:
                continue
            if not math.isfinite(distance):
                alive[k] = False
                continue
            for name, (low, high) in windows.items():
                if low < n <= high:
                    sums[name][k] += distance / (high - low)
            if n in marks:
                curves[k].append([float(n), distance])
        if not any(alive):
            raise _AllDiverged

    def noisy(x: Tensor, n: int) -> Tensor:
        return gradient(x) + noise[n - 1]

    with contextlib.suppress(_AllDiverged):
        delayed_sgd(noisy, start, steps, profile, updates, record)
    seconds = (time.perf_counter() - started) / len(seeds)
    records = []
    for k in range(len(seeds)):
        if not alive[k]:
            metrics = {"distance": math.inf, "decade_ratio": math.inf}
            records.append(RunRecord(metrics, {"distance": curves[k]}, True, seconds))
            continue
        metrics = {
            "distance": sums["end"][k],
            "decade_ratio": sums["end"][k] / sums["decade"][k],
            "max_delay": float(profile.reach(updates)),
        }
        records.append(RunRecord(metrics, {"distance": curves[k]}, False, seconds))
    return records


def delayed(problem: str, delays: str) -> BatchedRuns:
    """Runs of :func:`delayed_sgd_run` on ``problem`` under
    the delay profile ``delays``; the searched value is the schedule's first step c, the
    schedule is ``Method.optimizer`` with ``Method.hyper`` (its exponent ``q``), budgets in
    server updates. The instance and the noise are drawn from the seed. Evaluation seeds run
    as the rows of one recursion (``delayed_sgd_runs``)."""

    def make(method: Method, c: float, updates: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            delayed_sgd_run,
            problem=problem,
            delays=delays,
            schedule=method.runs,
            c=c,
            seed=seed,
            updates=updates,
            **dict(method.hyper),
        )

    def batched(method: Method, c: float, updates: int, seeds: Sequence[int]) -> RunSpec:
        return RunSpec.of(
            delayed_sgd_runs,
            problem=problem,
            delays=delays,
            schedule=method.runs,
            c=c,
            seeds=list(seeds),
            updates=updates,
            **dict(method.hyper),
        )

    return BatchedRuns(make, batched)
