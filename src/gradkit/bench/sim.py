"""Simulator throughput: simulated worker-steps per wall-clock second on the mnist1d MLP."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from gradkit.sim import Cluster, simulate
from gradkit.tasks.distributed import task_problem

GOAL_STEPS_PER_SECOND = 2000.0
GOAL_EPOCH_SECONDS_64 = 30.0  # 64 workers, one epoch, everything included


@dataclass
class SimBenchRow:
    algorithm: str
    workers: int
    epochs: float
    worker_steps: int
    steps_per_second: float
    seconds: float


def bench_simulator(
    workers: tuple[int, ...] = (16, 64),
    algorithms: tuple[str, ...] = ("allreduce", "adpsgd"),
    epochs: float = 5.0,
    repeats: int = 3,
) -> list[SimBenchRow]:
    """Median over ``repeats`` of whole simulated runs (model build, sharding, evaluations at
    start and end included): worker-steps per second, and the wall time of the run. One thread,
    as in every gradkit worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        problem = task_problem("mnist1d-mlp", seed=0)
        rows = []
        for n in workers:
            for algorithm in algorithms:
                for run_epochs in (1.0, epochs):
                    seconds, steps = [], 0
                    for repeat in range(repeats):
                        started = time.perf_counter()
                        trace = simulate(
                            algorithm, problem, Cluster(n), epochs=run_epochs, seed=repeat, lr=0.1
                        )
                        seconds.append(time.perf_counter() - started)
                        steps = len(trace.steps)
                    median = statistics.median(seconds)
                    rows.append(
                        SimBenchRow(algorithm, n, run_epochs, steps, steps / median, median)
                    )
        return rows
    finally:
        torch.set_num_threads(threads)
