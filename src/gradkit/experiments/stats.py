"""Seed-paired comparisons with an interval derived from the spread over seeds.

Two methods run with the same seeds (same initialisation and data order per seed), so the
comparison is on per-seed differences d_s = a_s - b_s. The interval is the two-sided
Student-t confidence interval of their mean at ``level`` (90% by default), mean(d) +/-
t_{n-1} * sd(d) / sqrt(n). A decision is taken only when the whole interval is on one side;
otherwise it is undecided, and a claim built on it is inconclusive. So a margin of 0.005 is
never judged against a spread of 0.035, and one seed never decides anything.

A claim that looks again with more seeds when undecided (``RunContext.settle``) widens every
interval for the number of looks it may take (:func:`set_level`, or ``with confidence(level)``
for a block).

Non-finite values (diverged runs scored inf) enter as infinite differences: they pull the
interval's bound on their side to infinity, and an inf - inf pair makes the interval unbounded.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

from scipy import stats as scipy_stats

from gradkit.checks import InputError

LEVEL = 0.9
_level: ContextVar[float] = ContextVar("level", default=LEVEL)


def set_level(level: float) -> None:
    """Every interval computed from now on in this context is at ``level`` (a claim's run:
    :func:`gradkit.claims.reproduce.run_claim` gives each its own context)."""
    if not 0 < level < 1:
        raise InputError(f"a confidence level must be in (0, 1), got {level!r}")
    _level.set(level)


@contextmanager
def confidence(level: float) -> Iterator[None]:
    """Every interval computed inside (in this thread) is at ``level``."""
    token = _level.set(_level.get())
    try:
        set_level(level)
        yield
    finally:
        _level.reset(token)


class Decision(StrEnum):
    YES = "yes"
    NO = "no"
    UNDECIDED = "undecided"


@dataclass(frozen=True)
class PairedInterval:
    """Interval for the mean of per-seed differences a - b."""

    mean: float
    low: float
    high: float
    n: int
    level: float

    def __str__(self) -> str:
        return f"{self.mean:+.4g} [{self.low:+.4g}, {self.high:+.4g}] ({self.n} seeds)"


def paired_interval(
    a: Sequence[float], b: Sequence[float], level: float | None = None
) -> PairedInterval:
    """The ``level`` t-interval of mean(a_s - b_s) over seeds s (default: 90%, or the level of
    the enclosing :func:`confidence`)."""
    level = _level.get() if level is None else level
    if len(a) != len(b):
        raise InputError(
            f"paired comparison needs as many values on each side, got {len(a)} and {len(b)}"
        )
    if not a:
        raise InputError("paired comparison needs at least one seed")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    if any(math.isnan(d) for d in diffs):
        return PairedInterval(math.nan, -math.inf, math.inf, n, level)
    finite = [d for d in diffs if math.isfinite(d)]
    if len(finite) >= 2:
        center = statistics.fmean(finite)
        half = scipy_stats.t.ppf((1 + level) / 2, len(finite) - 1) * statistics.stdev(finite)
        low, high = center - half / math.sqrt(len(finite)), center + half / math.sqrt(len(finite))
    elif finite:  # one finite difference: no spread to judge it by
        low, high = -math.inf, math.inf
    else:
        low, high = min(diffs), max(diffs)
    if math.inf in diffs:
        high = math.inf
    if -math.inf in diffs:
        low = -math.inf
    mean = statistics.fmean(diffs) if math.inf not in diffs or -math.inf not in diffs else math.nan
    return PairedInterval(mean, low, high, n, level)


def common_seeds(a: Sequence[float], b: Sequence[float]) -> tuple[list[float], list[float]]:
    """``a`` and ``b`` cut to the seeds both ran, the first ``min(len(a), len(b))`` (e.g. a
    reported comparison with an outcome that settling gave more seeds)."""
    n = min(len(a), len(b))
    return list(a[:n]), list(b[:n])


def drop_censored(
    a: Sequence[float], b: Sequence[float], censored_at: float
) -> tuple[list[float], list[float]]:
    """Mark seeds where both values are censored (>= ``censored_at``, e.g. a budget + 1 standing
    for "target not reached") as NaN: their difference is unknown, so an interval over them is
    unbounded and decides nothing."""
    a2, b2 = list(a), list(b)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if min(x, y) >= censored_at:
            a2[i] = b2[i] = math.nan
    return a2, b2


def log_pair(
    a: Sequence[float], b: Sequence[float], censored_at: float
) -> tuple[list[float], list[float]]:
    """Logs of two positive counts per seed (iterations, steps), NaN where both are censored
    (see :func:`drop_censored`); counts below 1 are taken as 1."""
    a, b = drop_censored(a, b, censored_at)
    return [math.log(max(v, 1.0)) for v in a], [math.log(max(v, 1.0)) for v in b]


def logs(values: Sequence[float], floor: float = 0.0) -> list[float]:
    """log of each value, values at or below ``floor`` counted as ``floor`` (-inf for 0): e.g. a
    relative gap below float64 resolution, or a loss of exactly 0."""
    return [
        math.log(v) if v > floor else (math.log(floor) if floor > 0 else -math.inf) for v in values
    ]


def greater(interval: PairedInterval, margin: float = 0.0) -> Decision:
    """Is mean(a - b) > margin? YES if the whole interval is above it, NO if the whole interval
    is at or below it."""
    if interval.low > margin:
        return Decision.YES
    if interval.high <= margin:
        return Decision.NO
    return Decision.UNDECIDED


def less(interval: PairedInterval, margin: float = 0.0) -> Decision:
    """Is mean(a - b) < margin?"""
    if interval.high < margin:
        return Decision.YES
    if interval.low >= margin:
        return Decision.NO
    return Decision.UNDECIDED


def within(interval: PairedInterval, tolerance: float) -> Decision:
    """Equivalence: is |mean(a - b)| < tolerance? YES if the interval lies inside
    (-tolerance, tolerance) (two one-sided tests), NO if it lies entirely outside."""
    if -tolerance < interval.low and interval.high < tolerance:
        return Decision.YES
    if interval.low >= tolerance or interval.high <= -tolerance:
        return Decision.NO
    return Decision.UNDECIDED


def all_of(decisions: Sequence[Decision]) -> Decision:
    """YES if all are YES, NO if any is NO, else UNDECIDED."""
    if any(d == Decision.NO for d in decisions):
        return Decision.NO
    if all(d == Decision.YES for d in decisions):
        return Decision.YES
    return Decision.UNDECIDED


def any_of(decisions: Sequence[Decision]) -> Decision:
    """YES if any is YES, NO if all are NO, else UNDECIDED."""
    if any(d == Decision.YES for d in decisions):
        return Decision.YES
    if all(d == Decision.NO for d in decisions):
        return Decision.NO
    return Decision.UNDECIDED
