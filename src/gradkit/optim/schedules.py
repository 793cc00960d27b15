"""Step-size schedules for stale gradients (Zhou et al., ICML 2018), as pure functions of the
update count n = 1, 2, ..., and as an ``LRScheduler`` for any torch optimizer.

Every schedule is scaled so that its first step is ``c`` (alpha_1 = c):

- constant:     alpha_n = c;
- polynomial:   alpha_n = c n^(-q);
- quasilinear:  alpha_n = c h(n0) / h(n + n0 - 1), h(m) = m log m log log m, started at
  m = n0 = 16 (log log m > 0 from m = 16 on).

Asynchronous SGD x_{n+1} = x_n - alpha_n g(x_{n - d_n}) converges on variationally coherent
problems under the sufficient conditions (the standard argument; the reference's form)
sum alpha_n = inf, sum alpha_n^2 < inf and the delay drift sum_n alpha_n sum_{k=n-d_n}^{n-1}
alpha_k < inf, roughly sum alpha_n^2 d_n < inf. For delays d_n = O(n^p), 0 <= p <= 1, that is:
the polynomial schedule with (1 + p)/2 < q <= 1; the quasilinear one for every p <= 1 (sum
alpha_n diverges like log log log n, sum n alpha_n^2 converges); the constant one never.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from gradkit.checks import InputError

QUASILINEAR_START = 16
KINDS = ("constant", "polynomial", "quasilinear")


def _check_count(n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise InputError(f"the update count n starts at 1, got {n!r}")


def constant(n: int, c: float = 1.0) -> float:
    """alpha_n = c."""
    _check_count(n)
    return c


def polynomial(n: int, c: float = 1.0, q: float = 1.0) -> float:
    """alpha_n = c n^(-q)."""
    _check_count(n)
    return c * n ** (-q)


def _h(m: float) -> float:
    return m * math.log(m) * math.log(math.log(m))


def quasilinear(n: int, c: float = 1.0, start: int = QUASILINEAR_START) -> float:
    """alpha_n = c h(start) / h(n + start - 1), h(m) = m log m log log m."""
    _check_count(n)
    return c * _h(start) / _h(n + start - 1)


@dataclass(frozen=True)
class Schedule:
    """A schedule of :data:`KINDS` with first step ``c`` (and exponent ``q`` for the polynomial
    one); ``schedule(n)`` is alpha_n."""

    kind: str
    c: float = 1.0
    q: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown schedule {self.kind!r}; choose from {', '.join(KINDS)}")
        if not (math.isfinite(self.c) and self.c > 0):
            raise InputError(f"the first step c must be a positive number, got {self.c!r}")
        if self.kind == "polynomial" and not (math.isfinite(self.q) and self.q > 0):
            raise InputError(f"the exponent q must be a positive number, got {self.q!r}")

    def __call__(self, n: int) -> float:
        if self.kind == "constant":
            return constant(n, self.c)
        if self.kind == "polynomial":
            return polynomial(n, self.c, self.q)
        return quasilinear(n, self.c)

    def describe(self) -> str:
        shape = {
            "constant": "c",
            "polynomial": f"c n^-{self.q:g}",
            "quasilinear": "c h(16)/h(n+15)",
        }
        return f"{self.kind} ({shape[self.kind]}, c = {self.c:g})"

    def satisfies(self, delay_exponent: float) -> bool:
        """Whether the sufficient conditions hold for delays d_n = O(n^p), p =
        ``delay_exponent`` in [0, 1] (0: bounded delays, 1: linear ones)."""
        return self.why(delay_exponent)[0]

    def why(self, delay_exponent: float) -> tuple[bool, str]:
        """(:meth:`satisfies`, the reason in one sentence)."""
        p = delay_exponent
        if not (isinstance(p, int | float) and 0 <= p <= 1):
            raise InputError(f"the delay exponent p must lie in [0, 1] (d_n <= n), got {p!r}")
        if self.kind == "constant":
            return False, "a constant step has sum alpha_n^2 = inf"
        if self.kind == "quasilinear":
            return True, "sum alpha_n diverges and sum n alpha_n^2 converges, so every p <= 1"
        if self.q > 1:
            return False, f"q = {self.q:g} > 1 makes sum alpha_n finite"
        bound = (1 + p) / 2
        if self.q > bound:
            return True, f"(1 + p)/2 = {bound:g} < q = {self.q:g} <= 1"
        return False, f"q = {self.q:g} <= (1 + p)/2 = {bound:g}: sum alpha_n^2 d_n diverges"


class ScheduleLR(LRScheduler):
    """Sets every parameter group's rate to base_lr x schedule(n) / schedule(1) at update n
    (n = 1 before the first ``step()`` of the scheduler), so the optimizer's ``lr`` is the
    first step and the schedule gives the shape."""

    def __init__(self, optimizer: Optimizer, schedule: Schedule, last_epoch: int = -1) -> None:
        self.schedule = schedule
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        factor = self.schedule(self.last_epoch + 1) / self.schedule(1)
        return [base * factor for base in self.base_lrs]
