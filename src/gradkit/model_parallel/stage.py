"""One stage of decoupled parallel backpropagation (DDG; Huo, Gu, Yang & Huang, ICML 2018): it
forwards each new batch and, later, backpropagates an older one with the gradient the next
stage sent back, then steps its optimizer.

With the paper's ``stash`` variant the forward runs on a detached copy of the stage's weights
(``torch.func.functional_call``), kept until that batch's backward, so the gradient is the one
of the forward that produced the activations, w^(t - d), applied to the current weights w^t.
``recompute`` keeps only the input and re-runs the forward at backward time with the current
weights (and the forward's random state, for dropout): the gradient of w^t on a stale input and
upstream gradient, which is a different algorithm. Neither updates a batch-norm running
statistic twice: the recomputation works on a copy of the buffers. A stage without delay (the
last) backpropagates each batch before any update, so both variants use its live weights.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call

from gradkit.checks import InputError

Variant = Literal["stash", "recompute"]
VARIANTS = ("stash", "recompute")


def stage_delay(k: int, stages: int) -> int:
    """DDG's schedule: of K stages, stage k (0-indexed) backpropagates at iteration t the batch
    of iteration t - (K - 1 - k), with the gradient stage k + 1 sent at iteration t - 1; the
    last stage has no delay. The one statement of the schedule: the one-process, distributed
    and simulated pipelines all follow it."""
    return stages - 1 - k


def backpropagates(k: int, stages: int, iteration: int) -> bool:
    """Whether stage k backpropagates (and steps) at ``iteration`` (from 0): from its delay on;
    before, no gradient has come back to it."""
    return iteration >= stage_delay(k, stages)


@dataclass
class _InFlight:
    inputs: Tensor  # detached; requires grad unless this is the first stage
    outputs: Tensor | None  # the graph to backpropagate (stash), or None (recompute)
    weights: dict[str, Tensor] | None  # the stashed copy (stash), or None
    rng: tuple[Tensor, Tensor | None] | None  # CPU and device RNG states (recompute)


def _rng_state(device: torch.device) -> tuple[Tensor, Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


class DelayedStage:
    """A stage of DDG: ``module`` (its layers) trained by ``optimizer`` with gradients that
    arrive ``delay`` iterations after their forward. ``first`` stages send no gradient back."""

    def __init__(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        delay: int,
        variant: Variant = "stash",
        first: bool = False,
    ):
        if variant not in VARIANTS:
            raise InputError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        if not isinstance(delay, int) or delay < 0:
            raise InputError(f"delay must be an integer >= 0, got {delay!r}")
        self.module, self.optimizer, self.delay = module, optimizer, delay
        self.variant, self.first = variant, first
        self._live = dict(module.named_parameters())
        self._in_flight: deque[_InFlight] = deque()

    def forward(self, inputs: Tensor) -> Tensor:
        """Forward a new batch; return its (detached) output for the next stage."""
        inputs = inputs.detach()
        if not self.first and inputs.is_floating_point():
            inputs.requires_grad_(True)
        if self.delay == 0:  # backpropagated before any update: the live weights are the stash
            outputs = self.module(inputs)
            self._in_flight.append(_InFlight(inputs, outputs, self._live, None))
            return outputs.detach()
        if self.variant == "recompute":
            rng = _rng_state(inputs.device)
            with torch.no_grad():
                outputs = self.module(inputs)
            self._in_flight.append(_InFlight(inputs, None, None, rng))
            return outputs
        weights = {name: p.detach().clone().requires_grad_(True)
                   for name, p in self._live.items()}  # fmt: skip
        outputs = functional_call(self.module, weights, (inputs,), strict=False)
        self._in_flight.append(_InFlight(inputs, outputs, weights, None))
        return outputs.detach()

    def backward(
        self,
        grad_output: Tensor | None = None,
        loss_fn: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor | None:
        """Backpropagate the oldest batch in flight with ``grad_output`` (the next stage's
        gradient with respect to this stage's output), or from ``loss_fn(outputs)`` on the last
        stage, then take one optimizer step on the current weights. Returns the gradient with
        respect to this stage's input (None on the first stage) and, on the last stage, the
        loss via :attr:`last_loss`."""
        if not self._in_flight:
            raise RuntimeError("backward() without a batch in flight: call forward() first")
        batch = self._in_flight.popleft()
        if batch.outputs is None:  # recompute
            weights = {n: p.detach().requires_grad_(True) for n, p in self._live.items()}
            buffers = {n: b.clone() for n, b in self.module.named_buffers()}
            with torch.random.fork_rng(devices=[batch.inputs.device] if batch.rng[1] is not None
                                       else []):  # fmt: skip
                torch.set_rng_state(batch.rng[0])
                if batch.rng[1] is not None:
                    torch.cuda.set_rng_state(batch.rng[1], batch.inputs.device)
                outputs = functional_call(self.module, {**weights, **buffers}, (batch.inputs,))
        else:
            weights, outputs = batch.weights, batch.outputs
        if loss_fn is not None:
            loss = loss_fn(outputs)
            self.last_loss = float(loss.detach())
            loss.backward()
        else:
            outputs.backward(grad_output)
        if weights is not self._live:
            for name, p in self._live.items():
                p.grad = weights[name].grad
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return None if self.first else batch.inputs.grad
