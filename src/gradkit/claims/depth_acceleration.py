"""Claim: on l4 regression making the linear model deeper accelerates gradient descent; on l2
regression the extra hidden layer no longer helps (the notes, from Arora, Cohen & Hazan, ICML
2018).

The notes: "Counter-intuitively, you can accelerate optimization by making network deeper, ...
The task is L4 regression. Note that if you replace it with L2 regression, the extra hidden
layer no longer helps." Judged: on l4, depth 2 and depth 3 each decidedly faster than depth 1;
on l2, depth 2 (the extra hidden layer) decidedly not faster than NO_GAIN x depth 1 ("no
longer helps": a speed-up below 1 / NO_GAIN = 1.25x counts as none, and slower is no help
either).
Reported, not judged, at smoke and full scale (beyond the notes: the paper's): depth 2 and 3
against AdaGrad on l4, and the end-to-end rule at the deep nets' rates."""

from __future__ import annotations

import math

from gradkit.claims import base
from gradkit.claims.base import Claim, ClaimResult, RunContext
from gradkit.experiments import Budget, LrRange, Method, Metric, deep_linear
from gradkit.experiments import stats as st
from gradkit.report.figures import Panel, curves_figure

PROBLEMS = {"l4 regression": 4, "l2 regression": 2}
GD_RATES = LrRange(1e-4, 1.0)
DEEP = tuple(Method(f"depth{n}", f"GD, depth {n}", GD_RATES) for n in (1, 2, 3))
ADAGRAD = Method("adagrad", "AdaGrad (depth 1)", LrRange(1e-3, 10.0))
METHODS = (*DEEP, ADAGRAD)
END_TO_END = tuple(Method(f"e2e{n}", f"end-to-end rule, N = {n}", GD_RATES) for n in (2, 3))
LABELS = base.labels_of((*METHODS, *END_TO_END))
UNRUN = "AdaGrad (lr searched alike) and the end-to-end rule at the deep nets' rates"
"""The reported arms, which run at smoke and full scale only, as the quick summary names them."""
DEEPER = ("depth2", "depth3")
NO_GAIN = 0.8
"""On l2, the extra layer "no longer helps" if depth 2 is decidedly not faster than 0.8x
depth 1's iterations (the interval of the log ratio lies above log 0.8): one-sided, since a
slower deep net does not help either."""
BUDGET = Budget(
    smoke=200,
    quick=2000,
    full=20000,
    paper="l4 regression on the UCI gas-sensor data (not offline here), plotted over thousands "
    "of iterations",
    why="At each method's tuned rate depth-1 GD reaches the target 1e-3 L(0) within about 100 "
    "iterations on both problems, so 2000 iterations compare speed; the full scale's 20 000 "
    "show whether a slow start (depth 3 from near zero) ever catches up.",
    unit="full-batch iterations",
)
TUNE_ON = Metric("iterations_to_target", tie_break="final_fraction")


def ratio(iterations, budget: int, problem: str, a: str, b: str) -> st.PairedInterval:
    """The t-interval of per-seed log(iterations of a / of b) on ``problem`` (seeds where
    neither reached the target within ``budget`` are unknown)."""
    return st.paired_interval(
        *st.log_pair(iterations[problem][a], iterations[problem][b], budget + 1)
    )


def decide(iterations: dict[str, dict[str, list[float]]], budget: int):
    """``iterations[problem][method]`` per seed (budget + 1 = not reached). l4: depth 2 and
    depth 3 each decidedly faster than depth 1 (t-intervals of the per-seed log ratios below
    0). l2: depth 2 decidedly not faster than NO_GAIN x depth 1 (interval above log NO_GAIN).
    Holds if both, does not hold if either is decidedly false, inconclusive otherwise."""
    faster = [st.less(ratio(iterations, budget, "l4 regression", d, "depth1")) for d in DEEPER]
    no_gain = st.greater(
        ratio(iterations, budget, "l2 regression", "depth2", "depth1"), math.log(NO_GAIN)
    )
    return base.judged({"l4: depth accelerates": st.all_of(faster), "l2: no acceleration": no_gain})


def reported(iterations: dict[str, dict[str, list[float]]], budget: int) -> dict[str, str]:
    """The paper's comparison, not judged: the interval of log(iterations of depth 2 or 3 /
    AdaGrad's) on l4, and whether it says faster."""
    intervals = {d: ratio(iterations, budget, "l4 regression", d, "adagrad") for d in DEEPER}
    return {
        f"l4: log({LABELS[d]} / AdaGrad)": f"{i}, faster: {st.less(i).value}"
        for d, i in intervals.items()
    }


def run_reported(ctx: RunContext, problems, outcomes, budget: int) -> None:
    """Adds AdaGrad, its lr searched, and the end-to-end rule at each deep net's tuned rate to
    ``outcomes``."""
    adagrad = ctx.compare(problems, (ADAGRAD,), budget, TUNE_ON)
    for p, make in problems.items():
        outcomes[p] |= adagrad[p]
        for rule, deep in zip(END_TO_END, DEEP[1:], strict=True):
            lr = outcomes[p][deep.name].lr
            outcomes[p] |= base.fixed_outcomes(ctx, make, [rule], {rule.name: lr}, budget)


def run(ctx: RunContext) -> ClaimResult:
    budget = BUDGET.at(ctx.scale)
    problems = {name: deep_linear("synthetic", power) for name, power in PROBLEMS.items()}
    outcomes = ctx.compare(problems, DEEP, budget, TUNE_ON)
    ctx.settle(outcomes, lambda o: decide(base.per_seed(o, "iterations_to_target"), budget)[0])
    if ctx.reports_extras:  # at the settled seeds
        run_reported(ctx, problems, outcomes, budget)
    iterations = base.per_seed(outcomes, "iterations_to_target")
    verdict, decisions = decide(iterations, budget)
    paper = reported(iterations, budget) if ctx.reports_extras else {}
    shown = base.reached_cell("iterations_to_target", budget)
    medians = "; ".join(
        f"{p}: " + ", ".join(f"{LABELS[m]} {shown(o)}" for m, o in per.items())
        for p, per in outcomes.items()
    )
    summary = (
        f"Synthetic regression (n 1000, d 20, condition 100), near-zero balanced init; full-batch "
        f"iterations to L <= 1e-3 L(0), median of {len(ctx.seeds)} seeds at each method's tuned "
        f"lr: {medians}. Decisions: {base.listed(decisions)}."
        + (
            f" Reported, not judged (the paper's, not the notes'): {base.listed(paper, sep='; ')}."
            if ctx.reports_extras
            else base.full_scale_only(UNRUN)
        )
        + base.search_notes(outcomes)
    )
    cells = {"iterations (median)": shown, "per seed": base.seeds_cell("iterations_to_target")}
    numbers = base.comparison_numbers(
        ctx,
        BUDGET,
        outcomes,
        budget=budget,
        iterations_to_target=iterations,
        decisions=decisions,
        reported=paper,
    )
    curve = ("loss_fraction", "iteration", "L / L(0)")
    rule = ("depth2", "e2e2", "depth3", "e2e3")
    panels = [Panel(p, *curve, methods=tuple(m.name for m in METHODS)) for p in outcomes] + [
        Panel(p, *curve, title=f"{p}: deep net vs end-to-end rule", methods=rule)
        for p in outcomes
        if ctx.reports_extras
    ]
    table = base.outcome_table(outcomes, LABELS, cells, "lr")
    fig = curves_figure(outcomes, list(LABELS), panels, LABELS)
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="depth-accelerates-l4-not-l2",
    notes=(
        "Counter-intuitively, you can accelerate optimization by making network deeper, and "
        "there's a simple synthetic optimization problem where this was demonstrated. The task "
        "is L4 regression. Note that if you replace it with L2 regression, the extra hidden "
        "layer no longer helps."
    ),
    statement=(
        "Overparameterizing a linear model by depth accelerates gradient descent on l4 "
        "regression, but an extra hidden layer does not help on l2 regression."
    ),
    source="Arora, Cohen & Hazan, On the Optimization of Deep Networks: Implicit Acceleration "
    "by Overparameterization, ICML 2018 (arXiv 1802.06509)",
    criterion=(
        "Synthetic linear regression (n 1000, d 20, feature covariance eigenvalues log-spaced "
        "over [0.1, 10] in a random basis, y = x^T w* + 0.01 noise, both standardized), "
        "L = mean((x^T w - y)^p)/p for p = 4 and 2; w_1 ~ N(0, 1e-6 I), depth N adds N - 1 "
        "scalars = ||w_1|| (balanced). GD at depths 1, 2, 3 and AdaGrad, each lr searched in its "
        "own range (3 points per decade, widened at the edges, successive halving) by "
        "iterations to L <= 1e-3 L(0); >= 3 seeds (instances), more while undecided (settled, "
        "with the fragility check at the searched rates' lattice neighbours). Holds if on l4 "
        "the t-intervals of per-seed log(iterations of depth 2 / depth 1's) and log(depth 3 / "
        "depth 1) lie below 0 ('accelerate optimization by making network deeper'), and on l2 "
        f"that of log(depth 2 / depth 1) lies above log {NO_GAIN:g} ('the extra hidden layer "
        f"no longer helps': less than a {1 / NO_GAIN:g}x speed-up, or slower); does not hold if "
        "any of these is decidedly false; inconclusive otherwise. Reported, not judged, at "
        "smoke and full scale (beyond the notes: the paper's): AdaGrad, its lr searched alike, "
        "as log(depth 2 or 3 / AdaGrad) on l4, and the end-to-end rule at the deep nets' rates."
    ),
    run=run,
)
