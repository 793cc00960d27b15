"""Per-sample gradients of any model: ``torch.func`` (vmap over grad) where the model allows it,
a loop of autograd calls where it does not.

For a model f(x; w) and a loss l(output, target) that averages over a batch, row i of the result
is the flattened gradient of l(f(x_i; w), y_i) with respect to w (parameters in
``model.parameters()`` order), computed at the current parameters.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from gradkit.checks import InputError

Method = Literal["auto", "vmap", "loop"]
METHODS = ("auto", "vmap", "loop")


class PerSampleGradientError(RuntimeError):
    """torch.func cannot differentiate this model one sample at a time."""


def per_sample_gradients(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    inputs: Tensor,
    targets: Tensor,
    method: Method = "auto",
) -> Tensor:
    """(n, d) matrix of per-sample gradients (see the module docstring). ``method="vmap"``
    raises :class:`PerSampleGradientError` if torch.func cannot handle the model; ``"auto"``
    then falls back to the loop with a warning saying why; ``"loop"`` always loops (n backward
    passes)."""
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if inputs.shape[0] != targets.shape[0]:
        raise InputError(
            f"inputs and targets differ in samples: {inputs.shape[0]} vs {targets.shape[0]}"
        )
    if method != "loop":
        try:
            return _vmapped(model, loss_fn, inputs, targets)
        except Exception as error:  # torch.func's refusals come as many exception types
            reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200]}"
            message = (
                f"torch.func cannot differentiate {type(model).__name__} one sample at a time "
                f"({reason})"
            )
            if method == "vmap":
                raise PerSampleGradientError(
                    message + "; use method='loop' (one backward pass per sample)"
                ) from error
            warnings.warn(message + "; falling back to one backward pass per sample", stacklevel=2)
    return _looped(model, loss_fn, inputs, targets)


def _vmapped(model, loss_fn, inputs, targets) -> Tensor:
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())

    def sample_loss(weights, x, y):
        out = functional_call(model, (weights, buffers), (x.unsqueeze(0),))
        return loss_fn(out, y.unsqueeze(0))

    grads = vmap(grad(sample_loss), in_dims=(None, 0, 0), randomness="error")(
        params, inputs, targets
    )
    return torch.cat([g.reshape(inputs.shape[0], -1) for g in grads.values()], dim=1)


def _looped(model, loss_fn, inputs, targets) -> Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for x, y in zip(inputs, targets, strict=True):
        loss = loss_fn(model(x.unsqueeze(0)), y.unsqueeze(0))
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    if not rows:
        numel = sum(p.numel() for p in params)
        return torch.zeros(0, numel, dtype=params[0].dtype, device=params[0].device)
    return torch.stack(rows)
