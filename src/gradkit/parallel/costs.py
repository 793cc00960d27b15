"""What one DDG stage costs per batch: forward and backward time, and the bytes it sends."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gradkit.parallel.stage import DelayedStage


@dataclass(frozen=True)
class StageCost:
    """Seconds (or any time unit) of a stage's forward and of its backward with the optimizer
    step, and the bytes of its output activations (its input gradients are as large as its
    input, the previous stage's output)."""

    forward: float
    backward: float
    output_bytes: int

    def __post_init__(self):
        for name in ("forward", "backward"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0):
                raise ValueError(f"a stage's {name} time must be a number >= 0, got {value!r}")
        if not (isinstance(self.output_bytes, int) and self.output_bytes >= 0):
            raise ValueError(f"output_bytes must be an integer >= 0, got {self.output_bytes!r}")


def measure_stage_costs(
    parts: Sequence[nn.Module], inputs: Tensor, repeats: int = 5
) -> list[StageCost]:
    """Median wall times of each stage's DDG forward (stashing its weights, except the last
    stage's) and backward with an SGD step, on ``inputs``, on this machine and thread count,
    over ``repeats`` runs after one warm-up. The stages run on copies: the model is untouched."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    costs = []
    h = inputs
    for k, part in enumerate(parts):
        copy = deepcopy(part)
        last = k == len(parts) - 1
        stage = DelayedStage(copy, torch.optim.SGD(copy.parameters(), lr=0.0), 0 if last else 1)
        forwards, backwards = [], []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            out = stage.forward(h)
            middle = time.perf_counter()
            stage.backward(torch.ones_like(out))
            ended = time.perf_counter()
            forwards.append(middle - started)
            backwards.append(ended - middle)
        costs.append(StageCost(statistics.median(forwards[1:]), statistics.median(backwards[1:]),
                               out.numel() * out.element_size()))  # fmt: skip
        h = out
    return costs
