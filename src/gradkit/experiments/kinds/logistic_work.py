"""Logistic regression by work in per-sample gradients: progressive-batching L-BFGS, L-BFGS,
SGD and SGD with a growing batch (:func:`logistic_work_run`), and their specs
(:func:`logistic_work`)."""

from __future__ import annotations

import bisect
import math
import time

import torch
from torch.nn.utils import parameters_to_vector

from gradkit.checks import InputError
from gradkit.experiments.compare import Method, SpecFactory
from gradkit.experiments.runs import CURVE_POINTS, RunRecord, RunSpec, run_kind
from gradkit.optim import (
    BatchSizeController,
    ProgressiveBatchLBFGS,
    ProgressiveSampler,
    per_sample_gradients,
)
from gradkit.tasks.logistic import logistic_problem
from gradkit.tasks.logistic import loss as logistic_loss

SGD_RECORDS_PER_EPOCH = 8


LOGISTIC_METHODS = ("pbqn", "lbfgs", "sgd", "sgd-growing")


@run_kind
def logistic_work_run(
    problem: str,
    seed: int,
    method: str,
    lr: float,
    epochs: int,
    target_gap: float,
    theta: float = 0.9,
    batch: int = 32,
) -> RunRecord:
    """Minimise an l2-regularised logistic regression of :mod:`gradkit.tasks.logistic` with
    ``method`` until it has evaluated ``epochs`` times n per-sample gradients:

    - ``pbqn``: first sample 1% of n (at least 16), ``theta``, memory 10, 25% overlap; no
      learning rate (``lr`` is ignored);
    - ``lbfgs``: the same on the full data with overlap 1, i.e. L-BFGS with Armijo backtracking;
    - ``sgd``: batches of ``batch`` at ``lr``, shuffled from ``seed``;
    - ``sgd-growing``: SGD at ``lr`` on fresh samples whose size a
      :class:`~gradkit.optim.BatchSizeController` (inner-product test along the gradient,
      ``theta``) grows from ``batch``.

    Metrics: ``final_gap`` = (F - F*) / (F0 - F*) at the budget, ``epochs_to_target`` (per-sample
    gradients / n until the gap is <= ``target_gap``; epochs + 1 if never), ``final_batch``.
    Curves: ``suboptimality`` F - F* against epochs of per-sample gradients; ``batch_size``
    (and for PBQN ``step_size``) per iteration.
    """
    if method not in LOGISTIC_METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(LOGISTIC_METHODS)}")
    spec = logistic_problem(problem, seed)
    n = spec.samples
    model = spec.model()
    initial_gap = spec.objective(model) - spec.optimum
    points = [[0.0, initial_gap]]
    reached = float(epochs + 1)
    started = time.perf_counter()

    def record(done: int) -> float:
        nonlocal reached
        gap = spec.objective(model) - spec.optimum
        points.append([done / n, max(gap, 0.0)])
        if reached > epochs and gap <= target_gap * initial_gap:
            reached = done / n
        return gap

    if method in ("pbqn", "lbfgs"):
        gap, curves = _lbfgs_family(spec, model, method == "lbfgs", theta, seed, epochs, record)
    else:
        gap, curves = _sgd(spec, model, lr, batch, method == "sgd-growing", theta, seed, epochs,
                           record)  # fmt: skip
    curves["suboptimality"] = on_grid(points, epochs)
    metrics = {
        "final_gap": max(gap, 0.0) / initial_gap,
        "epochs_to_target": reached,
        "final_batch": curves["batch_size"][-1][1],
    }
    return RunRecord(metrics, curves, not math.isfinite(gap), time.perf_counter() - started)


def on_grid(points: list[list[float]], end: float) -> list[list[float]]:
    """A step curve (x ascending) sampled at CURVE_POINTS + 1 even points of [0, end] (the last
    value at or before each), so runs of different step counts align point by point."""
    xs = [x for x, _ in points]
    grid = [end * k / CURVE_POINTS for k in range(CURVE_POINTS + 1)]
    return [[x, points[max(0, bisect.bisect_right(xs, x) - 1)][1]] for x in grid]


def _lbfgs_family(spec, model, full: bool, theta: float, seed: int, epochs: int, record):
    n = spec.samples
    opt = ProgressiveBatchLBFGS(
        model, logistic_loss, spec.inputs, spec.targets,
        initial_batch=n if full else min(n, max(16, math.ceil(0.01 * n))), theta=theta,
        overlap=1.0 if full else 0.25, weight_decay=spec.l2, seed=seed,
    )  # fmt: skip
    gap = 1.0
    while opt.gradient_evaluations < epochs * n and math.isfinite(gap):
        opt.step()
        gap = record(opt.gradient_evaluations)
    curves = {
        "batch_size": [[i, float(b)] for i, b in enumerate(opt.batch_sizes, 1)],
        "step_size": [[i, a] for i, a in enumerate(opt.step_sizes, 1)],
    }
    return gap, curves


def _sgd(spec, model, lr: float, batch: int, growing: bool, theta, seed: int, epochs: int, record):
    """Plain SGD on batches of ``batch`` (a shuffled pass per epoch) or, ``growing``, on fresh
    samples of the controller's size: per-sample gradients of F (loss + l2), the test along
    their mean, a step along it."""
    n = spec.samples
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=lr, weight_decay=0.0 if growing else spec.l2)
    generator = torch.Generator().manual_seed(seed)
    controller = BatchSizeController(min(batch, n), n, theta=theta)
    sampler = ProgressiveSampler(n, overlap=0.0, generator=generator)

    def samples():
        while True:
            if growing:
                yield sampler.next(controller.size)
                continue
            order = torch.randperm(n, generator=generator)
            yield from (order[s : s + batch] for s in range(0, n - batch + 1, batch))

    every = max(1, n // (batch * SGD_RECORDS_PER_EPOCH))
    sizes: list[list[float]] = []
    done = steps = 0
    gap = 1.0
    for index in samples():
        opt.zero_grad(set_to_none=True)
        if growing:
            rows = per_sample_gradients(model, logistic_loss, spec.inputs[index],
                                        spec.targets[index])  # fmt: skip
            rows.add_(parameters_to_vector(params).detach(), alpha=spec.l2)
            controller.update(rows)
            for p, g in zip(params, rows.mean(0).split([p.numel() for p in params]), strict=True):
                p.grad = g.view_as(p)
        else:
            logistic_loss(model(spec.inputs[index]), spec.targets[index]).backward()
        opt.step()
        done, steps = done + len(index), steps + 1
        if growing or steps == 1:
            sizes.append([steps, float(len(index))])
        if steps % every == 0 or done >= epochs * n:
            gap = record(done)
        if done >= epochs * n or not math.isfinite(gap):
            break
    if not growing:
        sizes.append([steps, float(batch)])
    return gap, {"batch_size": sizes}


def logistic_work(problem: str, target_gap: float) -> SpecFactory:
    """Runs of :func:`logistic_work_run` on a logistic regression of
    :mod:`gradkit.tasks.logistic`, budgets in epochs of per-sample gradients. The searched value
    is PBQN's ``theta`` (its own unit; it has no learning rate) and the learning rate of the
    others; ``Method.hyper`` adds the kind's options (``batch``, ``theta``)."""

    def make(method: Method, value: float, epochs: int, seed: int, tuning: bool) -> RunSpec:
        rate = {"theta": value, "lr": 1.0} if method.runs == "pbqn" else {"lr": value}
        options = dict(method.hyper) | rate
        return RunSpec.of(
            logistic_work_run,
            problem=problem,
            seed=seed,
            method=method.runs,
            epochs=epochs,
            target_gap=target_gap,
            **options,
        )

    return make
