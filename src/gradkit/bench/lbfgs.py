"""Costs behind progressive-batching L-BFGS, against baselines measured in the same run
(interleaved, medians):

- per-sample gradients of an MLP: torch.func (vmap over grad) against a Python loop of backward
  passes, per batch;
- one PBQN iteration against one ``torch.optim.LBFGS`` iteration (``max_iter=1``, no line
  search) on the same full-batch l2-regularised logistic regression; PBQN's includes its
  per-sample gradients, batch-size test and Armijo search.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from gradkit.bench.report import BenchOptions, rows_table
from gradkit.bench.timing import interleaved_medians
from gradkit.optim import ProgressiveBatchLBFGS, per_sample_gradients


@dataclass
class LBFGSBenchRow:
    name: str
    size: str
    median_ms: float
    baseline: str
    baseline_ms: float

    @property
    def ratio(self) -> float:
        """This row's time over the baseline's."""
        return self.median_ms / self.baseline_ms


def bench_per_sample(batch: int = 256, rounds: int = 10) -> LBFGSBenchRow:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
                          nn.Linear(100, 10))  # fmt: skip
    inputs, targets = torch.randn(batch, 40), torch.randint(10, (batch,))
    times = interleaved_medians(
        {
            "vmap": lambda: per_sample_gradients(model, F.cross_entropy, inputs, targets, "vmap"),
            "loop": lambda: per_sample_gradients(model, F.cross_entropy, inputs, targets, "loop"),
        },
        rounds,
    )
    params = sum(p.numel() for p in model.parameters())
    return LBFGSBenchRow(
        "per-sample gradients, torch.func",
        f"batch {batch}, {params:,} parameters",
        times["vmap"] * 1e3,
        "Python loop",
        times["loop"] * 1e3,
    )


def _logistic(out, target):
    return F.binary_cross_entropy_with_logits(out.squeeze(-1), target)


def bench_iteration(samples: int = 20_000, features: int = 50, rounds: int = 10) -> LBFGSBenchRow:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(samples, features, generator=generator)
    targets = (inputs @ torch.randn(features, generator=generator) > 0).float()
    lam = 1 / samples
    pbqn_model, torch_model = nn.Linear(features, 1), nn.Linear(features, 1)
    torch_model.load_state_dict(pbqn_model.state_dict())
    pbqn = ProgressiveBatchLBFGS(
        pbqn_model, _logistic, inputs, targets, initial_batch=samples, overlap=1.0,
        weight_decay=lam,
    )  # fmt: skip
    lbfgs = torch.optim.LBFGS(torch_model.parameters(), lr=1.0, max_iter=1, history_size=10)

    def closure():
        lbfgs.zero_grad()
        loss = _logistic(torch_model(inputs), targets)
        loss = loss + 0.5 * lam * sum(p.pow(2).sum() for p in torch_model.parameters())
        loss.backward()
        return loss

    times = interleaved_medians({"pbqn": pbqn.step, "lbfgs": lambda: lbfgs.step(closure)}, rounds)
    return LBFGSBenchRow(
        "PBQN iteration (full batch)",
        f"{samples:,} samples x {features} features",
        times["pbqn"] * 1e3,
        "torch.optim.LBFGS iteration",
        times["lbfgs"] * 1e3,
    )


def bench_lbfgs(rounds: int = 10, samples: int = 20_000, batch: int = 256) -> list[LBFGSBenchRow]:
    return [bench_per_sample(batch, rounds), bench_iteration(samples, rounds=rounds)]


def report(console: Console, options: BenchOptions) -> list:
    """Time per-sample gradients and L-BFGS iterations; print the table."""
    rounds = options.rounds or 10
    console.print(f"Timing per-sample gradients and L-BFGS iterations, {rounds} rounds...")
    rows = bench_lbfgs(rounds)
    console.print(
        rows_table(
            "progressive-batching L-BFGS (medians, baselines in the same run)",
            ("measure", "size", "median ms", "baseline", "baseline ms", "ratio"),
            [
                (r.name, r.size, f"{r.median_ms:.2f}", r.baseline, f"{r.baseline_ms:.2f}",
                 f"{r.ratio:.3g}x")
                for r in rows
            ],
        )
    )  # fmt: skip
    return rows
