"""Compression of a trained network's layers (Arora, Ge, Neyshabur & Zhang, ICML 2018) and the
effective parameter count it implies.

- Matrix-Project(A, k): Â = (1/k) sum_{l=1..k} <A, M_l> M_l with M_l i.i.d. random sign matrices
  from a seeded generator (regenerated, never stored): E[Â] = A, and Var(Â_ij) = (||A||_F^2 -
  A_ij^2) / k. Storing Â costs k numbers and the seed.
- Truncated SVD at rank r: r (m + n + 1) numbers.

A layer's weight is read as a matrix (out, everything else). The paper draws a convolution's
projections with k-wise independence; here every sign is independent.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gradkit.analysis.stability import PROBED
from gradkit.checks import InputError

METHODS = ("project", "svd")
_CHUNK_ENTRIES = 1 << 22  # sign entries drawn at once


def matrix_project(weight: Tensor, k: int, seed: int = 0) -> Tensor:
    """Matrix-Project of ``weight`` with ``k`` sign matrices drawn from ``seed``, in float64 on
    the CPU, returned in the weight's dtype and device."""
    if not (isinstance(k, int) and k >= 1):
        raise InputError(f"k must be a positive integer, got {k!r}")
    a = weight.detach().reshape(-1).double().cpu()
    generator = torch.Generator().manual_seed(seed)
    chunk = max(1, _CHUNK_ENTRIES // a.numel())
    estimate = torch.zeros_like(a)
    for start in range(0, k, chunk):
        rows = min(chunk, k - start)
        signs = torch.randint(0, 2, (rows, a.numel()), generator=generator).double().mul_(2).sub_(1)
        estimate += (signs @ a) @ signs
    return (estimate / k).reshape(weight.shape).to(weight.dtype).to(weight.device)


def svd_truncate(weight: Tensor, rank: int) -> Tensor:
    """The best rank-``rank`` approximation of ``weight`` read as a matrix, in float64."""
    if not (isinstance(rank, int) and rank >= 1):
        raise InputError(f"rank must be a positive integer, got {rank!r}")
    matrix = weight.detach().reshape(weight.shape[0], -1).double()
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    r = min(rank, s.numel())
    approx = (u[:, :r] * s[:r]) @ vh[:r]
    return approx.reshape(weight.shape).to(weight.dtype)


def compressed_parameters(weight: Tensor, method: str, size: int) -> int:
    """Numbers stored for one layer's weight: k for Matrix-Project (plus a seed, not counted),
    r (m + n + 1) for a rank-r SVD; never more than the weight itself."""
    m = weight.shape[0]
    n = weight[0].numel()
    stored = size if method == "project" else min(size, m, n) * (m + n + 1)
    return min(stored, weight.numel())


def compress(model: nn.Module, method: str, size: int, seed: int = 0) -> tuple[nn.Module, int]:
    """A copy of ``model`` with every Linear/Conv weight compressed (``method`` "project" with k
    = ``size`` projections, or "svd" at rank ``size``; a layer with no more entries than that is
    kept) and the effective parameter count: the compressed weights' numbers plus every other
    parameter (biases included)."""
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    compressed = copy.deepcopy(model)
    count = 0
    with torch.no_grad():
        for index, module in enumerate(m for m in compressed.modules() if isinstance(m, PROBED)):
            w = module.weight
            if compressed_parameters(w, method, size) < w.numel():
                approx = (
                    matrix_project(w, size, seed + index)
                    if method == "project"
                    else svd_truncate(w, size)
                )
                w.copy_(approx)
            count += compressed_parameters(w, method, size)
        weights = {id(m.weight) for m in compressed.modules() if isinstance(m, PROBED)}
        count += sum(p.numel() for p in compressed.parameters() if id(p) not in weights)
    return compressed, count


@dataclass
class CompressionResult:
    """The smallest size on the grid whose compressed model keeps the metric within tolerance."""

    method: str
    baseline: float  # the metric of the uncompressed model
    size: int | None  # None: no size on the grid was good enough
    effective_parameters: int | None
    parameters: int  # of the uncompressed model
    curve: list[tuple[int, int, float]]  # (size, effective parameters, metric) tried

    def summary(self) -> str:
        if self.size is None:
            return f"{self.method}: no size tried keeps the metric (baseline {self.baseline:.4g})"
        return (
            f"{self.method}: size {self.size} keeps the metric ({self.curve[-1][2]:.4g} vs "
            f"{self.baseline:.4g}) with {self.effective_parameters} of {self.parameters} "
            "parameters"
        )


def smallest_compression(
    model: nn.Module,
    metric: Callable[[nn.Module], float],
    method: str,
    sizes: Sequence[int],
    tolerance: float,
    seed: int = 0,
) -> CompressionResult:
    """Try ``sizes`` in increasing order and stop at the first whose compressed model's
    ``metric`` (higher is better, e.g. train accuracy) is at least the model's minus
    ``tolerance``."""
    if not sizes or any(not (isinstance(s, int) and s >= 1) for s in sizes):
        raise InputError(f"sizes must be positive integers, got {list(sizes)!r}")
    baseline = metric(model)
    parameters = sum(p.numel() for p in model.parameters())
    curve = []
    for size in sorted(sizes):
        compressed, count = compress(model, method, size, seed)
        value = metric(compressed)
        curve.append((size, count, value))
        if value >= baseline - tolerance:
            return CompressionResult(method, baseline, size, count, parameters, curve)
    return CompressionResult(method, baseline, None, None, parameters, curve)
