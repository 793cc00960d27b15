"""Proximal operators of the regularisers r in min f(x) + r(x) (DAve-PG, proximal gradient).

prox_{t r}(v) = argmin_x r(x) + ||x - v||^2 / (2 t).
"""

from __future__ import annotations

import math

from torch import Tensor

from gradkit.checks import InputError


def soft_threshold(v: Tensor, threshold: float) -> Tensor:
    """prox of threshold x ||.||_1: sign(v) max(|v| - threshold, 0), elementwise."""
    if not (isinstance(threshold, int | float) and math.isfinite(threshold) and threshold >= 0):
        raise InputError(f"the threshold must be a number >= 0, got {threshold!r}")
    return v.sign() * (v.abs() - threshold).clamp_min(0)


def l1_prox(v: Tensor, step: float, l1: float) -> Tensor:
    """prox_{step r}(v) for r = l1 ||x||_1: soft-thresholding at step x l1."""
    if not (isinstance(l1, int | float) and math.isfinite(l1) and l1 >= 0):
        raise InputError(f"the l1 weight must be a number >= 0, got {l1!r}")
    return soft_threshold(v, step * l1)
