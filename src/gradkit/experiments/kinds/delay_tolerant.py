"""Run kind of the delay-tolerant proximal-gradient study (DAve-PG, Mishchenko et al., ICML
2018): a proximal method on a simulated cluster of uneven shards solving an l1 + l2 logistic
regression with a known F*, for a budget of simulated time.

The cluster: ``len(SHARES)`` workers holding the data shares :data:`SHARES`, one gradient of a
worker's whole shard costs 1 time unit times a lognormal jitter, worker :data:`STRAGGLER`
(the largest share) computes ``straggler`` times slower, the parameter server has a machine of
its own (the paper's 1 master + workers), and every message takes ``latency`` plus its bytes
over the link.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradkit.checks import InputError
from gradkit.experiments.compare import Method, SpecFactory
from gradkit.experiments.runs import RunRecord, RunSpec, run_kind
from gradkit.sim import Cluster, ComputeModel, NetworkModel, simulate
from gradkit.tasks.sparse_logistic import sparse_logistic

SHARES = (0.05, 0.07, 0.09, 0.11, 0.13, 0.15, 0.17, 0.23)
STRAGGLER = SHARES.index(max(SHARES))
JITTER = 0.3
TARGET = 1e-8
"""The suboptimality F - F* a run must reach (the reference's 'down to 1e-8')."""
LEVELS = (1e-2, 1e-5)
"""Gaps whose first times are recorded besides the target's (``reached_1e-02``, ...)."""
FLOOR = 1e-16
"""Suboptimalities below this (float64 round-off of F, sometimes negative) are shown as it."""
CURVE_POINTS = 200


def first_time(times: list[float], gaps: list[float], level: float) -> float:
    """The first evaluated time with F - F* <= ``level`` (inf if never)."""
    return next((t for t, g in zip(times, gaps, strict=True) if g <= level), math.inf)


def time_to_target(times: list[float], gaps: list[float], until: float) -> float:
    """The first evaluated time with F - F* <= TARGET; a run that never gets there is scored
    past its budget, further the higher its final gap: ``until * (1 + log10(gap / TARGET))``
    (a censored time: it ranks every such run behind every run that reached the target)."""
    reached = first_time(times, gaps, TARGET)
    if math.isfinite(reached):
        return reached
    final = gaps[-1]
    return until * (1 + math.log10(final / TARGET)) if math.isfinite(final) else math.inf


def _resample(xs: list[float], ys: list[float], end: float) -> list[list[float]]:
    """(x, the last evaluation's y at or before x) at CURVE_POINTS + 1 points from 0 to ``end``
    (curves of runs that evaluated at different times line up point for point)."""
    grid = np.linspace(0.0, end, CURVE_POINTS + 1)
    index = np.searchsorted(xs, grid, side="right") - 1
    return [[float(x), ys[max(i, 0)]] for x, i in zip(grid, index, strict=True)]


@run_kind
def proximal_run(
    algorithm: str,
    problem: str,
    l1: float,
    l2: float,
    seed: int,
    lr: float,
    until: float,
    straggler: float = 1.0,
    latency: float = 0.005,
    rounds: int = 1,
    shares: tuple[float, ...] | list[float] = SHARES,
) -> RunRecord:
    """``algorithm`` (``dave-pg``, ``prox-grad`` or ``async-sgd``, the naive asynchronous
    proximal gradient) at step ``lr`` on the :func:`~gradkit.tasks.sparse_logistic` problem
    ``problem`` with weights ``l1``, ``l2``, on the cluster of this module, until simulated
    time ``until``. ``rounds`` is DAve-RPG's local rounds; ``shares`` replaces the workers'
    data shares (then the straggler, if any, is the worker of the largest share). The seed
    draws the shards and the compute times.

    Metrics: ``suboptimality`` (final F - F*), ``time_to_target`` (:func:`time_to_target`),
    ``reached_1e-02`` and ``reached_1e-05`` (:func:`first_time` of :data:`LEVELS`),
    ``updates`` (worker updates applied), ``duration``, ``mean_staleness``. Curves:
    ``suboptimality@time`` and ``suboptimality@updates`` (floored at :data:`FLOOR`)."""
    task = sparse_logistic(problem, l1, l2)
    hyper = {"lr": lr, "l1": l1, "l2": l2}
    if algorithm == "dave-pg":
        hyper["rounds"] = rounds
    elif rounds != 1:
        raise InputError(f"rounds applies to dave-pg only, got rounds={rounds} for {algorithm}")
    shares = tuple(shares)
    slowdown = {shares.index(max(shares)): straggler} if straggler != 1 else {}
    compute = ComputeModel(jitter=JITTER, slowdown=slowdown)
    cluster = Cluster(len(shares), compute, NetworkModel(latency=latency), dedicated_server=True)
    trace = simulate(
        algorithm, task.problem(shares), cluster, epochs=10**9, until=until, seed=seed, **hyper
    )
    times = [float(e["time"]) for e in trace.evals]
    gaps = [float(e["suboptimality"]) for e in trace.evals]
    if trace.diverged:
        gaps[-1] = math.inf
    shown = [max(g, FLOOR) for g in gaps]
    updates = [float(e["step"]) for e in trace.evals]
    metrics = {
        "suboptimality": gaps[-1],
        "time_to_target": time_to_target(times, gaps, until),
        **{f"reached_{level:.0e}": first_time(times, gaps, level) for level in LEVELS},
        "updates": updates[-1],
        "duration": float(trace.duration),
        "mean_staleness": float(trace.mean_staleness()),
    }
    curves = {
        "suboptimality@time": _resample(times, shown, until),
        "suboptimality@updates": _resample(updates, shown, updates[-1]),
    }
    return RunRecord(metrics, curves, trace.diverged, trace.wall_seconds)


def proximal(
    problem: str, l1: float, l2: float, time_scale: float = 1.0, **cluster: Any
) -> SpecFactory:
    """Runs of :func:`proximal_run` of a method's algorithm
    (``Method.optimizer``, options ``Method.hyper``) on the sparse logistic ``problem``; a budget
    B runs until simulated time B x ``time_scale``; ``cluster`` adds the kind's ``straggler``
    and ``latency``. The seed draws the shards and compute times, so tuning seeds differ from
    evaluation seeds."""

    def make(method: Method, lr: float, budget: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            proximal_run,
            algorithm=method.runs,
            problem=problem,
            l1=l1,
            l2=l2,
            seed=seed,
            lr=lr,
            until=budget * time_scale,
            **cluster,
            **dict(method.hyper),
        )

    return make
