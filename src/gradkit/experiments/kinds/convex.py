"""Full-batch runs of an optimizer on a convex problem of :mod:`gradkit.tasks.convex`
(:func:`convex_run`), and their specs (:func:`full_batch`)."""

from __future__ import annotations

import math
import time
from typing import Any

from gradkit.experiments.compare import Method, SpecFactory
from gradkit.experiments.runs import CURVE_POINTS, RunRecord, RunSpec, run_kind
from gradkit.optim import build_optimizer
from gradkit.tasks import convex


@run_kind
def convex_run(
    problem: str,
    seed: int,
    optimizer: str,
    lr: float,
    iterations: int,
    target_gap: float,
    options: dict | None = None,
    hyper: dict | None = None,
) -> RunRecord:
    """Minimise a convex problem of :data:`gradkit.tasks.convex.PROBLEMS` (built from ``seed``
    and ``options``) with ``iterations`` full-batch steps of ``optimizer`` (keyword arguments
    ``hyper``, overriding its registered settings).

    Metrics: ``iterations_to_target`` (first t with f(x_t) <= f* + target_gap (f(x_0) - f*);
    iterations + 1 if never) and ``final_gap`` = (f(x_T) - f*) / (f(x_0) - f*). Curve:
    ``suboptimality`` f(x_t) - f* at up to 200 iterations.
    """
    instance = convex.PROBLEMS[problem](seed, **(options or {}))
    opt = build_optimizer(optimizer, instance.params, lr, **(hyper or {}))
    started = time.perf_counter()
    values = convex.full_batch_losses(instance, opt, iterations)
    seconds = time.perf_counter() - started
    initial_gap = values[0] - instance.optimum
    stride = max(1, len(values) // CURVE_POINTS)
    points = [*range(0, len(values), stride), len(values) - 1]
    curve = [[t, max(values[t] - instance.optimum, 0.0)] for t in sorted(set(points))]
    final = values[-1]
    return RunRecord(
        metrics={
            "iterations_to_target": float(
                convex.iterations_to_target(values, instance.optimum, target_gap)
            ),
            "final_gap": (final - instance.optimum) / initial_gap,
        },
        curves={"suboptimality": [c for c in curve if math.isfinite(c[1])]},
        diverged=not math.isfinite(final),
        seconds=seconds,
    )


def full_batch(problem: str, target_gap: float, **options: Any) -> SpecFactory:
    """Full-batch runs on a convex problem of :mod:`gradkit.tasks.convex` (instance drawn from
    the seed, so tuning runs use a different instance)."""

    def make(method: Method, lr: float, iterations: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            convex_run,
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
