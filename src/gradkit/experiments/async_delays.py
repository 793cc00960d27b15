"""Run kind of asynchronous SGD under imposed delays (Zhou et al., ICML 2018): the exact
recursion x_{n+1} = x_n - alpha_n (grad f(x_{n - d_n}) + noise) of
:func:`gradkit.distributed.delays.delayed_sgd`, in float64, on problems with a known x*."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from gradkit.distributed.delays import DelayProfile, delayed_sgd
from gradkit.experiments.runs import RunRecord
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


def delay_problem(problem: str, seed: int) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """(grad f, x_1) with x* = 0, drawn from ``seed``: ``quadratic`` f(x) = x^T A x / 2, A
    with eigenvalues log-spaced over [1, 4] in a random basis (strongly convex);
    ``nonconvex`` f(x) = sum log(1 + x_i^2) (variationally coherent: <grad f(x), x> > 0 for
    x != 0). x_1 ~ N(0, 4 I)."""
    rng = np.random.default_rng(seed)
    start = torch.from_numpy(2.0 * rng.standard_normal(DIM))
    if problem == "quadratic":
        basis = random_rotation(DIM, rng)
        hessian = torch.from_numpy(basis @ np.diag(np.geomspace(1.0, 4.0, DIM)) @ basis.T)
        return (lambda x: hessian @ x), start
    if problem == "nonconvex":
        return (lambda x: 2 * x / (1 + x * x)), start
    raise ValueError(f"unknown problem {problem!r}; choose from {', '.join(PROBLEMS)}")


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
    if not isinstance(updates, int) or updates < 1:
        raise ValueError(f"updates must be a positive integer, got {updates!r}")
    started = time.perf_counter()
    gradient, start = delay_problem(problem, seed)
    profile, steps = DelayProfile.parse(delays), Schedule(schedule, c, q)
    draws = np.random.default_rng(seed + 1).standard_normal((updates, DIM))
    noise = NOISE * torch.from_numpy(draws)
    marks = sorted({round(v) for v in np.geomspace(1, updates + 1, CURVE_POINTS)})

    def window(end: int) -> tuple[int, int]:  # the WINDOW fraction of updates up to ``end``
        return min(int(end * (1 - WINDOW)), end - 1), end

    windows = {"decade": window(max(1, updates // 10)), "end": window(updates)}
    sums = dict.fromkeys(windows, 0.0)
    curve, scale = [], float(start.norm())
    seen = set(marks).union(*(range(low + 1, high + 1) for low, high in windows.values()))

    def record(n: int, x: Tensor) -> None:  # a non-finite iterate stays so until the last mark
        if n not in seen:
            return
        distance = float(x.norm()) / scale
        if not math.isfinite(distance):
            raise FloatingPointError
        for name, (low, high) in windows.items():
            if low < n <= high:
                sums[name] += distance / (high - low)
        if n in marks:
            curve.append([float(n), distance])

    def noisy(x: Tensor, n: int) -> Tensor:
        return gradient(x) + noise[n - 1]

    try:
        delayed_sgd(noisy, start, steps, profile, updates, record)
    except FloatingPointError:
        return RunRecord({"distance": math.inf, "decade_ratio": math.inf}, {"distance": curve},
                         True, time.perf_counter() - started)  # fmt: skip
    metrics = {
        "distance": sums["end"],
        "decade_ratio": sums["end"] / sums["decade"],
        "max_delay": float(profile.reach(updates)),
    }
    return RunRecord(metrics, {"distance": curve}, False, time.perf_counter() - started)
