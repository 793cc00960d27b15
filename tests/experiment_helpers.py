"""Run functions for the experiment-layer tests (importable by spawned worker processes)."""

from __future__ import annotations

import math
import os
import random

from gradkit.experiments import RunRecord, run_kind


@run_kind
def toy_run(
    lr: float,
    budget: int,
    optimum: float = 1e-2,
    diverge_above: float = math.inf,
    seed: int = 0,
    diverging_seed: int | None = None,
    favour_large: float = 0.0,
    shift: float = 0.0,
    noise: float = 0.0,
    salt: int = 0,
    plateau_below: float = 0.0,
):
    """A 'training run' whose final loss is (log10 lr - log10 o)^2 + 1/budget + ``shift``, plus
    ``noise`` times a standard normal drawn from (seed, salt); rates above ``diverge_above``
    diverge (on ``diverging_seed`` only, when one is given). Short budgets favour large rates
    by ``favour_large``: o = optimum 10^(favour_large / budget). Rates below ``plateau_below``
    all score 5 (like runs that never reach a target)."""
    shifted = math.log10(optimum) + favour_large / budget
    loss = (math.log10(lr) - shifted) ** 2 + 1 / budget + shift
    loss += noise * random.Random(f"{seed}:{salt}").gauss(0.0, 1.0)
    if lr < plateau_below:
        loss = 5.0
    diverged = lr > diverge_above and diverging_seed in (None, seed)
    return RunRecord({"loss": loss, "pid": float(os.getpid())}, diverged=diverged)


@run_kind
def failing_run(message: str) -> RunRecord:
    raise ValueError(message)


@run_kind
def toy_count_run(lr: float, budget: int, reach_at: float = 0.5, fast: float = 800.0):
    """A count to a target: a rate reaches it after fast * 10^(3 (log10 lr - log10 reach_at)^2)
    iterations if that is within ``budget`` (else the count is budget + 1); the tie-break, its
    final gap, is smaller for smaller rates, so on a budget that no rate reaches the gaps rank
    the small rates first."""
    needed = fast * 10 ** (3 * (math.log10(lr) - math.log10(reach_at)) ** 2)
    count = needed if needed <= budget else budget + 1
    return RunRecord({"count": float(count), "gap": min(lr, 0.999)})
