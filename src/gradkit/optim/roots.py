"""Matrix powers of symmetric PSD matrices in float64: (A + ridge * I)^exponent.

Shampoo's inverse roots and full-matrix AdaGrad both need them. Each matrix is symmetrized,
divided by its largest absolute entry (so matrices of scale 1e-300 or 1e300 decompose like
matrices of scale 1), decomposed by ``torch.linalg.eigh`` in float64, its eigenvalues clamped at 0
(rounding makes tiny ones negative) before the ridge is added and the power taken. A matrix that
is not finite or whose decomposition fails is reported, never returned as NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gradkit.checks import InputError


def _eigh(a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Batched eigh of finite symmetric matrices; (eigenvalues, eigenvectors, ok per matrix)."""
    try:
        values, vectors = torch.linalg.eigh(a)
        return values, vectors, torch.ones(a.shape[:-2], dtype=torch.bool, device=a.device)
    except torch.linalg.LinAlgError:
        if a.dim() == 2:
            eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
            return torch.ones_like(a[0]), eye, torch.zeros((), dtype=torch.bool, device=a.device)
    # one matrix of the batch failed: decompose them one at a time
    parts = [_eigh(m) for m in a.reshape(-1, *a.shape[-2:])]
    values, vectors, ok = (torch.stack(column) for column in zip(*parts, strict=True))
    batch = a.shape[:-2]
    return values.reshape(*batch, -1), vectors.reshape(a.shape), ok.reshape(batch)


def psd_eigh(matrices: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Eigen-decomposition of a batch ``[..., n, n]`` of symmetric PSD matrices, in float64.

    Returns ``(eigenvalues >= 0, eigenvectors, ok)``; ``ok`` is False for matrices that are not
    finite or whose decomposition failed (their eigenpairs are then meaningless placeholders).
    """
    a = matrices.to(torch.float64)
    if a.shape[-1] == 0:  # 0 x 0 matrices: nothing to decompose
        return (
            a.new_zeros(a.shape[:-1]),
            a,
            torch.ones(a.shape[:-2], dtype=torch.bool, device=a.device),
        )
    a = (a + a.mT) / 2
    finite = torch.isfinite(a).all(dim=-1).all(dim=-1)
    scale = a.abs().amax(dim=(-2, -1))
    usable = finite & (scale > 0)
    scale = torch.where(usable, scale, torch.ones_like(scale))
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    a = torch.where(finite[..., None, None], a / scale[..., None, None], eye)
    values, vectors, ok = _eigh(a)
    values = values.clamp(min=0) * scale[..., None]
    ok = ok & finite & torch.isfinite(values).all(dim=-1)
    return values, vectors, ok


def matrix_power(
    matrices: Tensor, exponent: float, ridge: float, *, relative: bool = False
) -> tuple[Tensor, Tensor]:
    r""":math:`(A + \epsilon I)^{p}` for each PSD matrix :math:`A` of a batch ``[..., n, n]``.

    :math:`\epsilon` is ``ridge`` (> 0), or ``ridge`` times the largest eigenvalue of :math:`A`
    when ``relative`` (then a zero matrix maps to :math:`\epsilon^{p}` times the identity, with
    :math:`\epsilon` = ``ridge``). Computed as :math:`V \operatorname{diag}((\max(\lambda, 0) +
    \epsilon)^{p}) V^\top` from a float64 ``eigh``.

    Returns ``(powers, ok)``: ``powers`` in float64, ``ok`` a bool per matrix, False where the
    input was not finite or the decomposition failed or the result is not finite. Entries of
    ``powers`` where ``ok`` is False are unspecified; callers keep their previous value there.
    """
    if not ridge > 0:
        raise InputError(f"ridge must be > 0, got {ridge!r}")
    values, vectors, ok = psd_eigh(matrices)
    floor = ridge
    if relative:
        top = values.amax(dim=-1, keepdim=True)
        floor = torch.where(top > 0, ridge * top, torch.full_like(top, ridge))
    powered = (values + floor).pow(exponent)
    result = (vectors * powered.unsqueeze(-2)) @ vectors.mT
    ok = ok & torch.isfinite(result).all(dim=-1).all(dim=-1)
    return result, ok
