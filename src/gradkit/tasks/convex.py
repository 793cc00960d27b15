"""Convex problems with a known optimum, minimised with full-batch steps.

Each problem is built from a seed (the instance or the initial point) and knows its optimal
value f*: multinomial logistic regression on digits, an ill-conditioned matrix least-squares
problem and linear regression with a rotated or axis-aligned feature covariance.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradkit.tasks import datasets, synthetic

Objective = Callable[[], Tensor]


@dataclass
class Instance:
    """Parameters to optimise, the full-batch objective over them, and its optimal value."""

    params: list[nn.Parameter]
    objective: Objective
    optimum: float


def lbfgs_optimum(params: list[nn.Parameter], objective: Objective) -> float:
    """min f by full-batch L-BFGS in float64 from the given point (the parameters are restored)."""
    start = [p.detach().clone() for p in params]
    opt = torch.optim.LBFGS(
        params, lr=1, max_iter=2000, tolerance_grad=1e-12, tolerance_change=1e-15,
        history_size=50, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        value = float(objective())
        for p, s in zip(params, start, strict=True):
            p.copy_(s)
    return value


@functools.cache
def _digits_arrays() -> tuple[Tensor, Tensor]:
    data = datasets.digits(images=False)
    return data.x_train.double(), data.y_train


@functools.cache
def _digits_optimum(l2: float) -> float:
    instance = digits_logreg(0, l2, optimum=math.nan)
    return lbfgs_optimum(instance.params, instance.objective)


def digits_logreg(seed: int, l2: float = 1e-3, optimum: float | None = None) -> Instance:
    """Multinomial logistic regression on digits (W in R^{10x64} and a bias), mean cross-entropy
    plus (l2/2)||W||^2, from W ~ N(0, 0.01^2) drawn with ``seed``."""
    x, y = _digits_arrays()
    gen = torch.Generator().manual_seed(seed)
    weight = nn.Parameter(0.01 * torch.randn(10, 64, generator=gen, dtype=torch.float64))
    bias = nn.Parameter(torch.zeros(10, dtype=torch.float64))

    def objective() -> Tensor:
        return F.cross_entropy(x @ weight.T + bias, y) + 0.5 * l2 * weight.square().sum()

    optimum = _digits_optimum(l2) if optimum is None else optimum
    return Instance([weight, bias], objective, optimum)


def _rotated_spectrum(eigenvalues: np.ndarray, rotated: bool, rng) -> np.ndarray:
    """A square root of Q diag(eigenvalues) Q^T (or of diag(eigenvalues))."""
    return synthetic.spectrum_matrix(np.sqrt(eigenvalues), rotated, rng)


def matrix_least_squares(seed: int, rows: int = 256, m: int = 32, k: int = 16) -> Instance:
    """f(W) = ||X W M - Y||_F^2 / (2 n): X (n x m) with rotated feature covariance of eigenvalues
    log-spaced over [1e-2, 1], M (k x k) with rotated singular values over [0.1, 1], so the
    Hessian (X^T X / n) kron (M M^T) has condition number about 1e4; Y = X W* M + 0.01 noise;
    W starts at 0. The instance is drawn with ``seed``."""
    rng = np.random.default_rng([seed, 7])
    x = rng.standard_normal((rows, m)) @ _rotated_spectrum(np.logspace(-2, 0, m), True, rng)
    mix = _rotated_spectrum(np.logspace(-2, 0, k), True, rng)
    y = x @ rng.standard_normal((m, k)) @ mix + 0.01 * rng.standard_normal((rows, k))
    optimum_w = np.linalg.pinv(x) @ y @ np.linalg.pinv(mix)
    optimum = float(np.square(x @ optimum_w @ mix - y).sum() / (2 * rows))
    x, mix, y = (torch.as_tensor(a) for a in (x, mix, y))
    weight = nn.Parameter(torch.zeros(m, k, dtype=torch.float64))

    def objective() -> Tensor:
        return (x @ weight @ mix - y).square().sum() / (2 * rows)

    return Instance([weight], objective, optimum)


def linear_regression(seed: int, rotated: bool, rows: int = 1000, dim: int = 100) -> Instance:
    """f(w) = ||X w - y||^2 / (2 n) with feature covariance eigenvalues log-spaced over
    [1e-3, 1] (condition number 1e3), in a random basis (``rotated``) or the coordinate axes;
    y = X w* + 0.01 noise; w starts at 0. Instance drawn with ``seed``; the rotated and
    axis-aligned twins share everything but the basis."""
    rng = np.random.default_rng([seed, 11])
    z = rng.standard_normal((rows, dim))
    truth = rng.standard_normal(dim)
    noise = 0.01 * rng.standard_normal(rows)
    x = z @ _rotated_spectrum(np.logspace(-3, 0, dim), rotated, rng)
    y = x @ truth + noise
    optimum_w = np.linalg.lstsq(x, y, rcond=None)[0]
    optimum = float(np.square(x @ optimum_w - y).sum() / (2 * rows))
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    w = nn.Parameter(torch.zeros(dim, dtype=torch.float64))

    def objective() -> Tensor:
        return (x @ w - y).square().sum() / (2 * rows)

    return Instance([w], objective, optimum)


def full_batch_losses(
    instance: Instance, optimizer: torch.optim.Optimizer, iterations: int
) -> list[float]:
    """f(x_t) for t = 0..iterations under full-batch steps of ``optimizer`` (built on
    ``instance.params``); inf from the first non-finite value on."""
    opt = optimizer
    values = []
    for _ in range(iterations):
        opt.zero_grad()
        loss = instance.objective()
        values.append(float(loss.detach()))
        if not math.isfinite(values[-1]):
            return values + [math.inf] * (iterations + 1 - len(values))
        loss.backward()
        opt.step()
    with torch.no_grad():
        values.append(float(instance.objective()))
    return [v if math.isfinite(v) else math.inf for v in values]


def iterations_to_target(values: list[float], optimum: float, gap: float) -> int:
    """First t with f(x_t) <= f* + gap (f(x_0) - f*); len(values) (one more than the budget)
    if never."""
    target = optimum + gap * (values[0] - optimum)
    return next((t for t, v in enumerate(values) if v <= target), len(values))


PROBLEMS: dict[str, Callable[..., Instance]] = {
    "digits-logreg": digits_logreg,
    "matrix-least-squares": matrix_least_squares,
    "linear-regression": linear_regression,
}
"""Convex problems by name; each builder takes the seed and its own keyword options."""
