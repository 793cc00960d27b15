"""Optimizer step time against torch.optim.Adam(foreach=True), measured in one run.

Every optimizer gets its own copy of the same ~10M parameters (a few large matrices and their
biases) with fixed random gradients. After warm-up, each round times one ``step()`` of every
optimizer in a fresh random order (so drift on a shared machine hits all alike); the figure of
merit is the median over rounds, reported as a ratio to Adam's median.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from rich.console import Console
from torch.optim import Optimizer

from gradkit.bench.report import BenchOptions, goal_cell, rows_table
from gradkit.bench.timing import interleaved_medians
from gradkit.optim import MSVAG, SVAG, SignSGD, Signum

BASELINE = "torch Adam (foreach)"
GOALS = {"Signum": 0.7, "MSVAG": 1.3}  # max step-time ratio to the baseline

CANDIDATES: dict[str, Callable[[list[torch.Tensor]], Optimizer]] = {
    BASELINE: lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True),
    "torch SGD": lambda p: torch.optim.SGD(p, lr=1e-2),
    "SignSGD": lambda p: SignSGD(p, lr=1e-3),
    "Signum": lambda p: Signum(p, lr=1e-3),
    "SVAG": lambda p: SVAG(p, lr=1e-2),
    "MSVAG": lambda p: MSVAG(p, lr=1e-2),
    "Signum (foreach)": lambda p: Signum(p, lr=1e-3, foreach=True),
    "MSVAG (foreach)": lambda p: MSVAG(p, lr=1e-2, foreach=True),
}


def parameter_shapes(millions: float) -> list[tuple[int, ...]]:
    """Matrices of an MLP-like stack with their biases, about ``millions`` * 1e6 numbers."""
    width = max(16, int((millions * 1e6 / 2.5) ** 0.5))
    return [(width, width), (width,), (width, width), (width,), (width // 2, width), (width // 2,)]


@dataclass
class BenchRow:
    name: str
    median_ms: float
    ratio: float
    goal: float | None

    @property
    def meets_goal(self) -> bool | None:
        return None if self.goal is None else self.ratio <= self.goal


def bench_optimizers(
    millions: float = 10.0, rounds: int = 30, warmup: int = 3, seed: int = 0
) -> list[BenchRow]:
    """Median step time of every candidate and its ratio to the baseline's."""
    gen = torch.Generator().manual_seed(seed)
    shapes = parameter_shapes(millions)
    optimizers = {}
    for name, build in CANDIDATES.items():
        params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        optimizers[name] = build(params)
    medians = interleaved_medians(
        {name: opt.step for name, opt in optimizers.items()}, rounds, warmup, seed
    )
    base = medians[BASELINE]
    return [BenchRow(name, 1e3 * t, t / base, GOALS.get(name)) for name, t in medians.items()]


def total_parameters(millions: float) -> int:
    return sum(torch.Size(s).numel() for s in parameter_shapes(millions))


def report(console: Console, options: BenchOptions) -> list:
    """Time the elementwise optimizers, print their table, then the preconditioned ones'."""
    millions, rounds = options.params or 10.0, options.rounds or 30
    console.print(
        f"Timing optimizer steps on {total_parameters(millions) / 1e6:.1f}M parameters, "
        f"{rounds} rounds..."
    )
    rows = bench_optimizers(millions, rounds)
    console.print(
        rows_table(
            "median step time vs torch.optim.Adam(foreach=True), same run",
            ("optimizer", "median ms", "ratio to Adam", "goal"),
            [
                (r.name, f"{r.median_ms:.2f}", f"{r.ratio:.2f}",
                 goal_cell(f"<= {r.goal}", None if r.goal is None else r.meets_goal))
                for r in rows
            ],
        )
    )  # fmt: skip
    from gradkit.bench.precond import report as report_preconditioned

    return rows + report_preconditioned(console, BenchOptions(millions, rounds))
