"""Run kind of DDG's speed: real 2-process epochs against backpropagation on this machine, and
the simulated speed-up of 2, 4 and 8 stages from measured stage costs
(:mod:`gradkit.bench.pipeline`)."""

from __future__ import annotations

import math
import statistics
import time

from gradkit.bench.pipeline import simulated_speedups, time_pipeline
from gradkit.experiments.runs import RunRecord, run_kind


@run_kind(timed=True)
def ddg_speed_run(rounds: int, seed: int = 0) -> RunRecord:
    """``rounds`` interleaved rounds of a backpropagation epoch (1 and 2 threads) and a DDG
    epoch on 2 processes (1 thread each), then simulated speed-ups (``seed`` only names the
    repeat). Metrics: median epoch seconds ``backprop_1_thread``, ``backprop_2_threads``,
    ``ddg_2_processes``; ``simulated_speedup_K`` for K = 2, 4, 8. Extra: per-round times."""
    started = time.perf_counter()
    times = time_pipeline(2, rounds)
    speedups = simulated_speedups()
    metrics = {
        "backprop_1_thread": statistics.median(times["bp1"]),
        "backprop_2_threads": statistics.median(times["bpk"]),
        "ddg_2_processes": statistics.median(times["ddg"]),
        **{f"simulated_speedup_{k}": s for k, s in speedups.items()},
    }
    diverged = not all(math.isfinite(v) for v in metrics.values())
    return RunRecord(metrics, {}, diverged, time.perf_counter() - started, {"rounds": times})
