"""Parameters seen as vectors: one per parameter, or one for the whole param group (flattened).

Full-matrix methods (GGT, full-matrix AdaGrad) precondition a vector. Per parameter, the vector
is the parameter's flattened gradient and its state is the parameter's. Flattened, the vector
concatenates the gradients of every parameter of the group (a parameter without a gradient
contributes zeros, as in ``torch.optim.LBFGS``), and the state lives in the state of the group's
first parameter, so ``state_dict`` round-trips as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gradkit.optim._base import GradientBatch, new_step_tensor


@dataclass
class GradientVector:
    """One vector to precondition: its state, its gradient and the parameters it covers."""

    state: dict[str, Any]
    grad: Tensor  # flat, shape (d,)
    params: list[Tensor]

    @property
    def step(self) -> int:
        """t, 1 at the first update."""
        return int(self.state["step"] if "flat_step" not in self.state else self.state["flat_step"])

    def apply(self, direction: Tensor, lr: float, weight_decay: float = 0.0) -> None:
        """p <- p (1 - lr * weight_decay) - lr * direction, for the covered parameters."""
        start = 0
        for p in self.params:
            piece = direction[start : start + p.numel()].view(p.shape)
            start += p.numel()
            if weight_decay != 0:
                p.mul_(1 - lr * weight_decay)
            p.add_(piece.to(p.dtype), alpha=-lr)


def gradient_vectors(optimizer, batch: GradientBatch) -> list[GradientVector]:
    """The vectors of one param group, per its ``flatten`` option."""
    if not batch.group["flatten"]:
        return [
            GradientVector(state, g.reshape(-1), [p])
            for p, g, state in zip(batch.params, batch.grads, batch.states, strict=True)
        ]
    params = batch.group["params"]
    grads = {id(p): g for p, g in zip(batch.params, batch.grads, strict=True)}
    flat = torch.cat([grads.get(id(p), torch.zeros_like(p)).reshape(-1) for p in params])
    state = optimizer.state[params[0]]
    state.setdefault("flat_step", new_step_tensor()).add_(1)
    return [GradientVector(state, flat, list(params))]
