r"""The L-BFGS memory: the last m curvature pairs (s, y) and the two-loop recursion.

With pairs (s_j, y_j), rho_j = 1 / (y_j^T s_j) and H_0 = gamma I, gamma = s^T y / y^T y of the
newest pair (1 without pairs), the two-loop recursion returns H g for the BFGS inverse-Hessian
approximation H = V_{k}^T ... (V_{j}^T H_0 V_{j} + rho_j s_j s_j^T) ..., V_j = I - rho_j y_j s_j^T.

A pair is accepted when y^T s > eps ||s||^2; with ``damping`` a failing pair is first Powell
damped, y <- phi y + (1 - phi) B s with B s = s / gamma (the initial matrix's inverse), phi the
largest value in [0, 1] that gives y^T s >= eps ||s||^2 (Nocedal & Wright, 18.2, with B_0 only);
otherwise it is skipped.
"""

from __future__ import annotations

from collections import deque

from torch import Tensor

from gradkit.checks import InputError


class LBFGSMemory:
    def __init__(self, history: int = 10, eps: float = 1e-6, damping: bool = False):
        if not isinstance(history, int) or history < 1:
            raise InputError(f"history must be a positive integer, got {history!r}")
        if not eps >= 0:
            raise InputError(f"the curvature threshold must be >= 0, got {eps!r}")
        self.history, self.eps, self.damping = history, eps, damping
        self.pairs: deque[tuple[Tensor, Tensor]] = deque(maxlen=history)
        self.skipped = 0
        self.damped = 0

    @property
    def gamma(self) -> float:
        if not self.pairs:
            return 1.0
        s, y = self.pairs[-1]
        return float(s @ y) / float(y @ y)

    def add(self, s: Tensor, y: Tensor) -> bool:
        """Store (s, y) if it passes the curvature test (after damping, if enabled); True if
        stored."""
        norm_sq = float(s @ s)
        threshold, curvature = self.eps * norm_sq, float(y @ s)
        if not norm_sq > 0 or (curvature <= threshold and not self.damping):
            self.skipped += 1
            return False
        if curvature <= threshold:
            bs = s / self.gamma
            sbs = float(s @ bs)
            phi = min(1.0, max(0.0, (sbs - threshold) / (sbs - curvature)))  # y_phi^T s = thr
            y = phi * y + (1 - phi) * bs
            if not float(y @ s) > 0:
                self.skipped += 1
                return False
            self.damped += 1
        self.pairs.append((s.clone(), y.clone()))
        return True

    def clear(self) -> None:
        self.pairs.clear()

    def apply(self, g: Tensor) -> Tensor:
        """H g by the two-loop recursion."""
        q = g.clone()
        alphas = []
        for s, y in reversed(self.pairs):
            alpha = float(s @ q) / float(y @ s)
            q.sub_(y, alpha=alpha)
            alphas.append(alpha)
        q.mul_(self.gamma)
        for (s, y), alpha in zip(self.pairs, reversed(alphas), strict=True):
            beta = float(y @ q) / float(y @ s)
            q.add_(s, alpha=alpha - beta)
        return q
