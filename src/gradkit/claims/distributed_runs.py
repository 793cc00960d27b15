"""Shared protocol of the distributed-training claims (AD-PSGD and its baselines).

Setup (after the reference's small-scale check): 16 simulated workers with i.i.d. shards of
mnist1d, the mnist1d MLP, per-worker batch 32, plain SGD steps; one gradient costs 1 time unit.
Each algorithm's lr is tuned once, on the unperturbed cluster, on a shared grid, with the
tuning seed, by final training loss; the tuned lr is then used in every scenario and seed.
Runs are cached, so the claims share them.
"""

from __future__ import annotations

import functools
import math
import statistics

from gradkit.claims.base import RunContext
from gradkit.claims.tuning import TUNING_SEED
from gradkit.distributed.trace import Trace
from gradkit.sim import Cluster, ComputeModel, NetworkModel, simulate
from gradkit.tasks import get_task
from gradkit.tasks.distributed import task_problem

TASK = "mnist1d-mlp"
WORKERS = 16
BATCH = 32
EVALS_PER_EPOCH = 4
STRAGGLER = 10.0
NAMES = {"allreduce": "AllReduce", "dpsgd": "D-PSGD", "adpsgd": "AD-PSGD", "easgd": "EASGD"}


def transfer_cost_cluster(cost: float) -> Cluster:
    """The cluster whose links move one model in ``cost`` time units."""
    flat = _problem(0).engine(0).flat
    return Cluster(
        WORKERS, network=NetworkModel(bandwidth=flat.numel() * flat.element_size() / cost)
    )


SCENARIOS = {
    "normal": lambda: Cluster(WORKERS),
    "slow-worker": lambda: Cluster(WORKERS, ComputeModel(slowdown={0: STRAGGLER})),
    "transfer-1": lambda: transfer_cost_cluster(1.0),
    "transfer-5": lambda: transfer_cost_cluster(5.0),
}


def epochs(ctx: RunContext) -> int:
    return ctx.pick(10, 30)


def lr_grid(ctx: RunContext) -> list[float]:
    return ctx.pick([0.1, 0.3, 1.0, 3.0], [0.03, 0.1, 0.3, 1.0, 3.0, 10.0])


@functools.cache
def _problem(seed: int):
    return task_problem(get_task(TASK), seed, BATCH)


@functools.cache
def run(algorithm: str, scenario: str, lr: float, seed: int, epochs: int) -> Trace:
    """One simulated run, memoised on its description."""
    return simulate(
        algorithm,
        _problem(seed),
        SCENARIOS[scenario](),
        epochs=epochs,
        seed=seed,
        evals_per_epoch=EVALS_PER_EPOCH,
        lr=lr,
    )


def final_loss(trace: Trace) -> float:
    loss = trace.final("train_loss")
    return math.inf if trace.diverged or not math.isfinite(loss) else loss


def final_accuracy(trace: Trace) -> float:
    """Final test accuracy; a diverged run counts as 0."""
    accuracy = trace.final("test_accuracy")
    return 0.0 if trace.diverged or not math.isfinite(accuracy) else accuracy


def tuned_lr(ctx: RunContext, algorithm: str) -> float:
    """The grid lr with the lowest final training loss on the unperturbed cluster (tuning
    seed); ties go to the smaller lr."""
    scores = []
    for lr in lr_grid(ctx):
        scores.append((final_loss(run(algorithm, "normal", lr, TUNING_SEED, epochs(ctx))), lr))
        ctx.advance()
    return min(scores)[1]


def runs(ctx: RunContext, algorithm: str, scenario: str, lr: float) -> list[Trace]:
    out = []
    for seed in ctx.seeds:
        out.append(run(algorithm, scenario, lr, seed, epochs(ctx)))
        ctx.advance()
    return out


def median(values) -> float:
    return statistics.median(values)


def grid_edge(ctx: RunContext, lrs: dict[str, float]) -> str:
    grid = lr_grid(ctx)
    edge = [NAMES[a] for a, lr in lrs.items() if lr in (grid[0], grid[-1])]
    return f" Tuned lr at the grid edge for {', '.join(edge)}." if edge else ""
