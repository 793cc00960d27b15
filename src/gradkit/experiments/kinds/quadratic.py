"""Stochastic runs on the noisy quadratic (:func:`quadratic_run`), and their specs
(:func:`noisy_quadratic`)."""

from __future__ import annotations

import math
import time

import torch

from gradkit.experiments.compare import Method, SpecFactory
from gradkit.experiments.runs import RunRecord, RunSpec, run_kind
from gradkit.optim import build_optimizer
from gradkit.tasks.synthetic import NoisyQuadratic, quadratic_hessian

TAIL = 0.25
"""``tail_fraction`` averages the evaluations in the last TAIL of the steps."""


@run_kind
def quadratic_run(
    rotated: bool,
    noise: float,
    seed: int,
    optimizer: str,
    lr: float,
    steps: int,
    target_fraction: float,
    dim: int = 100,
    evals: int = 100,
) -> RunRecord:
    """Minimise the noisy quadratic f(x) = x'Hx/2 (Hessian eigenvalues log-spaced over
    [0.1, 10], axis-aligned or rotated, from ``seed``) with batch-1 stochastic gradients
    Hx + noise * xi, from x_0 ~ N(0, I) (drawn with ``seed``), for ``steps`` steps of a registered
    optimizer.

    Metrics: ``tail_fraction`` = mean of f(x_t) / f(x_0) over the evaluated steps t > (1 -
    TAIL) T (defined for every run of T steps, at every noise level); ``steps_to_target``
    (first evaluated step with f(x) <= target_fraction * f(x_0); steps + 1 if never) and
    ``final_fraction`` = f(x_T) / f(x_0). Curve: ``objective`` f(x) at ``evals`` evenly spaced
    steps.
    """
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(dim, generator=generator)
    model = NoisyQuadratic(quadratic_hessian(dim, (0.1, 10.0), rotated, seed), noise, x0)
    opt = build_optimizer(optimizer, model.parameters(), lr)
    exact = torch.zeros(1, dim)

    def objective() -> float:
        with torch.no_grad():
            return float(model(exact))

    started = time.perf_counter()
    f0 = objective()
    curve, reached, every = [[0.0, f0]], steps + 1, max(1, steps // evals)
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        model(torch.randn(1, dim, generator=generator)).sum().backward()
        opt.step()
        if step % every == 0 or step == steps:
            value = objective()
            curve.append([float(step), value])
            if not math.isfinite(value):
                break
            if value <= target_fraction * f0 and reached > steps:
                reached = step
    final = curve[-1][1]
    tail = [value for step, value in curve if step > (1 - TAIL) * steps]
    tail = tail or [final]  # a run that diverged before its last quarter
    return RunRecord(
        metrics={
            "tail_fraction": sum(tail) / (len(tail) * f0),
            "steps_to_target": float(reached),
            "final_fraction": final / f0,
        },
        curves={"objective": [c for c in curve if math.isfinite(c[1])]},
        diverged=not math.isfinite(final),
        seconds=time.perf_counter() - started,
    )


def noisy_quadratic(rotated: bool, noise: float, target_fraction: float) -> SpecFactory:
    """Runs on the noisy quadratic of :func:`quadratic_run` (instance
    and start drawn from the seed, so tuning runs use a different instance)."""

    def make(method: Method, lr: float, steps: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            quadratic_run,
            rotated=rotated,
            noise=noise,
            seed=seed,
            optimizer=method.runs,
            lr=lr,
            steps=steps,
            target_fraction=target_fraction,
        )

    return make
