"""Imposed delay profiles d_n for asynchronous SGD (Zhou et al., ICML 2018): the gradient
applied at server update n is the one of iterate n - d_n (0 <= d_n <= n - 1).

- ``none``:     d_n = 0;
- ``bounded``:  d_n = min(D, n - 1);
- ``power``:    d_n = floor(n^p), 0 < p < 1 (clipped to n - 1);
- ``linear``:   d_n = floor(f n), 0 < f < 1.

:func:`delayed_sgd` runs x_{n+1} = x_n - alpha_n g(x_{n - d_n}) exactly, keeping the iterates
a delay can still reach in a ring buffer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from gradkit.checks import InputError

KINDS = ("none", "bounded", "power", "linear")


@dataclass(frozen=True)
class DelayProfile:
    """``kind`` of :data:`KINDS` with its ``value`` (D, p or f; unused for ``none``)."""

    kind: str
    value: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown delay profile {self.kind!r}; choose from {', '.join(KINDS)}")
        v = self.value
        valid = {
            "none": True,
            "bounded": isinstance(v, int | float) and v >= 0 and float(v).is_integer(),
            "power": isinstance(v, int | float) and 0 < v < 1,
            "linear": isinstance(v, int | float) and 0 < v < 1,
        }[self.kind]
        if not valid:
            allowed = {
                "bounded": "an integer D >= 0",
                "power": "p in (0, 1)",
                "linear": "f in (0, 1)",
            }
            raise InputError(f"a {self.kind} delay needs {allowed[self.kind]}, got {v!r}")

    @classmethod
    def parse(cls, text: str) -> DelayProfile:
        """``none``, ``bounded:D``, ``power:p`` or ``linear:f``."""
        kind, _, value = text.partition(":")
        if kind != "none" and not value:
            raise InputError(
                f"delay profile {text!r} needs a value: none, bounded:D, power:p or linear:f"
            )
        try:
            number = float(value) if value else 0.0
        except ValueError:
            raise InputError(f"delay profile {text!r}: {value!r} is not a number") from None
        return cls(kind, number)

    def __call__(self, n: int) -> int:
        """d_n for server update n >= 1."""
        if self.kind == "none":
            return 0
        if self.kind == "bounded":
            delay = int(self.value)
        elif self.kind == "power":
            delay = math.floor(n**self.value)
        else:
            delay = math.floor(self.value * n)
        return min(delay, n - 1)

    @property
    def exponent(self) -> float:
        """p with d_n = O(n^p): 0 for bounded delays, 1 for linear ones."""
        return {"none": 0.0, "bounded": 0.0, "power": self.value, "linear": 1.0}[self.kind]

    def describe(self) -> str:
        return {
            "none": "no delay",
            "bounded": f"d_n = {int(self.value)}",
            "power": f"d_n = floor(n^{self.value:g})",
            "linear": f"d_n = floor({self.value:g} n)",
        }[self.kind]

    def reach(self, updates: int) -> int:
        """The largest d_n for n <= ``updates`` (every profile is non-decreasing in n): the
        ring buffer holds that many past iterates besides the current one."""
        return self(updates)


def delayed_sgd(
    gradient: Callable[[Tensor, int], Tensor],
    start: Tensor,
    step: Callable[[int], float],
    delays: DelayProfile,
    updates: int,
    record: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """x_{n+1} = x_n - step(n) gradient(x_{n - d_n}, n) for n = 1..``updates`` from x_1 =
    ``start`` (``gradient`` may be stochastic; ``n`` lets it draw its noise). ``record(n, x_n)``
    sees every iterate, x_1 included (and must not change it in place). Returns
    x_{updates + 1}. ``start`` may hold a batch of independent runs (rows) with ``step(n)`` a
    column of their steps."""
    if not isinstance(updates, int) or updates < 0:
        raise InputError(f"updates must be an integer >= 0, got {updates!r}")
    size = delays.reach(max(updates, 1)) + 1
    ring: list[Tensor | None] = [None] * size  # x_n is never changed in place: keep references
    x = start.clone()
    for n in range(1, updates + 1):
        ring[n % size] = x
        if record is not None:
            record(n, x)
        read = n - delays(n)
        x = x - step(n) * gradient(ring[read % size], n)
    if record is not None:
        record(updates + 1, x)
    return x
