"""What DDG's parts cost per batch: each stage's forward and backward time and the bytes it
sends, and each layer's time (to balance stages by measured time)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gradkit.checks import InputError
from gradkit.model_parallel.split import balanced_split_points
from gradkit.model_parallel.stage import DelayedStage


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
                raise InputError(f"a stage's {name} time must be a number >= 0, got {value!r}")
        if not (isinstance(self.output_bytes, int) and self.output_bytes >= 0):
            raise InputError(f"output_bytes must be an integer >= 0, got {self.output_bytes!r}")


def measure_stage_costs(
    parts: Sequence[nn.Module], inputs: Tensor, repeats: int = 5
) -> list[StageCost]:
    """Median wall times of each stage's DDG forward (stashing its weights, except the last
    stage's) and backward with an SGD step, on ``inputs``, on this machine and thread count,
    over ``repeats`` runs after one warm-up. The stages run on copies: the model is untouched."""
    if repeats < 1:
        raise InputError(f"repeats must be >= 1, got {repeats!r}")
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


def layer_times(model: nn.Sequential, inputs: Tensor, repeats: int = 5) -> list[float]:
    """Median wall seconds of each layer's forward and backward (with respect to its input and
    its parameters) on the activations ``inputs`` produce, on this machine and thread count,
    over ``repeats`` runs after one warm-up. The layers run on a copy, and the random state is
    restored afterwards, so measuring changes neither the model nor a run's later random draws
    (dropout masks)."""
    if repeats < 1:
        raise InputError(f"repeats must be >= 1, got {repeats!r}")
    layers = list(deepcopy(model))
    runs = []
    devices = [inputs.device] if inputs.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        for _ in range(repeats + 1):
            runs.append(_time_layers(layers, inputs))
    return [statistics.median(column) for column in zip(*runs[1:], strict=True)]


def _time_layers(layers: list[nn.Module], inputs: Tensor) -> list[float]:
    def synchronize():  # CUDA kernels run asynchronously: wait for them before reading the clock
        if inputs.device.type == "cuda":
            torch.cuda.synchronize(inputs.device)

    h, times = inputs, []
    for layer in layers:
        h = h.detach().requires_grad_(h.is_floating_point())
        synchronize()
        started = time.perf_counter()
        out = layer(h)
        if out.requires_grad:
            out.backward(torch.ones_like(out))
        synchronize()
        times.append(time.perf_counter() - started)
        h = out
    return times


BALANCES = ("parameters", "time")


def balanced_by(model: nn.Sequential, stages: int, balance: str, inputs: Tensor) -> list[int]:
    """Split points that give each of ``stages`` stages about 1/K of the parameters
    (``balance="parameters"``) or of the compute time measured on ``inputs`` (``"time"``,
    :func:`layer_times`). Measured times differ between processes: in a multi-process run,
    measure on one rank and share the points."""
    if balance not in BALANCES:
        raise InputError(f"unknown balance {balance!r}; choose from {', '.join(BALANCES)}")
    costs = layer_times(model, inputs) if balance == "time" and stages > 1 else None
    return balanced_split_points(model, stages, costs)
