"""Real torch.distributed runs on loopback gloo: AllReduce SGD against DistributedDataParallel,
and AD-PSGD and asynchronous SGD with a parameter server (on rank 0) against AllReduce with one
rank made slower."""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from gradkit.bench.report import BenchOptions, rows_table
from gradkit.checks import InputError
from gradkit.distributed import TorchComm, launch
from gradkit.distributed.trace import Trace
from gradkit.tasks.distributed import DISTRIBUTED_BATCH_SIZE, task_problem

TASK = "mnist1d-mlp"
GOAL_DDP_RATIO = 1.2


@dataclass
class DistributedBenchRow:
    name: str
    processes: int
    value: float
    unit: str
    note: str = ""


def _step_intervals(trace: Trace, rank: int) -> list[float]:
    times = [s.time for s in trace.steps if s.worker == rank]
    return [b - a for a, b in itertools.pairwise(times)]


def _ddp_step_times(steps: int) -> list[float]:
    problem = task_problem(TASK, seed=0)
    torch.manual_seed(0)
    model = DistributedDataParallel(problem.build_model())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(dist.get_rank())
    times = []
    for _ in range(steps):
        index = torch.randint(problem.num_samples, (DISTRIBUTED_BATCH_SIZE,), generator=generator)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        problem.loss_fn(model(problem.inputs[index]), problem.targets[index]).backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return times


def _rank_allreduce_vs_ddp(epochs: float, rounds: int) -> dict[str, float]:
    """Alternates DDP and gradkit AllReduce runs; medians of per-step times after warm-up."""
    problem = task_problem(TASK, seed=0)
    ddp, ours = [], []
    for _ in range(rounds):
        ddp += _ddp_step_times(60)[10:]
        trace = TorchComm("allreduce", problem, epochs=epochs, lr=0.01).run()
        ours += _step_intervals(trace, dist.get_rank())[10:]
    return {"ddp": statistics.median(ddp), "allreduce": statistics.median(ours)}


def _rank_throughput(algorithm: str, epochs: float, slowdown: float) -> float:
    """Worker-steps per second (for async-sgd: server updates per second) of a run in which
    rank 0 (which also holds async-sgd's server) is ``slowdown`` times slower."""
    trace = TorchComm(
        algorithm,
        task_problem(TASK, seed=0),
        epochs=epochs,
        lr=0.05,
        slowdown=slowdown if dist.get_rank() == 0 else 1.0,
    ).run()
    times = [s.time for s in trace.steps]
    return len(times) / (max(times) - min(times))


def check_process_counts(processes: tuple[int, ...]) -> None:
    if not processes or any(not isinstance(p, int) or p < 2 for p in processes):
        raise InputError(f"process counts must be integers >= 2, got {list(processes)}")


def bench_distributed(
    processes: tuple[int, ...] = (2, 4), slowdown: float = 5.0
) -> list[DistributedBenchRow]:
    """AllReduce SGD against DDP on ``processes[0]`` processes; then, on each count of
    ``processes``, the throughput of AllReduce SGD, AD-PSGD and async SGD with rank 0 at full
    speed and ``slowdown`` times slower (each run alone, in that order; AD-PSGD at even counts
    only, as its bipartite graph needs)."""
    check_process_counts(processes)
    rows = []
    timing = launch(_rank_allreduce_vs_ddp, processes[0], 2.0, 3)[0]
    ratio = timing["allreduce"] / timing["ddp"]
    rows += [
        DistributedBenchRow("DDP step (median)", processes[0], timing["ddp"] * 1e3, "ms"),
        DistributedBenchRow(
            "AllReduce SGD step (median)", processes[0], timing["allreduce"] * 1e3, "ms"
        ),
        DistributedBenchRow(
            "AllReduce SGD / DDP",
            processes[0],
            ratio,
            "x",
            f"goal <= {GOAL_DDP_RATIO}: {'met' if ratio <= GOAL_DDP_RATIO else 'missed'}",
        ),
    ]
    for count in processes:
        for algorithm in ("allreduce", "adpsgd", "async-sgd"):
            if algorithm == "adpsgd" and count % 2:
                continue  # its bipartite graph needs an even number of workers
            for factor in (1.0, slowdown):
                per_second = launch(_rank_throughput, count, algorithm, 4.0, factor)[0]
                rows.append(
                    DistributedBenchRow(
                        f"{algorithm} throughput, rank 0 {factor:g}x slower",
                        count,
                        per_second,
                        "server updates/s" if algorithm == "async-sgd" else "worker-steps/s",
                    )
                )
    return rows


def report(console: Console, options: BenchOptions) -> list:
    """Real gloo runs: DDP comparison and throughput; print the table."""
    processes = tuple(options.workers or (2, 4))
    check_process_counts(processes)
    console.print(
        f"Real gloo runs on 127.0.0.1 (DDP comparison on {processes[0]} processes, "
        f"throughput on {', '.join(map(str, processes))})..."
    )
    rows = bench_distributed(processes)
    console.print(
        rows_table(
            "torch.distributed (gloo, one thread per process)",
            ("measure", "processes", "value", "unit", "note"),
            [(r.name, str(r.processes), f"{r.value:.3g}", r.unit, r.note) for r in rows],
        )
    )
    return rows
