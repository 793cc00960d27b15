"""Synthetic problems with known structure, generated from a seed."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from gradkit.tasks.datasets import Dataset


def random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def spectrum_matrix(eigenvalues: np.ndarray, rotated: bool, rng: np.random.Generator) -> np.ndarray:
    """diag(eigenvalues), or Q diag(eigenvalues) Q^T for a random rotation Q."""
    if not rotated:
        return np.diag(eigenvalues)
    q = random_rotation(len(eigenvalues), rng)
    return (q * eigenvalues) @ q.T


class NoisyQuadratic(nn.Module):
    r"""The objective :math:`f(x) = \tfrac12 x^\top H x` observed through noisy samples.

    ``forward(xi)`` returns, for each noise sample :math:`\xi_i` (a row of ``xi``), the value
    :math:`\tfrac12 x^\top H x + \sigma\,\xi_i^\top x`, so a mini-batch of :math:`B` samples has the
    gradient :math:`Hx + \sigma\bar\xi` with :math:`\bar\xi \sim N(0, I/B)`. A row of zeros gives
    :math:`f(x)` itself, which is how the test set measures the true objective.
    """

    def __init__(self, hessian: Tensor, noise: float, x0: Tensor) -> None:
        super().__init__()
        self.register_buffer("hessian", hessian)
        self.noise = noise
        self.x = nn.Parameter(x0.clone())

    def forward(self, xi: Tensor) -> Tensor:
        curvature = 0.5 * self.x @ (self.hessian @ self.x)
        return curvature + self.noise * (xi @ self.x)


def quadratic_hessian(
    dim: int = 100,
    condition: tuple[float, float] = (0.1, 10.0),
    rotated: bool = False,
    seed: int = 0,
) -> Tensor:
    """A Hessian with eigenvalues log-spaced over ``condition``: ``diag(eigenvalues)``, or
    ``Q diag(eigenvalues) Q^T`` with a random rotation Q (from ``seed``) when ``rotated``."""
    eigenvalues = np.logspace(np.log10(condition[0]), np.log10(condition[1]), dim)
    hessian = spectrum_matrix(eigenvalues, rotated, np.random.default_rng([seed, 1]))
    return torch.as_tensor(hessian, dtype=torch.float32)


def quadratic_noise(dim: int = 100, samples: int = 50_000, seed: int = 0) -> Dataset:
    """Noise samples for :class:`NoisyQuadratic`: the training "inputs" are i.i.d. N(0, I) rows;
    the test set is one zero row, on which the model returns the exact objective."""
    xi = np.random.default_rng([seed, 2]).standard_normal((samples, dim))
    return Dataset(
        f"noisy quadratic (d={dim})",
        torch.as_tensor(xi, dtype=torch.float32),
        torch.zeros(samples),
        torch.zeros(1, dim),
        torch.zeros(1),
        "objective",
    )


def correlated_logistic(
    samples: int = 2000, dim: int = 20, correlation: float = 0.9, seed: int = 0
) -> Dataset:
    """Binary logistic regression whose features are strongly correlated.

    Features are Gaussian with covariance :math:`\\Sigma_{ij} = c^{|i-j|}` (c = ``correlation``),
    labels are drawn from :math:`\\sigma(x^\\top w^*)` with :math:`w^* \\sim N(0, I)`;
    a 80/20 split.
    """
    rng = np.random.default_rng(seed)
    idx = np.arange(dim)
    cov = correlation ** np.abs(idx[:, None] - idx[None, :])
    x = rng.multivariate_normal(np.zeros(dim), cov, size=samples)
    w = rng.standard_normal(dim)
    y = (rng.random(samples) < 1 / (1 + np.exp(-x @ w))).astype(np.int64)
    n_train = int(0.8 * samples)
    return Dataset(
        f"correlated logistic regression (d={dim}, c={correlation})",
        torch.as_tensor(x[:n_train], dtype=torch.float32),
        torch.as_tensor(y[:n_train]),
        torch.as_tensor(x[n_train:], dtype=torch.float32),
        torch.as_tensor(y[n_train:]),
        "classification",
        2,
    )


def lp_regression(
    samples: int = 1000,
    dim: int = 20,
    noise: float = 0.01,
    seed: int = 0,
    condition: tuple[float, float] = (0.1, 10.0),
) -> Dataset:
    """Linear regression data for an l_p loss: x ~ N(0, Sigma) with eigenvalues log-spaced over
    ``condition`` and a random rotation, standardized; y = x^T w* + noise * N(0, 1). 80/20
    split."""
    rng = np.random.default_rng(seed)
    eigenvalues = np.logspace(np.log10(condition[0]), np.log10(condition[1]), dim)
    root = spectrum_matrix(np.sqrt(eigenvalues), rotated=True, rng=rng)
    x = rng.standard_normal((samples, dim)) @ root
    x = (x - x.mean(0)) / x.std(0)
    y = x @ rng.standard_normal(dim) + noise * rng.standard_normal(samples)
    n_train = int(0.8 * samples)
    return Dataset(
        f"l_p regression (d={dim})",
        torch.as_tensor(x[:n_train], dtype=torch.float32),
        torch.as_tensor(y[:n_train], dtype=torch.float32),
        torch.as_tensor(x[n_train:], dtype=torch.float32),
        torch.as_tensor(y[n_train:], dtype=torch.float32),
        "regression",
    )
