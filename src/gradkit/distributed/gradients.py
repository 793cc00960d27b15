"""Mini-batch gradients of a module at any flat parameter vector, for one worker or, vectorised,
for many at once."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from gradkit.checks import InputError


class NonFiniteLossError(FloatingPointError):
    """A worker's mini-batch loss or gradient was NaN or infinite (the run diverged)."""


class GradientEngine:
    """Evaluates mini-batch gradients of ``module`` at any flat parameter vector.

    The module's parameters are made views into one flat buffer; ``gradient(x, ...)`` copies ``x``
    into it (so ``x`` may change while the gradient is used) and returns a new flat gradient. One
    engine serves every simulated worker.
    """

    def __init__(self, module: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor]):
        self.module = module
        self.loss_fn = loss_fn
        self.params = [p for p in module.parameters() if p.requires_grad]
        if not self.params:
            raise InputError("the model has no trainable parameters")
        dtypes = {p.dtype for p in self.params}
        if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
            raise InputError(f"all parameters must share one floating dtype, got {dtypes}")
        with torch.no_grad():
            self.flat = torch.cat([p.reshape(-1) for p in self.params])
        self._bind(self.flat)
        self._batched = None

    def _bind(self, flat: Tensor) -> None:
        """Make the module's parameters views into ``flat``."""
        offset = 0
        for p in self.params:
            p.data = flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()

    @property
    def numel(self) -> int:
        return self.flat.numel()

    @property
    def param_sizes(self) -> tuple[int, ...]:
        """Sizes of the parameters, in the order of the flat vector."""
        return tuple(p.numel() for p in self.params)

    def gradient(
        self, x: Tensor, inputs: Tensor, targets: Tensor, snapshot: bool = True
    ) -> tuple[Tensor, float]:
        """(flat gradient, loss) of the mini-batch at parameters ``x``; raises
        :class:`NonFiniteLossError` if the loss is not finite. With ``snapshot=False`` the
        module computes on ``x`` itself (no copy), which is safe only if nothing changes ``x``
        during the call."""
        if snapshot:
            with torch.no_grad():
                self.flat.copy_(x)
            self._bind(self.flat)
        else:
            self._bind(x)
        loss = self.loss_fn(self.module(inputs), targets)
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(f"non-finite mini-batch loss ({value})")
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        flat = torch.cat(
            [
                (torch.zeros_like(p) if g is None else g).reshape(-1)
                for p, g in zip(self.params, grads, strict=True)
            ]
        )
        return flat, value

    def gradients(self, xs: Tensor, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Gradients and losses for k parameter vectors at once: ``xs`` is (k, P), ``inputs`` and
        ``targets`` stack one mini-batch per row. Vectorised with ``torch.func.vmap`` (one
        batched forward and backward instead of k small ones); raises
        :class:`NonFiniteLossError` if any loss is not finite."""
        if self._batched is None:
            names = [name for name, p in self.module.named_parameters() if p.requires_grad]
            sizes = [p.numel() for p in self.params]
            shapes = [p.shape for p in self.params]

            def loss_at(x: Tensor, batch_inputs: Tensor, batch_targets: Tensor) -> Tensor:
                views = torch.split(x, sizes)
                params = {n: v.view(s) for n, v, s in zip(names, views, shapes, strict=True)}
                out = torch.func.functional_call(self.module, params, (batch_inputs,))
                return self.loss_fn(out, batch_targets)

            self._batched = torch.func.vmap(torch.func.grad_and_value(loss_at))
        grads, losses = self._batched(xs, inputs, targets)
        if not bool(torch.isfinite(losses).all()):
            raise NonFiniteLossError(f"non-finite mini-batch loss ({losses.tolist()})")
        return grads, losses

    def load(self, x: Tensor) -> nn.Module:
        """The module with (a copy of) parameters ``x``, for evaluation."""
        with torch.no_grad():
            self.flat.copy_(x)
        self._bind(self.flat)
        return self.module
