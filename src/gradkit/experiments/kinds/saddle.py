"""Gradient descent and perturbed gradient descent started at a strict saddle
(:func:`saddle_escape_run`)."""

from __future__ import annotations

import time

import torch

from gradkit.checks import InputError
from gradkit.experiments.runs import CURVE_POINTS, RunRecord, run_kind
from gradkit.optim import PerturbedGD


@run_kind
def saddle_escape_run(
    dimension: int,
    seed: int,
    method: str,
    lr: float,
    iterations: int,
    radius: float = 1e-3,
    threshold: float = 1e-3,
    interval: int = 10,
    drop: float = 0.1,
) -> RunRecord:
    """Gradient descent (``method`` "gd") or :class:`~gradkit.optim.PerturbedGD` ("pgd",
    perturbations drawn from ``seed``) started exactly at the strict saddle x = 0 of
    f(x) = 1/2 sum_i lambda_i x_i^2 + x_1^4 / 4 (lambda_1 = -1, lambda_i = 1 otherwise; minima
    at x_1 = +-1, f = -1/4), in float64.

    Metrics: ``escape_iteration``, the first iteration with f <= f(0) - ``drop`` (iterations + 1
    if never), and ``final_value``. Curve: ``objective`` f at up to CURVE_POINTS iterations.
    """
    if method not in ("gd", "pgd"):
        raise InputError(f"unknown method {method!r}; choose from gd, pgd")
    x = torch.nn.Parameter(torch.zeros(dimension, dtype=torch.float64))
    curvature = torch.ones(dimension, dtype=torch.float64)
    curvature[0] = -1.0
    if method == "pgd":
        opt = PerturbedGD([x], lr, radius, threshold, interval, seed=seed)
    else:
        opt = torch.optim.SGD([x], lr=lr)

    def objective() -> torch.Tensor:
        return 0.5 * (curvature * x * x).sum() + 0.25 * x[0] ** 4

    started = time.perf_counter()
    escaped, every = iterations + 1, max(1, iterations // CURVE_POINTS)
    curve = [[0.0, 0.0]]
    for t in range(1, iterations + 1):
        opt.zero_grad(set_to_none=True)
        objective().backward()
        opt.step()
        value = float(objective().detach())
        if escaped > iterations and value <= -drop:
            escaped = t
        if t % every == 0 or t == iterations:
            curve.append([float(t), value])
    metrics = {"escape_iteration": float(escaped), "final_value": value}
    return RunRecord(metrics, {"objective": curve}, False, time.perf_counter() - started)
