"""Claim: gradient descent started at a strict saddle stays there; perturbed gradient descent
escapes (the notes: "perturbed SGD can escape saddle points", from Jin et al., ICML 2017).

Judged: GD never leaves the saddle, PGD leaves it in every run. Reported, not judged (beyond the
notes: the paper's): the escape time's growth with the dimension (polylogarithmic in the
paper), as the ratio of the median at the largest dimension to that at the smallest and the
slope per unit of ln d against the predicted one."""

from __future__ import annotations

import math
import statistics

import numpy as np
from matplotlib.figure import Figure

from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.experiments import RunSpec
from gradkit.experiments.kinds import saddle_escape_run

DIMENSIONS = (10, 100, 1000, 10000)
ELL = 2.0  # the gradient's Lipschitz constant near the minima (f'' = 3 x_1^2 - 1 = 2 at x_1 = 1)
LR = 0.5 / ELL  # the reference's eta = 0.5 / ell
RADIUS, THRESHOLD, INTERVAL = 1e-3, 1e-3, 10
PREDICTED_SLOPE = 0.5 / math.log(1 + LR)
"""Iterations per unit of ln d: the perturbation puts about r / sqrt(d) along the escape
direction, which GD then grows by (1 + lr |lambda_1|) per step."""


def decide(gd: dict[int, list[float]], pgd: dict[int, list[float]], budget: int):
    """``gd[d]``, ``pgd[d]``: escape iterations per seed (budget + 1 = never). Holds if GD never
    escapes and PGD escapes in every run; does not hold if GD escapes; inconclusive if some
    PGD run did not escape within the budget (the reason names how many)."""
    if any(v <= budget for values in gd.values() for v in values):
        return Verdict.DOES_NOT_HOLD, "gradient descent left the saddle"
    stayed = sum(v > budget for values in pgd.values() for v in values)
    if stayed:
        runs = sum(len(values) for values in pgd.values())
        return (
            Verdict.INCONCLUSIVE,
            f"{stayed} of {runs} perturbed runs did not escape within {budget} iterations",
        )
    return Verdict.HOLDS, "gradient descent stayed, perturbed GD escaped in every run"


def growth(pgd: dict[int, list[float]], budget: int) -> str:
    """Reported, not judged: the median escape time at the largest dimension over that at the
    smallest (medians past the budget are not escapes: then there is no ratio)."""
    low, high = min(pgd), max(pgd)
    first, last = statistics.median(pgd[low]), statistics.median(pgd[high])
    if max(first, last) > budget:
        return f"no growth ratio: a median run did not escape within {budget} iterations"
    return (
        f"escape time grew {last / first:.2f}x from d={low} to d={high} (the paper: "
        f"polylogarithmic in d; growth like sqrt(d) would give {math.sqrt(high / low):.0f}x)"
    )


def spec(dimension: int, seed: int, method: str, iterations: int) -> RunSpec:
    return RunSpec.of(
        saddle_escape_run, dimension=dimension, seed=seed, method=method, lr=LR,
        iterations=iterations, radius=RADIUS, threshold=THRESHOLD, interval=INTERVAL,
    )  # fmt: skip


def run(ctx: RunContext) -> ClaimResult:
    budget = ctx.pick(1000, 3000, smoke=200)
    seeds = list(range(ctx.pick(10, 20, smoke=2)))
    dims = DIMENSIONS[:2] if ctx.scale == "smoke" else DIMENSIONS
    specs = [spec(d, s, "pgd", budget) for d in dims for s in seeds]
    specs += [spec(d, 0, "gd", budget) for d in dims]  # deterministic: one run per dimension
    records = ctx.executor.run(specs)
    pgd_records = {d: records[i * len(seeds) : (i + 1) * len(seeds)] for i, d in enumerate(dims)}
    gd_records = dict(zip(dims, records[len(dims) * len(seeds) :], strict=True))
    pgd = {d: [r.metric("escape_iteration") for r in rs] for d, rs in pgd_records.items()}
    gd = {d: [r.metric("escape_iteration")] for d, r in gd_records.items()}
    verdict, reason = decide(gd, pgd, budget)
    dependence = growth(pgd, budget)
    gd_escaped = "escaped" if any(v[0] <= budget for v in gd.values()) else "never escaped"
    medians = [statistics.median(pgd[d]) for d in dims]
    logs = np.log(dims)
    slope = float(np.polyfit(logs, medians, 1)[0])
    summary = (
        f"f = sum lambda_i x_i^2 / 2 + x_1^4 / 4 from the saddle x = 0, lr {LR:g}, {budget} "
        f"iterations; iterations until f <= f(0) - 0.1. Gradient descent: {gd_escaped}. "
        f"Perturbed GD (radius {RADIUS:g}, threshold {THRESHOLD:g}, interval {INTERVAL}), "
        f"median of {len(seeds)} seeds: "
        + ", ".join(f"d={d}: {m:g}" for d, m in zip(dims, medians, strict=True))
        + f". {reason[0].upper()}{reason[1:]}. Reported, not judged (the paper's, not the "
        f"notes'): {dependence}; slope {slope:.2f} iterations per unit of ln d (predicted "
        f"{PREDICTED_SLOPE:.2f})."
    )
    table = [
        {"dimension": d, "GD escape": "never" if gd[d][0] > budget else f"{gd[d][0]:g}",
         "PGD escape (median)": f"{m:g}", "PGD min-max": f"{min(pgd[d]):g}-{max(pgd[d]):g}",
         "PGD escaped": f"{sum(v <= budget for v in pgd[d])}/{len(seeds)}"}
        for d, m in zip(dims, medians, strict=True)
    ]  # fmt: skip
    numbers = {"budget": budget, "lr": LR, "radius": RADIUS, "pgd_escape": pgd, "gd_escape": gd,
               "slope_per_ln_d": slope, "predicted_slope": PREDICTED_SLOPE,
               "reported_dimension_dependence": dependence}  # fmt: skip
    fig = Figure(figsize=(10, 4), layout="tight")
    left, right = fig.subplots(1, 2)
    left.plot(dims, medians, "o-", label="perturbed GD, median")
    left.fill_between(dims, [min(pgd[d]) for d in dims], [max(pgd[d]) for d in dims], alpha=0.2)
    left.plot(dims, medians[0] + PREDICTED_SLOPE * (logs - logs[0]), "k--",
              label="predicted growth (r / sqrt(d) along x_1)")  # fmt: skip
    left.set(xscale="log", xlabel="dimension d", ylabel="iterations to f <= f(0) - 0.1", ylim=0)
    left.set_title(f"gradient descent {gd_escaped}", fontsize=9)
    left.legend(fontsize=7)
    for d in (dims[0], dims[-1]):
        right.plot(*pgd_records[d][0].curve("objective"), label=f"perturbed GD, d={d}")
    right.plot(*gd_records[dims[-1]].curve("objective"), "k:", label="gradient descent")
    right.set(xlabel="iteration", ylabel="f", xlim=(0, 4 * max(medians)))
    right.legend(fontsize=7)
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="perturbation-escapes-saddles",
    notes="perturbed SGD can escape saddle points",
    statement="Gradient descent started at a strict saddle point stays there; perturbed gradient "
    "descent escapes.",
    source="Jin, Ge, Netrapalli, Kakade & Jordan, How to Escape Saddle Points Efficiently, "
    "ICML 2017 (arXiv 1703.00887)",
    criterion="f(x) = 1/2 sum lambda_i x_i^2 + x_1^4 / 4 (lambda_1 = -1, the others 1) from "
    f"x = 0, in float64, d in {{10, 100, 1000, 10000}}; gradient descent and gradkit's "
    f"PerturbedGD at lr {LR:g} (0.5 / ell), radius {RADIUS:g}, threshold {THRESHOLD:g}, interval "
    f"{INTERVAL}; escape = the first iteration with f <= f(0) - 0.1 within 1000 iterations "
    "(3000 full); 10 seeds (20 full). Not a tuned comparison: the notes' claim is that "
    "perturbation lets GD leave a saddle, so GD is the baseline. Holds if GD never escapes and "
    "PGD escapes in every run; does not hold if GD escapes; inconclusive if a perturbed run "
    "does not escape within the budget. Reported, not judged (beyond the notes: the paper's "
    "polylogarithmic dependence on d): the median escape time at d = 10000 over that at "
    "d = 10, and the slope per unit of ln d.",
    run=run,
)
