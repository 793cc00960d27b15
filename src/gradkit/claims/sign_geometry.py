"""Claim: sign descent gains over SGD when the curvature is axis-aligned, not when rotated.

The notes: 'Gives a nice to understand version of Adam in terms of "noise-to-signal ratio".'
They describe Adam only as a sign times a variance factor; which geometry the sign suits is
beyond the notes: Balles & Hennig's analysis of sign descent on noisy quadratics (the sign's
benefit depends on the Hessian's diagonal dominance and on the noise), judged here as stated
there. The compared quantity is the loss over the last quarter of an equal step budget, defined
at every noise level and scale; steps to a fixed fraction of f(x0) are reported only, with the
cells that never reach it named (at noise 5 no method reaches 1% of f(x0) in 2000 steps).
Signum against momentum SGD is reported, not judged, at smoke and full scale."""

from __future__ import annotations

import math
import statistics

from gradkit.claims import base
from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.experiments import Budget, LrRange, Method, Metric, noisy_quadratic
from gradkit.experiments import stats as st
from gradkit.experiments.kinds.quadratic import TAIL
from gradkit.report.figures import Panel, curves_figure

NOISES = (0.2, 1.0, 5.0)  # gradient noise scale: low, moderate, high
TARGET = 0.01
"""Reported only: the steps to f(x) <= TARGET f(x_0), which not every method reaches at every
noise level within the budget (cells that never do are named in the summary)."""
PROBLEMS = {
    f"{geometry}, noise {noise:g}": noisy_quadratic(geometry == "rotated", noise, TARGET)
    for noise in NOISES
    for geometry in ("axis-aligned", "rotated")
}
PAIRS = (("signsgd", "sgd"), ("signum", "msgd"))  # (sign method, its non-sign twin)
JUDGED = (
    Method("signsgd", "signSGD", LrRange(1e-3, 1e-1)),
    Method("sgd", "SGD", LrRange(1e-3, 1e-1)),
)
REPORTED = (
    Method("signum", "Signum", LrRange(1e-3, 1e-1)),
    Method("msgd", "SGD+momentum", LrRange(1e-3, 1e-1)),
)
"""Signum and its twin, reported beside the judged pair; they run at smoke and full scale only."""
LABELS = base.labels_of((*JUDGED, *REPORTED))
BUDGET = Budget(
    smoke=20,
    quick=1000,
    full=10000,
    paper="the theory's noisy quadratics (Balles & Hennig); no step budget",
    why="An equal budget of batch-1 steps; the loss over its last quarter is defined whether or "
    "not a method gets near the optimum, so every noise level is compared at every scale.",
    unit="steps",
)
TUNE_ON = Metric("tail_fraction")
METRIC = "tail_fraction"


def log_ratios(tail: dict[str, dict[str, list[float]]], sign: str, plain: str):
    """Per problem, per seed, log(sign method's tail loss / its twin's): < 0 where the sign
    method ends lower (a diverged run's loss is inf)."""
    return {
        p: [a - b for a, b in zip(st.logs(per[sign]), st.logs(per[plain]), strict=True)]
        for p, per in tail.items()
    }


def decide(tail: dict[str, dict[str, list[float]]]) -> tuple[Verdict, dict[str, dict]]:
    """signSGD against SGD at each noise level, with per-seed r = log(signSGD's mean f/f(x0)
    over the last quarter of the steps / SGD's) (< 0: the sign ends lower). (i) the sign gains
    when axis-aligned: the t-interval of r_axis lies below 0; (ii) it loses that gain when
    rotated: the interval of r_rotated - r_axis (same seed: same eigenvalues, start and noise;
    the rotation differs) lies above 0. Holds if (ii) is YES at every noise level and (i) at
    some; does not hold if (ii) is NO (at or below 0) at some noise level; inconclusive
    otherwise. Signum against momentum SGD is reported alongside."""
    r = log_ratios(tail, "signsgd", "sgd")
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


def signum_text(ratios: dict[str, dict[str, float]]) -> str:
    """The summary's sentence on Signum / momentum SGD, or what the quick scale left out."""
    if "signum/msgd" not in ratios:
        return base.full_scale_only("Signum against momentum SGD (each lr searched alike)")
    return f" Signum / momentum SGD (reported): {base.listed(ratios['signum/msgd'], '.2f', '; ')}."


def run(ctx: RunContext) -> ClaimResult:
    budget = BUDGET.at(ctx.scale)
    outcomes = ctx.compare(PROBLEMS, JUDGED, budget, TUNE_ON)
    ctx.settle(outcomes, lambda o: decide(base.per_seed(o, METRIC))[0])
    ctx.add_reported(outcomes, PROBLEMS, REPORTED, budget, TUNE_ON)
    tail = base.per_seed(outcomes, METRIC)
    verdict, decisions = decide(tail)
    ratios = {
        f"{sign}/{plain}": {
            p: math.exp(statistics.fmean(v)) for p, v in log_ratios(tail, sign, plain).items()
        }
        for sign, plain in PAIRS
        if sign in next(iter(tail.values()))
    }
    summary = (
        f"Noisy quadratic, d=100, from a random x0; mean f/f(x0) over the last "
        f"{TAIL:.0%} of {budget} batch-1 steps, each method at its tuned lr, {len(ctx.seeds)} "
        f"seeds. signSGD / SGD (geometric mean): {base.listed(ratios['signsgd/sgd'], '.2f', '; ')}"
        + "."
        + signum_text(ratios)
        + " Decisions: "
        + "; ".join(f"{n}: {base.listed(d)}" for n, d in decisions.items())
        + f". Steps to f <= {TARGET:g} f(x0) are reported in the table."
        + base.unreached(outcomes, "steps_to_target", budget, LABELS)
        + base.search_notes(outcomes)
    )
    cells = {
        "tail f/f(x0) (median)": base.median_cell(METRIC, ".3g"),
        "tail f/f(x0) per seed": base.seeds_cell(METRIC, ".3g"),
        f"steps to {TARGET:g} f(x0) (median, reported)": base.reached_cell(
            "steps_to_target", budget
        ),
    }
    numbers = base.comparison_numbers(
        ctx,
        BUDGET,
        outcomes,
        tail_fraction=tail,
        tail_ratios=ratios,
        decisions=decisions,
        steps_to_target=base.per_seed(outcomes, "steps_to_target"),
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
        "Beyond the notes (they describe Adam only as sign times variance): the paper's "
        "statement that the sign's benefit depends on the Hessian's diagonal dominance and the "
        "noise. Noisy quadratic, d=100, Hessian eigenvalues log-spaced over [0.1, 10], "
        "axis-aligned or randomly rotated, x0 ~ N(0, I), batch-1 gradients with noise scale "
        "0.2, 1 and 5; signSGD, SGD, Signum and momentum SGD at an equal step budget, each lr "
        "searched (3 points per decade, widened at the edges, successive halving, the choice a "
        "local optimum at the full budget on three tuning seeds) by the mean f/f(x0) over the "
        f"last {TAIL:.0%} of the steps (defined at every noise level and scale); then >= 3 "
        "seeds, more while undecided. Per seed r = log(signSGD's tail loss / SGD's). Holds if "
        "at every noise level the t-interval of r_rotated - r_axis lies above 0 and at some "
        "level that of r_axis lies below 0; does not hold if at some level the first lies at "
        "or below 0; inconclusive otherwise. Reported, not judged: the steps to f <= "
        f"{TARGET:g} f(x0), naming each cell where no run reaches it, and at smoke and full "
        "scale Signum vs momentum SGD."
    ),
    run=run,
)
