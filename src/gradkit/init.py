"""Initialisation at criticality (Xiao et al., ICML 2018), in the conventions of
:mod:`torch.nn.init`: in place, a trailing underscore, ``gain``, ``generator``.

``gain`` is sigma_w, the scale of the weights (as in :func:`torch.nn.init.orthogonal_`), not
sigma_w^2: :func:`critical_point` returns the mean-field variances (sigma_w^2, sigma_b^2), and
a layer initialised from them takes ``gain=sqrt(sigma_w2)``.

Mean field, per unit (per spatial position for convolutions): with preactivation variance q,

    q' = sigma_w^2 E_z[phi(sqrt(q) z)^2] + sigma_b^2,      chi_1 = sigma_w^2 E_z[phi'(sqrt(q*) z)^2]

for z ~ N(0, 1). A critical point has the fixed point q' = q = q* and chi_1 = 1: signals neither
explode nor vanish with depth, and with orthogonal weights (delta-orthogonal kernels for
convolutions) the input-output Jacobian is close to an isometry.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from gradkit.checks import InputError

QUADRATURE_NODES = 100
"""Probabilists' Gauss-Hermite nodes for the mean-field expectations (exact for polynomials of
degree < 200). An even count keeps z = 0 out of the nodes, where ReLU's derivative jumps."""

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "linear": lambda x: x,
    "erf": torch.erf,
    "sigmoid": torch.sigmoid,
}


def _haar_orthogonal(rows: int, cols: int, generator, dtype, device) -> Tensor:
    """A rows x cols matrix with orthonormal columns (rows >= cols) or rows, drawn from the Haar
    measure: QR of a Gaussian matrix in float64, signs fixed by diag(R)."""
    tall = rows >= cols
    shape = (rows, cols) if tall else (cols, rows)
    gaussian = torch.randn(shape, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r))
    q = q if tall else q.T
    return q.to(dtype=dtype, device=device)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None):
    """Fill a 2-D ``tensor`` (out, in) in place with ``gain`` times a Haar-random matrix with
    orthonormal rows or columns (whichever are fewer): W W^T = gain^2 I when out <= in, W^T W =
    gain^2 I otherwise. ``generator`` is a CPU generator (the matrix is drawn in float64 on the
    CPU, then copied to the tensor's device and dtype)."""
    if tensor.ndim != 2:
        raise InputError(
            f"orthogonal_ takes a 2-D weight (out, in), got shape {tuple(tensor.shape)}"
        )
    _check_gain(gain)
    rows, cols = tensor.shape
    with torch.no_grad():
        q = _haar_orthogonal(rows, cols, generator, tensor.dtype, tensor.device)
        return tensor.copy_(q.mul_(gain))


def delta_orthogonal_(weight: Tensor, gain: float = 1.0, generator: torch.Generator | None = None):
    """Fill a convolution weight (out_channels, in_channels, *kernel) of Conv1d/2d/3d in place:
    zero everywhere but the centre tap, which is ``gain`` times the first in_channels columns of
    a Haar-random out_channels x out_channels orthogonal matrix. With circular padding the
    convolution then preserves the norm of every input (times ``gain``). Needs odd kernel sizes
    and in_channels <= out_channels."""
    if weight.ndim not in (3, 4, 5):
        raise InputError(
            "delta_orthogonal_ takes a Conv1d/2d/3d weight (out_channels, in_channels, *kernel), "
            f"got shape {tuple(weight.shape)}"
        )
    out_channels, in_channels, *kernel = weight.shape
    if any(k % 2 == 0 for k in kernel):
        raise InputError(f"delta_orthogonal_ needs odd kernel sizes (a centre tap), got {kernel}")
    if in_channels > out_channels:
        raise InputError(
            "delta_orthogonal_ needs in_channels <= out_channels (the centre tap has orthonormal "
            f"columns), got {in_channels} > {out_channels}"
        )
    _check_gain(gain)
    with torch.no_grad():
        q = _haar_orthogonal(out_channels, in_channels, generator, weight.dtype, weight.device)
        weight.zero_()
        weight[(slice(None), slice(None), *(k // 2 for k in kernel))] = q.mul_(gain)
        return weight


def _check_gain(gain: float) -> None:
    if not (isinstance(gain, int | float) and math.isfinite(gain) and gain > 0):
        raise InputError(f"gain must be a positive number, got {gain!r}")


@dataclass(frozen=True)
class MeanFieldPoint:
    """Mean-field weight and bias variances, the fixed point q* of the variance map there, and
    chi_1 at it (1 at a critical point)."""

    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi_1: float  # sigma_w2 E[phi'(sqrt(q*) z)^2]

    @property
    def gain(self) -> float:
        """sigma_w, the ``gain`` of :func:`orthogonal_` and :func:`delta_orthogonal_`."""
        return math.sqrt(self.sigma_w2)


def _activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise InputError(
            f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)} or pass a "
            "function of a float64 tensor"
        )
    return ACTIVATIONS[activation]


def gaussian_expectations(
    activation: str | Callable[[Tensor], Tensor], q: float
) -> tuple[float, float]:
    """(E[phi(sqrt(q) z)^2], E[phi'(sqrt(q) z)^2]) for z ~ N(0, 1), by Gauss-Hermite quadrature
    in float64 (phi' by autograd, so any differentiable torch function works)."""
    phi = _activation(activation)
    nodes, weights = _quadrature()
    x = nodes.mul(math.sqrt(q)).requires_grad_(True)
    value = phi(x)
    (slope,) = torch.autograd.grad(value.sum(), x)
    return float(weights @ value.detach().pow(2)), float(weights @ slope.pow(2))


@functools.cache
def _quadrature() -> tuple[Tensor, Tensor]:
    """Nodes and weights of E[f(z)], z ~ N(0, 1), in float64."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    return torch.from_numpy(nodes), torch.from_numpy(weights / math.sqrt(2 * math.pi))


def critical_point(activation: str | Callable[[Tensor], Tensor] = "tanh", q_star: float = 0.01):
    """The (sigma_w^2, sigma_b^2) at which ``q_star`` is the fixed point of the variance map and
    chi_1 = 1: sigma_w^2 = 1 / E[phi'(sqrt(q*) z)^2], sigma_b^2 = q* - sigma_w^2 E[phi(sqrt(q*)
    z)^2]. Raises if that sigma_b^2 is negative (no critical point at this q*)."""
    if not (isinstance(q_star, int | float) and math.isfinite(q_star) and q_star > 0):
        raise InputError(f"q_star must be a positive number, got {q_star!r}")
    second, slope = gaussian_expectations(activation, q_star)
    if not slope > 0:
        raise InputError(f"the activation's derivative vanishes at q* = {q_star}: no chi_1 = 1")
    sigma_w2 = 1.0 / slope
    sigma_b2 = q_star - sigma_w2 * second
    if sigma_b2 < -1e-12 * q_star:
        raise InputError(
            f"no critical point with fixed point q* = {q_star}: it needs sigma_b^2 = "
            f"{sigma_b2:.3g} < 0 for this activation; try another q*"
        )
    return MeanFieldPoint(sigma_w2, max(sigma_b2, 0.0), q_star, sigma_w2 * slope)


def fixed_point(
    activation: str | Callable[[Tensor], Tensor],
    sigma_w2: float,
    sigma_b2: float = 0.0,
    iterations: int = 500,
) -> MeanFieldPoint:
    """The mean-field point at given variances (e.g. off-critical ones): q* by iterating the
    variance map from q = 1, and chi_1 there."""
    for name, value in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be a number >= 0, got {value!r}")
    phi = _activation(activation)
    nodes, weights = _quadrature()
    q = 1.0
    with torch.no_grad():
        for _ in range(iterations):
            q = sigma_w2 * float(weights @ phi(nodes * math.sqrt(q)).pow(2)) + sigma_b2
    return MeanFieldPoint(sigma_w2, sigma_b2, q, sigma_w2 * gaussian_expectations(activation, q)[1])


WEIGHTS = ("orthogonal", "gaussian")
LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def init_critical_(
    model: nn.Module,
    activation: str | Callable[[Tensor], Tensor] = "tanh",
    q_star: float = 0.01,
    weights: str = "orthogonal",
    generator: torch.Generator | None = None,
    point: MeanFieldPoint | None = None,
) -> MeanFieldPoint:
    """Initialise every Linear and Conv1d/2d/3d of ``model`` in place at the critical point of
    ``activation`` for ``q_star`` (or at ``point``, e.g. an off-critical one from
    :func:`fixed_point`). ``weights="orthogonal"``: :func:`orthogonal_` for linear layers,
    :func:`delta_orthogonal_` for convolutions, both with gain sigma_w; ``"gaussian"``: entries
    N(0, sigma_w^2 / fan_in), fan_in = in_features or in_channels x kernel size. Biases are
    N(0, sigma_b^2). Other modules keep their parameters. Returns the point used."""
    if weights not in WEIGHTS:
        raise InputError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    point = point or critical_point(activation, q_star)
    layers = [m for m in model.modules() if isinstance(m, LAYERS)]
    if not layers:
        raise InputError("the model has no Linear or Conv1d/2d/3d layer to initialise")
    with torch.no_grad():
        for layer in layers:
            w = layer.weight
            if weights == "gaussian":
                fan_in = w[0].numel()
                noise = torch.randn(w.shape, generator=generator, dtype=torch.float64)
                w.copy_(noise.mul_(point.gain / math.sqrt(fan_in)))
            elif isinstance(layer, nn.Linear):
                orthogonal_(w, point.gain, generator)
            else:
                delta_orthogonal_(w, point.gain, generator)
            if layer.bias is not None:
                noise = torch.randn(layer.bias.shape, generator=generator, dtype=torch.float64)
                layer.bias.copy_(noise.mul_(math.sqrt(point.sigma_b2)))
    return point
