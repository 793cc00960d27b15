"""Per-coordinate gradient noise-to-signal ratio (Balles & Hennig, "Dissecting Adam", ICML 2018).

For a coordinate i with mini-batch gradient g_i, the ratio is eta_i^2 = Var[g_i] / E[g_i]^2. Adam's
update m / sqrt(v) is sign(m) * sqrt(1 / (1 + eta^2)) in these terms, and SVAG's factor is
1 / (1 + eta^2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gradkit.checks import InputError


@dataclass
class NoiseToSignal:
    """Per-parameter mean, variance and ratio of mini-batch gradients (float64 tensors).

    ``ratio`` is ``variance / mean**2``: ``inf`` where the mean is exactly zero and the variance is
    not, ``nan`` where both are zero (a coordinate that never receives a gradient).
    """

    mean: dict[str, Tensor]
    variance: dict[str, Tensor]
    ratio: dict[str, Tensor]
    batch_size: int
    num_batches: int

    def flat_ratio(self) -> Tensor:
        """All ratios in one vector (parameters in ``named_parameters`` order)."""
        return torch.cat([r.reshape(-1) for r in self.ratio.values()])

    def summary(self) -> dict[str, float]:
        """Median ratio and the fraction of coordinates where noise dominates (ratio > 1),
        over the coordinates where the ratio is defined."""
        r = self.flat_ratio()
        r = r[~torch.isnan(r)]
        return {
            "coordinates": int(r.numel()),
            "median_ratio": float(r.median()) if r.numel() else math.nan,
            "fraction_noise_dominated": float((r > 1).double().mean()) if r.numel() else math.nan,
            "batch_size": self.batch_size,
            "num_batches": self.num_batches,
        }


def gradient_noise_to_signal(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    inputs: Tensor,
    targets: Tensor,
    batch_size: int,
    num_batches: int | None = None,
    generator: torch.Generator | None = None,
) -> NoiseToSignal:
    r"""Estimate :math:`\eta_i^2 = \mathrm{Var}[g_i] / E[g_i]^2` from mini-batch gradients.

    Draws ``num_batches`` disjoint batches of ``batch_size`` samples from a random permutation of
    the data (default: every full batch), computes each batch's gradient with
    ``torch.autograd.grad`` (``.grad`` fields are not touched), and accumulates the mean and the
    unbiased variance per coordinate in float64 (Welford's algorithm). The ratio describes the
    noise of a gradient averaged over ``batch_size`` samples.
    """
    if batch_size < 1 or batch_size > len(inputs):
        raise InputError(f"batch_size must be in [1, {len(inputs)}], got {batch_size}")
    available = len(inputs) // batch_size
    num_batches = available if num_batches is None else num_batches
    if not 2 <= num_batches <= available:
        raise InputError(
            f"num_batches must be in [2, {available}] for {len(inputs)} samples in batches of "
            f"{batch_size}, got {num_batches}"
        )
    names, params = zip(
        *[(n, p) for n, p in model.named_parameters() if p.requires_grad], strict=True
    )
    order = torch.randperm(len(inputs), generator=generator)
    mean = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    m2 = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    for k in range(num_batches):
        index = order[k * batch_size : (k + 1) * batch_size]
        loss = loss_fn(model(inputs[index]), targets[index])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for mu, sq, g, p in zip(mean, m2, grads, params, strict=True):
            g = torch.zeros_like(p) if g is None else g
            delta = g.double() - mu
            mu.add_(delta / (k + 1))
            sq.add_(delta * (g.double() - mu))
    variance = [sq / (num_batches - 1) for sq in m2]
    ratio = [v / mu.square() for v, mu in zip(variance, mean, strict=True)]
    return NoiseToSignal(
        dict(zip(names, mean, strict=True)),
        dict(zip(names, variance, strict=True)),
        dict(zip(names, ratio, strict=True)),
        batch_size,
        num_batches,
    )
