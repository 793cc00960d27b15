"""Decoupled parallel backpropagation (DDG; Huo, Gu, Yang & Huang, ICML 2018, arXiv
1804.10574), executed exactly in one process.

The model, an ``nn.Sequential``, is cut into K consecutive stages. At iteration t every stage
forwards batch t with its current weights; then stage k (0-indexed) backpropagates batch
t - (K - 1 - k) with the gradient stage k + 1 sent back at iteration t - 1, and steps its own
optimizer:

    w_k^(t+1) = w_k^t - lr * grad_(w_k) f_(x_(t-K+1+k))(w^(t-K+1+k))

The last stage has no delay; K = 1 is plain backpropagation. Stage k's first update comes at
iteration K - 1 - k, and the gradients of the last K - 1 - k batches never arrive (the paper's
algorithm over T iterations).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

from gradkit.model_parallel.split import split_sequential
from gradkit.model_parallel.stage import DelayedStage, Variant, stage_delay

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class DDG:
    """Train ``model`` (an ``nn.Sequential``) by DDG on ``stages`` stages balanced by parameter
    count, or cut before ``split_points``. ``optimizer`` builds each stage's optimizer from its
    parameters (e.g. ``lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)``); ``loss_fn(output,
    target)`` is the loss of the last stage's output. ``variant`` is ``"stash"`` (the paper's:
    each delayed gradient is evaluated with the weights of its own forward) or ``"recompute"``
    (the forward re-run with the current weights at backward time: not the paper's algorithm).

    The stages share the model's modules, so ``model`` itself evaluates the current weights.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: OptimizerFactory,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        stages: int | None = None,
        split_points: Sequence[int] | None = None,
        variant: Variant = "stash",
    ):
        if stages is None and split_points is None:
            stages = 1
        self.parts = split_sequential(model, stages, split_points)
        delays = [stage_delay(k, len(self.parts)) for k in range(len(self.parts))]
        self.stages = [
            DelayedStage(part, optimizer(part.parameters()), delay, variant, first=k == 0)
            for k, (part, delay) in enumerate(zip(self.parts, delays, strict=True))
        ]
        self.model, self.loss_fn, self.variant = model, loss_fn, variant
        self._received: list[Tensor | None] = [None] * len(self.stages)

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def step(self, inputs: Tensor, targets: Tensor) -> float:
        """One DDG iteration on the batch (``inputs``, ``targets``); returns its loss (the last
        stage's, at the current weights)."""
        h = inputs
        for stage in self.stages:
            h = stage.forward(h)
        sent: list[Tensor | None] = [None] * self.num_stages
        last = self.stages[-1]
        sent[-1] = last.backward(loss_fn=lambda out: self.loss_fn(out, targets))
        for k in range(self.num_stages - 2, -1, -1):
            if self._received[k] is not None:
                sent[k] = self.stages[k].backward(self._received[k])
        # stage k receives what stage k + 1 sent, for its next iteration
        self._received = [*sent[1:], None]
        return last.last_loss
