"""Shampoo and GGT step times against baselines measured in the same run.

**Shampoo** on a small CNN (three 3x3 convolutions with 32/64/64 channels on 3x32x32 inputs,
global average pooling, a linear head; batch 128) and on MLP-like matrices (1024x1024 and
512x1024): the optimizer step alone and, for the CNN, the whole training step (forward,
backward, step), with roots every step and every 10 steps (amortised: the median over rounds
that include the root steps in their proportion), against ``torch.optim.Adam(foreach=True)``
and the peer ``pytorch_optimizer.ScalableShampoo`` (pip package ``pytorch-optimizer``) at
comparable settings: same block size, roots at the same interval, statistics every step, SGD
grafting on both, no Nesterov.

**GGT** at window r = 200 on one vector of ``dim`` parameters with a full window: its step
against (a) the same step plus recomputing the r x r Gram matrix from the window (what an
implementation without the incremental update pays) and (b) the memory-bound floor, one
``W @ x`` and one ``W.T @ y`` over the window.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch
from rich.console import Console
from torch import nn

from gradkit.bench.report import BenchOptions, goal_cell, rows_table
from gradkit.bench.timing import interleaved_medians
from gradkit.optim import GGT, Shampoo

GOAL_SHAMPOO_VS_ADAM = 2.0  # at most, amortised at interval 10
GOAL_GGT_VS_RECOMPUTE = 50.0  # at least this much faster
GOAL_GGT_VS_FLOOR = 1.5  # at most this many times the floor


@dataclass
class RatioRow:
    """One timed candidate against the baseline it is judged by (same run)."""

    setting: str
    name: str
    median_ms: float
    baseline: str
    baseline_ms: float
    goal: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float:
        return self.median_ms / self.baseline_ms


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def peer_available() -> bool:
    return importlib.util.find_spec("pytorch_optimizer") is not None


def peer_shampoo(params, interval: int, block: int):
    """``pytorch_optimizer.ScalableShampoo`` at settings comparable to ours, or None if the
    package is not installed."""
    if not peer_available():
        return None
    from pytorch_optimizer import ScalableShampoo

    return ScalableShampoo(
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        start_preconditioning_step=1,
        preconditioning_compute_steps=interval,
        statistics_compute_steps=1,
        block_size=block,
        nesterov=False,
    )


def _shampoo_candidates(params_for: Callable[[], list[torch.Tensor]], block: int) -> dict:
    """name -> optimizer over a fresh ``params_for()`` (skipping the peer if not installed)."""
    builders = {
        "Adam (foreach)": lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True),
        "Shampoo, roots every step": lambda p: Shampoo(
            p, 1e-3, momentum=0.9, update_interval=1, grafting="sgd", max_dim=block
        ),
        "Shampoo, roots every 10 steps": lambda p: Shampoo(
            p, 1e-3, momentum=0.9, update_interval=10, grafting="sgd", max_dim=block
        ),
        "ScalableShampoo (peer), every step": lambda p: peer_shampoo(p, 1, block),
        "ScalableShampoo (peer), every 10 steps": lambda p: peer_shampoo(p, 10, block),
    }
    built = {name: build(params_for()) for name, build in builders.items()}
    return {name: opt for name, opt in built.items() if opt is not None}


def _rows(setting: str, medians: dict[str, float]) -> list[RatioRow]:
    rows = []
    for name, seconds in medians.items():
        if name.startswith("Adam"):
            continue
        row = RatioRow(
            setting, name, 1e3 * seconds, "Adam (foreach)", 1e3 * medians["Adam (foreach)"]
        )
        if name == "Shampoo, roots every 10 steps":
            row.goal = f"<= {GOAL_SHAMPOO_VS_ADAM:g}x Adam"
            row.met = row.ratio <= GOAL_SHAMPOO_VS_ADAM
        rows.append(row)
    for interval in ("every step", "every 10 steps"):
        ours, peer = f"Shampoo, roots {interval}", f"ScalableShampoo (peer), {interval}"
        if peer in medians:
            rows.append(
                RatioRow(
                    setting,
                    ours,
                    1e3 * medians[ours],
                    peer,
                    1e3 * medians[peer],
                    "faster than the peer",
                    medians[ours] < medians[peer],
                )
            )
    return rows


def bench_shampoo(rounds: int = 30, width: int = 1024, seed: int = 0) -> list[RatioRow]:
    """Shampoo against Adam and the peer; ``width`` sizes the MLP-like matrices."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    half = width // 2
    # the optimizer step alone, on MLP-like matrices and on the CNN's parameters
    for setting, shapes in (
        (
            f"step only, matrices {width}x{width} + {half}x{width}",
            [(width, width), (width,), (half, width)],
        ),
        ("step only, small CNN", [tuple(p.shape) for p in small_cnn().parameters()]),
    ):

        def params_for(shapes=shapes):
            params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen)
            return params

        optimizers = _shampoo_candidates(params_for, width)
        medians = interleaved_medians({n: o.step for n, o in optimizers.items()}, rounds, 3, seed)
        rows += _rows(setting, medians)
    # the whole training step of the CNN
    x = torch.randn(128, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (128,), generator=gen)
    models = {}  # id of the first parameter -> its model

    def model_params():
        model = small_cnn()
        params = list(model.parameters())
        models[id(params[0])] = model
        return params

    optimizers = _shampoo_candidates(model_params, width)

    def training_step(model: nn.Module, opt) -> None:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    steps = {
        name: (lambda opt=opt: training_step(models[id(opt.param_groups[0]["params"][0])], opt))
        for name, opt in optimizers.items()
    }
    medians = interleaved_medians(steps, rounds, 3, seed)
    rows += _rows("training step (forward, backward, step), small CNN, batch 128", medians)
    return rows


def bench_ggt(dim: int = 1 << 20, window: int = 200, rounds: int = 10, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    param = torch.zeros(dim).requires_grad_()
    opt = GGT([param], lr=1e-3, window=window)
    for _ in range(window):  # fill the window
        param.grad = torch.randn(dim, generator=gen)
        opt.step()
    state = opt.state[param]
    w = state["window"]
    x, y = torch.randn(dim, generator=gen), torch.randn(window, generator=gen)

    def recomputing_step():
        opt.step()
        state["gram"].copy_(w @ w.T)

    def floor():
        w @ x
        w.T @ y

    medians = interleaved_medians(
        {"GGT step": opt.step, "recompute": recomputing_step, "floor": floor}, rounds, 2, seed
    )
    step = 1e3 * medians["GGT step"]
    setting = f"GGT, r={window}, d={dim:,}"
    recompute = RatioRow(
        setting, "GGT step", step, "step + Gram recomputed (W W^T)", 1e3 * medians["recompute"]
    )
    recompute.goal = f">= {GOAL_GGT_VS_RECOMPUTE:g}x faster"
    recompute.met = 1 / recompute.ratio >= GOAL_GGT_VS_RECOMPUTE
    bound = RatioRow(setting, "GGT step", step, "floor: W x and W^T y", 1e3 * medians["floor"])
    bound.goal = f"<= {GOAL_GGT_VS_FLOOR:g}x the floor"
    bound.met = bound.ratio <= GOAL_GGT_VS_FLOOR
    return [recompute, bound]


def report(console: Console, options: BenchOptions) -> list:
    """Time Shampoo and GGT against their baselines and print the table."""
    millions, rounds = options.params or 10.0, options.rounds or 30
    if not peer_available():
        console.print(
            "[yellow]pytorch-optimizer is not installed: the ScalableShampoo comparison is "
            "skipped (pip install -c constraints.txt -e '.[bench]')[/]"
        )
    console.print(f"Timing Shampoo and GGT steps, {rounds} rounds...")
    width = int(min(1024, max(64, (millions * 1e6 / 1.5) ** 0.5)))
    rows = bench_shampoo(rounds, width) + bench_ggt(
        dim=max(1 << 12, int(millions * 1e5)), rounds=max(3, rounds // 3)
    )
    console.print(
        rows_table(
            "Shampoo and GGT: median time against a baseline timed in the same run",
            ("setting", "candidate", "ms", "baseline", "baseline ms", "ratio", "goal"),
            [
                (r.setting, r.name, f"{r.median_ms:.2f}", r.baseline, f"{r.baseline_ms:.2f}",
                 f"{r.ratio:.3g}", goal_cell(r.goal, r.met))
                for r in rows
            ],
        )
    )  # fmt: skip
    return rows
