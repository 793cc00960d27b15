"""DDG's epoch time with K real processes against backpropagation in one process (1 thread and
K threads), in the same run, and the simulated speed-up of more stages from measured per-stage
costs.

One process group does all the timing: in every round rank 0 times a backpropagation epoch at
1 thread and one at K threads while the other ranks wait at a barrier (idle), then all ranks
time a DDG epoch (1 thread each); the figure of merit is the median over rounds.
"""

from __future__ import annotations

import statistics
import time
from copy import deepcopy
from dataclasses import dataclass

import torch
import torch.distributed as dist
from rich.console import Console
from torch import nn

from gradkit.bench.report import BenchOptions, rows_table
from gradkit.distributed import launch
from gradkit.model_parallel import DistributedDDG, measure_stage_costs, split_sequential
from gradkit.sim import NetworkModel, simulate_ddg
from gradkit.tasks.datasets import mnist1d
from gradkit.tasks.models import ResidualMLP

WIDTH, BLOCKS, BATCH = 512, 8, 100
LOOPBACK = NetworkModel(latency=1e-4, bandwidth=1e9)
"""The simulated link, in seconds and bytes: 0.1 ms per message, 1 GB/s."""


@dataclass
class PipelineBenchRow:
    name: str
    stages: int
    seconds_per_epoch: float
    speedup: float  # backpropagation at 1 thread / this
    note: str = ""


def _model(width: int, blocks: int) -> nn.Sequential:
    torch.manual_seed(0)
    return ResidualMLP(40, width, blocks, 10)


def _batches(batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    data = mnist1d()
    order = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(0))
    return [(data.x_train[order[i : i + batch]], data.y_train[order[i : i + batch]])
            for i in range(0, len(order) - batch + 1, batch)]  # fmt: skip


def _sgd(params):
    return torch.optim.SGD(params, lr=0.01, momentum=0.9)


def _backprop_epoch(model, batches, threads: int) -> float:
    torch.set_num_threads(threads)
    optimizer = _sgd(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    torch.set_num_threads(1)
    return seconds


def machine_speed(rounds: int = 3) -> float:
    """The machine's speed, for reports that state times: median seconds of one epoch of
    backpropagation of the residual MLP (width 512, 8 blocks, batch 100, mnist1d) at one
    thread (the same epoch this benchmark's baseline times)."""
    model, batches = _model(WIDTH, BLOCKS), _batches(BATCH)
    return statistics.median(_backprop_epoch(model, batches, threads=1) for _ in range(rounds))


def _rank_timing(width: int, blocks: int, batch: int, rounds: int) -> dict[str, list[float]]:
    """Runs in every rank of the group; rank 0's result holds the times."""
    rank, k = dist.get_rank(), dist.get_world_size()
    batches = _batches(batch)
    times: dict[str, list[float]] = {"bp1": [], "bpk": [], "ddg": []}
    ddg = DistributedDDG(_model(width, blocks), _sgd, nn.CrossEntropyLoss())
    reference = _model(width, blocks) if rank == 0 else None
    for round_ in range(rounds + 1):  # the first round warms up
        dist.barrier()
        if rank == 0:
            bp1 = _backprop_epoch(reference, batches, 1)
            bpk = _backprop_epoch(reference, batches, k)
        dist.barrier()
        started = time.perf_counter()
        for x, y in batches:
            ddg.step(x, y)
        ddg.finish()
        if rank == 0 and round_:
            times["bp1"].append(bp1)
            times["bpk"].append(bpk)
            times["ddg"].append(time.perf_counter() - started)
    return times


def time_pipeline(
    stages: int = 2, rounds: int = 5, width: int = WIDTH, blocks: int = BLOCKS, batch: int = BATCH
) -> dict[str, list[float]]:
    """Per-round epoch seconds on mnist1d of the residual MLP (``width``, ``blocks``):
    ``bp1`` and ``bpk`` (backpropagation at 1 and ``stages`` threads), ``ddg`` (``stages``
    processes of 1 thread)."""
    return launch(_rank_timing, stages, width, blocks, batch, rounds, timeout=600)[0]


def simulated_speedups(
    stages: tuple[int, ...] = (2, 4, 8), width: int = WIDTH, blocks: int = BLOCKS,
    batch: int = BATCH, network: NetworkModel = LOOPBACK, repeats: int = 3,
) -> dict[int, float]:  # fmt: skip
    """Measured backpropagation epoch time (1 thread, median of ``repeats``) / simulated DDG
    epoch time with K stages balanced by parameter count, from the stages' DDG costs
    (stashing included) measured here at 1 thread."""
    torch.set_num_threads(1)
    model, batches = _model(width, blocks), _batches(batch)
    backprop = statistics.median(
        _backprop_epoch(deepcopy(model), batches, 1) for _ in range(repeats)
    )
    speedups = {}
    for k in stages:
        costs = measure_stage_costs(split_sequential(model, k), batches[0][0])
        speedups[k] = backprop / simulate_ddg(costs, len(batches), network).total
    return speedups


def bench_pipeline(stages: int = 2, rounds: int = 5) -> list[PipelineBenchRow]:
    times = time_pipeline(stages, rounds)
    bp1 = statistics.median(times["bp1"])
    rows = [
        PipelineBenchRow(name, stages if key != "bp1" else 1, statistics.median(times[key]),
                         bp1 / statistics.median(times[key]), note)
        for key, name, note in (
            ("bp1", "backprop, 1 process, 1 thread", ""),
            ("bpk", f"backprop, 1 process, {stages} threads", ""),
            ("ddg", f"DDG, {stages} processes of 1 thread", "real gloo messages"),
        )
    ]  # fmt: skip
    for k, speedup in simulated_speedups().items():
        note = "from measured stage costs, 0.1 ms + 1 GB/s links"
        rows.append(PipelineBenchRow(f"DDG simulated, {k} stages", k, bp1 / speedup, speedup, note))
    return rows


def report(console: Console, options: BenchOptions) -> list:
    """Time backprop against DDG epochs, then simulated speed-ups; print the table."""
    stages, rounds = (options.workers or (2,))[0], options.rounds or 5
    console.print(
        f"Timing epochs of the residual MLP (width 512, 8 blocks): backprop in one process vs "
        f"DDG on {stages} processes, {rounds} rounds; then simulated speed-ups..."
    )
    rows = bench_pipeline(stages, rounds)
    console.print(
        rows_table(
            "DDG vs backpropagation (medians; speed-up over backprop at 1 thread)",
            ("setting", "stages", "epoch seconds", "speed-up", "note"),
            [
                (r.name, str(r.stages), f"{r.seconds_per_epoch:.3f}", f"{r.speedup:.2f}x", r.note)
                for r in rows
            ],
        )
    )
    return rows
