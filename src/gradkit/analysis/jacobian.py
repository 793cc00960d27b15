"""The input-output Jacobian's singular values (dynamical isometry, Xiao et al. / Pennington
et al.): J = d f(x) / d x per sample, through torch.func, in the model's dtype (use float64 for
deep nets: their spectra span many orders of magnitude)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gradkit.checks import InputError


@dataclass
class JacobianSpectrum:
    """Singular values of J per sample: ``values`` (samples, min(out, in)), descending."""

    values: Tensor

    def log_spread(self) -> float:
        """Standard deviation of log sigma over all samples' singular values (0 at isometry)."""
        logs = self.values.clamp_min(torch.finfo(self.values.dtype).tiny).log()
        return float(logs.flatten().std(correction=0))

    def condition(self) -> float:
        """Median over samples of sigma_max / sigma_min (inf where sigma_min is 0)."""
        ratio = self.values[:, 0] / self.values[:, -1]
        return float(ratio.median())

    def mean_square(self) -> float:
        """Mean of sigma^2: 1 when the net neither grows nor shrinks signals on average."""
        return float(self.values.pow(2).mean())

    def summary(self) -> str:
        return (
            f"{self.values.shape[0]} samples, {self.values.shape[1]} singular values each: std of "
            f"log sigma {self.log_spread():.3g}, median max/min {self.condition():.3g}, "
            f"mean sigma^2 {self.mean_square():.3g}"
        )


def jacobian_spectrum(model: nn.Module, inputs: Tensor) -> JacobianSpectrum:
    """Singular values of the Jacobian of the flattened output with respect to the flattened
    input, for every sample of ``inputs`` (batch dimension first), in eval mode. The model must
    treat samples independently (no batch norm in training mode)."""
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise InputError(
            f"inputs need a batch dimension with samples, got shape {tuple(inputs.shape)}"
        )
    was_training = model.training
    model.eval()
    try:

        def one(x: Tensor) -> Tensor:
            return model(x.unsqueeze(0)).flatten()

        jacobians = [torch.func.jacrev(one)(x).reshape(-1, math.prod(x.shape)) for x in inputs]
    finally:
        model.train(was_training)
    with torch.no_grad():
        values = torch.stack([torch.linalg.svdvals(j) for j in jacobians])
    return JacobianSpectrum(values)


def jacobian_spectra_along(
    blocks: nn.Sequential, inputs: Tensor, depths: Sequence[int]
) -> dict[int, JacobianSpectrum]:
    """The spectrum of the Jacobian of the first L blocks of ``blocks`` (the output after block
    L with respect to the input of block 1), for every L in ``depths``, from one forward-mode
    pass per sample (``torch.func.jacfwd``; the cost of the deepest L, not of their sum). In
    eval mode; samples must be treated independently."""
    wanted = sorted(set(depths))
    if not wanted or wanted[0] < 1 or wanted[-1] > len(blocks):
        raise InputError(
            f"depths must lie in 1..{len(blocks)} (the number of blocks), got {depths}"
        )
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise InputError(
            f"inputs need a batch dimension with samples, got shape {tuple(inputs.shape)}"
        )
    was_training = blocks.training
    blocks.eval()
    try:

        def along(x: Tensor) -> tuple[Tensor, ...]:
            recorded, h = [], x.unsqueeze(0)
            for depth, block in enumerate(blocks[: wanted[-1]], start=1):
                h = block(h)
                if depth in wanted:
                    recorded.append(h.flatten())
            return tuple(recorded)

        per_sample = [torch.func.jacfwd(along)(x) for x in inputs]
    finally:
        blocks.train(was_training)
    with torch.no_grad():
        return {
            depth: JacobianSpectrum(
                torch.stack(
                    [torch.linalg.svdvals(js[i].reshape(js[i].shape[0], -1)) for js in per_sample]
                )
            )
            for i, depth in enumerate(wanted)
        }
