"""Simulator throughput: simulated worker-steps per wall-clock second on the mnist1d MLP."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from rich.console import Console

from gradkit.bench.report import BenchOptions, rows_table
from gradkit.sim import Cluster, simulate
from gradkit.tasks.distributed import task_problem

GOAL_STEPS_PER_SECOND = 2000.0
GOAL_EPOCH_SECONDS_64 = 30.0  # 64 workers, one epoch, everything included


@dataclass
class SimBenchRow:
    algorithm: str
    workers: int
    threads: int
    epochs: float
    worker_steps: int
    steps_per_second: float
    seconds: float


def bench_simulator(
    workers: tuple[int, ...] = (16, 64),
    algorithms: tuple[str, ...] = ("allreduce", "adpsgd"),
    epochs: float = 20.0,
    repeats: int = 3,
    threads: tuple[int, ...] = (1, torch.get_num_threads()),
) -> list[SimBenchRow]:
    """Median over ``repeats`` of whole simulated runs (model build, sharding and one
    evaluation per epoch included) of 1 epoch and of ``epochs`` epochs, for each torch thread
    count in ``threads``: worker-steps per second and seconds per run."""
    before = torch.get_num_threads()
    problem = task_problem("mnist1d-mlp", seed=0)
    simulate("allreduce", problem, Cluster(2), epochs=0.1, lr=0.1)  # warm torch.func up
    rows = []
    try:
        for count in dict.fromkeys(threads):
            torch.set_num_threads(count)
            for n in workers:
                for algorithm in algorithms:
                    for run_epochs in (1.0, epochs):
                        seconds, steps = [], 0
                        for repeat in range(repeats):
                            started = time.perf_counter()
                            trace = simulate(
                                algorithm,
                                problem,
                                Cluster(n),
                                epochs=run_epochs,
                                seed=repeat,
                                lr=0.1,
                            )
                            seconds.append(time.perf_counter() - started)
                            steps = len(trace.steps)
                        median = statistics.median(seconds)
                        rows.append(
                            SimBenchRow(
                                algorithm, n, count, run_epochs, steps, steps / median, median
                            )
                        )
        return rows
    finally:
        torch.set_num_threads(before)


def report(console: Console, options: BenchOptions) -> list:
    """Time whole simulated runs and print the throughput table."""
    console.print("Timing whole simulated runs of the mnist1d MLP (median of 3)...")
    rows = bench_simulator(options.workers or (16, 64))
    console.print(
        rows_table(
            f"simulator throughput (goals: >= {GOAL_STEPS_PER_SECOND:g} worker-steps/s; "
            f"64 workers x 1 epoch < {GOAL_EPOCH_SECONDS_64:g} s)",
            ("algorithm", "workers", "threads", "epochs", "worker-steps", "steps/s", "seconds"),
            [
                (r.algorithm, str(r.workers), str(r.threads), f"{r.epochs:g}",
                 str(r.worker_steps), f"{r.steps_per_second:.0f}", f"{r.seconds:.2f}")
                for r in rows
            ],
        )
    )  # fmt: skip
    return rows
