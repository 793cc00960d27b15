"""Shared protocol of the compression claims: simulated data-parallel runs on mnist1d (and a
logistic regression), each method's lr tuned once on a shared grid with the tuning seed by
final training loss, then seeds 0..N-1 at that lr. Runs are cached across claims."""

from __future__ import annotations

import functools
from typing import Any

from gradkit.claims.base import RunContext
from gradkit.claims.distributed_runs import final_loss
from gradkit.claims.tuning import TUNING_SEED
from gradkit.distributed.trace import Trace
from gradkit.sim import Cluster, simulate
from gradkit.tasks import get_task
from gradkit.tasks.distributed import task_problem

GRIDS = {
    "sgd": (0.03, 0.1, 0.3, 1.0, 3.0),
    "sign": (3e-4, 1e-3, 3e-3, 1e-2),
    "adam": (3e-4, 1e-3, 3e-3, 1e-2),
}

Hyper = tuple[tuple[str, Any], ...]


def task_samples(task: str) -> int:
    return _problem(task, 0).num_samples


def epochs(ctx: RunContext) -> int:
    return ctx.pick(10, 30)


@functools.cache
def _problem(task: str, seed: int):
    return task_problem(get_task(task), seed)


@functools.cache
def run(algorithm: str, task: str, workers: int, lr: float, seed: int, epochs: int, hyper: Hyper):
    """One simulated run, memoised on its description."""
    return simulate(
        algorithm,
        _problem(task, seed),
        Cluster(workers),
        epochs=epochs,
        seed=seed,
        evals_per_epoch=2,
        lr=lr,
        **dict(hyper),
    )


def tuned_lr(
    ctx: RunContext, algorithm: str, task: str, workers: int, grid: str, hyper: Hyper = ()
):
    """The grid lr with the lowest final training loss (tuning seed); ties to the smaller."""
    scores = []
    for lr in GRIDS[grid]:
        trace = run(algorithm, task, workers, lr, TUNING_SEED, epochs(ctx), hyper)
        scores.append((final_loss(trace), lr))
        ctx.advance()
    return min(scores)[1]


def runs(ctx: RunContext, algorithm: str, task: str, workers: int, lr: float, hyper: Hyper = ()):
    out: list[Trace] = []
    for seed in ctx.seeds:
        out.append(run(algorithm, task, workers, lr, seed, epochs(ctx), hyper))
        ctx.advance()
    return out


def edge_note(lrs: dict[str, float], grids: dict[str, str]) -> str:
    edge = [
        name for name, lr in lrs.items() if lr in (GRIDS[grids[name]][0], GRIDS[grids[name]][-1])
    ]
    return f" Tuned lr at the grid edge for {', '.join(edge)}." if edge else ""
