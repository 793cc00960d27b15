r"""Adaptive batch sizes from gradient noise (Bollapragada, Byrd & Nocedal; Bollapragada et al.,
ICML 2018), usable with any optimizer.

With per-sample gradients G_i (i in the current sample S, |S| = b), their mean g and a search
direction v (the quasi-Newton H g, or g itself):

- inner-product test: Var_i(G_i^T v) / b <= theta^2 (g^T v)^2, Var the sample variance
  (1/(b-1)) sum_i (G_i^T v - g^T v)^2; when it fails the next sample has
  ceil(Var_i(G_i^T v) / (theta^2 (g^T v)^2)) entries;
- orthogonality test (optional): (1/(b-1)) sum_i ||G_i - (G_i^T g / ||g||^2) g||^2 / b
  <= nu^2 ||g||^2, failing which the size is that variance over nu^2 ||g||^2, rounded up.

gradkit's one change to the paper's formulas: the sample is drawn without replacement from N
samples, so the variance of its mean is Var (1/b - 1/N), not Var / b (the finite-population
correction). It vanishes when b = N: the whole data set has no sampling noise, the tests hold
and the line search starts at a unit step, so full-batch PBQN is L-BFGS with Armijo
backtracking. For b << N it is the paper's Var / b.

The size only grows and is capped at the number of samples. :class:`ProgressiveSampler` draws
the growing samples, keeping part of the previous sample (the overlap used for curvature pairs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gradkit.checks import InputError


@dataclass(frozen=True)
class BatchStatistics:
    """What the tests saw on one sample of ``size`` per-sample gradients, drawn without
    replacement from ``population`` samples (None: an infinite population). The variance of a
    sample mean is Var (1/b - 1/N), so a sample holding all the data has none."""

    size: int
    inner_variance: float  # Var_i(G_i^T v)
    inner_mean: float  # g^T v
    orthogonal_variance: float | None  # (1/(b-1)) sum ||G_i - proj_g G_i||^2, if asked
    gradient_norm_sq: float  # ||g||^2
    population: int | None = None

    def _of_mean(self, variance: float, size: int) -> float:
        return variance * (1 / size - (1 / self.population if self.population else 0.0))

    def inner_test_holds(self, theta: float) -> bool:
        return self._of_mean(self.inner_variance, self.size) <= theta**2 * self.inner_mean**2

    def orthogonal_test_holds(self, nu: float) -> bool:
        if self.orthogonal_variance is None:
            return True
        return self._of_mean(self.orthogonal_variance, self.size) <= nu**2 * self.gradient_norm_sq

    def _size_for(self, variance: float, bound: float) -> float:
        """The smallest b with variance (1/b - 1/N) <= bound."""
        if variance == 0:
            return self.size
        if bound == 0:
            return math.inf
        return math.ceil(
            variance / (bound + (variance / self.population if self.population else 0))
        )

    def inner_size(self, theta: float) -> float:
        return self._size_for(self.inner_variance, theta**2 * self.inner_mean**2)

    def orthogonal_size(self, nu: float) -> float:
        if self.orthogonal_variance is None:
            return self.size
        return self._size_for(self.orthogonal_variance, nu**2 * self.gradient_norm_sq)

    def initial_step(self) -> float:
        """The line search's first trial 1 / (1 + Var(G_i^T v)(1/b - 1/N) / (g^T v)^2)."""
        variance = self._of_mean(self.inner_variance, self.size)
        if variance == 0:
            return 1.0
        if self.inner_mean == 0:
            return 0.0
        return 1.0 / (1.0 + variance / self.inner_mean**2)


def batch_statistics(
    per_sample: Tensor,
    direction: Tensor | None = None,
    orthogonality: bool = False,
    population: int | None = None,
) -> BatchStatistics:
    """The tests' statistics from per-sample gradients (rows) and a direction v (default: the
    mean gradient). Needs at least two samples."""
    size = per_sample.shape[0]
    if size < 2:
        raise InputError(f"the batch-size tests need at least 2 samples, got {size}")
    mean = per_sample.mean(0)
    v = mean if direction is None else direction
    inner = per_sample @ v
    orthogonal = None
    norm_sq = float(mean @ mean)
    if orthogonality:
        along = (per_sample @ mean) / norm_sq if norm_sq > 0 else torch.zeros_like(inner)
        residual = per_sample - along[:, None] * mean
        orthogonal = float(residual.pow(2).sum()) / (size - 1)
    inner_variance = float(inner.var(correction=1))
    return BatchStatistics(size, inner_variance, float(mean @ v), orthogonal, norm_sq, population)


class BatchSizeController:
    """Decides the next sample size from the statistics of the current one (see the module
    docstring). ``theta`` in (0, 1]; ``nu`` > 0 and ``orthogonality`` enable the second
    test; ``limit`` caps the size (the number of samples)."""

    def __init__(
        self,
        initial: int,
        limit: int,
        theta: float = 0.9,
        orthogonality: bool = False,
        nu: float = 5.84,
    ):
        if not isinstance(limit, int) or limit < 1:
            raise InputError(f"the data must hold at least one sample, got {limit!r}")
        if not isinstance(initial, int) or not 1 <= initial <= limit:
            raise InputError(
                f"initial batch size must be an integer in [1, {limit}], got {initial!r}"
            )
        if not (isinstance(theta, int | float) and 0 < theta <= 1):
            raise InputError(f"theta must be in (0, 1], got {theta!r}")
        if not (isinstance(nu, int | float) and nu > 0 and math.isfinite(nu)):
            raise InputError(f"nu must be a positive number, got {nu!r}")
        self.size, self.limit = initial, limit
        self.theta, self.orthogonality, self.nu = theta, orthogonality, nu
        self.history = [initial]

    def update(self, per_sample: Tensor, direction: Tensor | None = None) -> BatchStatistics:
        """Apply the tests to the current sample's per-sample gradients; grow ``size`` for the
        next sample if they fail. Returns the statistics."""
        stats = batch_statistics(per_sample, direction, self.orthogonality, self.limit)
        wanted = stats.size
        if not stats.inner_test_holds(self.theta):
            wanted = max(wanted, stats.inner_size(self.theta))
        if self.orthogonality and not stats.orthogonal_test_holds(self.nu):
            wanted = max(wanted, stats.orthogonal_size(self.nu))
        self.size = int(min(self.limit, max(self.size, wanted)))
        self.history.append(self.size)
        return stats


class ProgressiveSampler:
    """Samples of indices into a dataset of ``limit`` samples: each new sample keeps
    ``overlap`` of the previous one (at random, at most the new size) and fills up with samples
    drawn without replacement from the rest. ``overlap=1`` keeps the whole previous sample."""

    def __init__(self, limit: int, overlap: float = 0.25, generator: torch.Generator | None = None):
        if not (isinstance(overlap, int | float) and 0 <= overlap <= 1):
            raise InputError(f"overlap must be in [0, 1], got {overlap!r}")
        self.limit, self.overlap = limit, overlap
        self.generator = generator or torch.Generator().manual_seed(0)
        self.current = torch.empty(0, dtype=torch.int64)
        self.kept = torch.empty(0, dtype=torch.int64)
        self.kept_positions = torch.empty(0, dtype=torch.int64)

    def next(self, size: int) -> Tensor:
        """The next sample of ``size`` indices. It starts with ``kept``, the part shared with
        the previous sample (at ``kept_positions`` in it)."""
        size = min(size, self.limit)
        keep = min(size, math.ceil(self.overlap * self.current.numel()))
        order = torch.randperm(self.current.numel(), generator=self.generator)
        self.kept_positions = order[:keep]
        self.kept = self.current[self.kept_positions]
        free = torch.ones(self.limit, dtype=torch.bool)
        free[self.kept] = False
        pool = free.nonzero().view(-1)
        fresh = pool[torch.randperm(pool.numel(), generator=self.generator)[: size - keep]]
        self.current = torch.cat([self.kept, fresh])
        return self.current
