"""Claim: sign descent gains over SGD when the curvature is axis-aligned, not when rotated."""

from __future__ import annotations

import math
import statistics

from gradkit.claims import base
from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.experiments import Budget, LrRange, Method, Metric, noisy_quadratic
from gradkit.experiments import stats as st
from gradkit.report.figures import Panel, curves_figure

NOISES = (0.2, 1.0, 5.0)  # gradient noise scale: low, moderate, high
TARGET = 0.01
"""The target is f(x) <= 1% of f(x_0): reached by every method at its tuned rate at every noise
level, so the comparison is of speed, not of noise floors."""
PROBLEMS = {
    f"{geometry}, noise {noise:g}": noisy_quadratic(geometry == "rotated", noise, TARGET)
    for noise in NOISES
    for geometry in ("axis-aligned", "rotated")
}
PAIRS = (("signsgd", "sgd"), ("signum", "msgd"))  # (sign method, its non-sign twin)
METHODS = (
    Method("signsgd", "signSGD", LrRange(1e-3, 1e-1)),
    Method("sgd", "SGD", LrRange(1e-3, 1e-1)),
    Method("signum", "Signum", LrRange(1e-3, 1e-1)),
    Method("msgd", "SGD+momentum", LrRange(1e-3, 1e-1)),
)
LABELS = base.labels_of(METHODS)
BUDGET = Budget(
    smoke=20,
    quick=2000,
    full=10000,
    paper="the theory's noisy quadratics (Balles & Hennig, Sec. 4); no step budget",
    why="2000 batch-1 steps let every method reach 1% of f(x_0) at its tuned rate.",
    unit="steps",
)
TUNE_ON = Metric("steps_to_target", tie_break="final_fraction")


def log_ratios(steps: dict[str, dict[str, list[float]]], sign: str, plain: str, budget: int):
    """Per problem, per seed, log(sign method's steps to target / its twin's); NaN where neither
    reached the target within ``budget`` (the ratio is unknown)."""
    return {
        p: [a - b for a, b in zip(*st.log_pair(per[sign], per[plain], budget + 1), strict=True)]
        for p, per in steps.items()
    }


def decide(
    steps: dict[str, dict[str, list[float]]], budget: int
) -> tuple[Verdict, dict[str, dict]]:
    """signSGD against SGD, at each noise level, with per-seed log step ratios r (< 0: the sign
    is faster). (i) the sign gains when axis-aligned: the 90% t-interval of r_axis lies below 0;
    (ii) it loses that gain when rotated: the interval of r_rotated - r_axis (same seed: same
    eigenvalues, the rotation differs) lies above 0. Holds if (ii) is YES at every noise level
    and (i) at some; does not hold if (ii) is NO at some noise level; inconclusive otherwise.
    Seeds where neither method reached the target decide nothing. Signum against momentum SGD
    is reported alongside."""
    r = log_ratios(steps, "signsgd", "sgd", budget)
    decisions = {}
    for noise in NOISES:
        axis, rotated = r[f"axis-aligned, noise {noise:g}"], r[f"rotated, noise {noise:g}"]
        decisions[f"noise {noise:g}"] = {
            "sign_gains_axis_aligned": st.less(st.paired_interval(axis, [0.0] * len(axis))),
            "gain_shrinks_when_rotated": st.greater(st.paired_interval(rotated, axis)),
        }
    shrinks = [d["gain_shrinks_when_rotated"] for d in decisions.values()]
    gains = [d["sign_gains_axis_aligned"] for d in decisions.values()]
    verdict = base.verdict_from([*shrinks, st.any_of(gains)], fails_on=shrinks)
    return verdict, {n: {k: v.value for k, v in d.items()} for n, d in decisions.items()}


def run(ctx: RunContext) -> ClaimResult:
    budget = BUDGET.at(ctx.scale)
    outcomes = ctx.compare(PROBLEMS, METHODS, budget, TUNE_ON)
    ctx.settle(outcomes, lambda o: decide(base.per_seed(o, "steps_to_target"), budget)[0])
    steps = base.per_seed(outcomes, "steps_to_target")
    verdict, decisions = decide(steps, budget)
    ratios = {
        f"{sign}/{plain}": {
            p: math.exp(statistics.fmean(v))
            for p, v in log_ratios(steps, sign, plain, budget).items()
        }
        for sign, plain in PAIRS
    }
    summary = (
        f"Noisy quadratic, d=100, from a random x0; batch-1 steps to f <= {TARGET:g} f(x0) "
        f"(budget {budget}; budget + 1 = not reached), each method at its tuned lr, "
        f"{len(ctx.seeds)} seeds. signSGD / SGD steps (geometric mean): "
        f"{base.listed(ratios['signsgd/sgd'], '.2f', '; ')}. Signum / momentum SGD: "
        f"{base.listed(ratios['signum/msgd'], '.2f', '; ')}. Decisions: "
        + "; ".join(f"{n}: {base.listed(d)}" for n, d in decisions.items())
        + "."
    )
    cells = {"steps to target per seed": base.seeds_cell("steps_to_target")}
    numbers = base.comparison_numbers(
        ctx, BUDGET, outcomes, steps_to_target=steps, step_ratios=ratios, decisions=decisions
    )
    panels = [Panel(p, "objective", "step", "f(x)") for p in PROBLEMS]
    fig = curves_figure(outcomes, list(LABELS), panels, LABELS)
    return ClaimResult(verdict, summary, numbers, base.outcome_table(outcomes, LABELS, cells), fig)


CLAIM = Claim(
    id="sign-depends-on-geometry",
    notes=('Gives a nice to understand version of Adam in terms of "noise-to-signal ratio".'),
    statement=(
        "Whether the sign helps depends on geometry: sign descent gains over SGD when the "
        "Hessian is axis-aligned (diagonally dominant) and loses that gain when it is rotated."
    ),
    source="Balles & Hennig, Dissecting Adam, ICML 2018; Bernstein et al., signSGD, ICML 2018",
    criterion=(
        "Noisy quadratic, d=100, Hessian eigenvalues log-spaced over [0.1, 10], axis-aligned or "
        "randomly rotated, x0 ~ N(0, I), batch-1 gradients with noise scale 0.2, 1 and 5; "
        "signSGD, SGD, Signum and momentum SGD, each lr searched (3 points per decade, widened "
        f"at the edges, successive halving) by steps to f <= {TARGET:g} f(x0) on a tuning "
        "instance; then >= 3 seeds. Per seed r = log(signSGD steps / SGD steps). Holds if at "
        "every noise level the 90% t-interval of r_rotated - r_axis lies above 0 and at some "
        "level that of r_axis lies below 0; does not hold if at some level the first lies at "
        "or below 0; inconclusive otherwise. Signum vs momentum SGD is reported alongside."
    ),
    run=run,
)
