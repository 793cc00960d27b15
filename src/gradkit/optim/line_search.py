r"""Backtracking (Armijo) line search on a fixed sample, with the variance-based first trial of
progressive-batching L-BFGS (Bollapragada et al., ICML 2018; computed by
:meth:`gradkit.optim.batch_size.BatchStatistics.initial_step`). Usable with any descent
direction.

For a sample objective F_S, a point x, a direction p with F_S'(x; p) = g^T p < 0:

.. math::
    \alpha_0 = \Big(1 + \frac{\mathrm{Var}_i(G_i^T v)}{|S|\,(g^T v)^2}\Big)^{-1}, \qquad
    \alpha \leftarrow \tau\alpha \text{ until } F_S(x + \alpha p) \le F_S(x) + c_1 \alpha\, g^T p

(v = -p for a quasi-Newton direction p = -Hg). Every trial evaluates F_S on the *same* sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gradkit.checks import InputError


@dataclass(frozen=True)
class LineSearchResult:
    step: float  # the accepted alpha (0.0 if none was)
    value: float  # F_S(x + alpha p) (F_S(x) if none was accepted)
    trials: int  # evaluations of F_S made
    accepted: bool


def armijo_backtracking(
    value_at: Callable[[float], float],
    value: float,
    slope: float,
    initial: float = 1.0,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_trials: int = 30,
) -> LineSearchResult:
    """Shrink alpha from ``initial`` by ``shrink`` until value_at(alpha) <= value + c1 alpha
    slope, at most ``max_trials`` evaluations. ``slope`` = g^T p must be negative."""
    if not slope < 0:
        raise InputError(f"the direction is not a descent direction: g^T p = {slope!r}")
    if not 0 < c1 < 1:
        raise InputError(f"c1 must be in (0, 1), got {c1!r}")
    if not 0 < shrink < 1:
        raise InputError(f"shrink must be in (0, 1), got {shrink!r}")
    alpha = initial
    for trial in range(1, max_trials + 1):
        trial_value = value_at(alpha)
        if trial_value <= value + c1 * alpha * slope:
            return LineSearchResult(alpha, trial_value, trial, True)
        alpha *= shrink
    return LineSearchResult(0.0, value, max_trials, False)
