"""Interleaved timing: every candidate runs once per round, in a fresh random order, so drift on
a shared machine hits all candidates alike; the figure of merit is the median over rounds."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable


def interleaved_medians(
    candidates: dict[str, Callable[[], object]], rounds: int, warmup: int = 2, seed: int = 0
) -> dict[str, float]:
    """Median seconds of one call of each candidate."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    order = list(candidates)
    shuffle = random.Random(seed)
    for _ in range(rounds):
        shuffle.shuffle(order)
        for name in order:
            started = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}
