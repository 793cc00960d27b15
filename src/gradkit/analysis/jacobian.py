"""The input-output Jacobian's singular values (dynamical isometry, Xiao et al. / Pennington
et al.): J = d f(x) / d x per sample, through torch.func, in the model's dtype (use float64 for
deep nets: their spectra span many orders of magnitude)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


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
        raise ValueError(
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
