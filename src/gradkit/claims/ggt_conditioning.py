"""Claim: GGT's full-matrix preconditioning helps on ill-conditioned problems whose conditioning
is not axis-aligned; on the axis-aligned twin a diagonal method already copes."""

from __future__ import annotations

import statistics

from gradkit.claims import base
from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.experiments import Budget, LrRange, Method, Metric, full_batch
from gradkit.experiments import stats as st
from gradkit.report.figures import Panel, curves_figure

TARGET_GAP = 1e-3
"""The target is f* + TARGET_GAP (f(x_0) - f*)."""
PROBLEMS = {
    "rotated": full_batch("linear-regression", TARGET_GAP, rotated=True),
    "axis-aligned": full_batch("linear-regression", TARGET_GAP, rotated=False),
}
GGT = Method("ggt", "GGT (r=200)", LrRange(1e-3, 1.0), hyper=(("window", 200), ("eps", 1e-4)))
DIAGONAL = (
    Method("adagrad", "AdaGrad", LrRange(1e-3, 1.0)),
    Method("adam", "Adam", LrRange(1e-4, 1e-1)),
)
REFERENCE = Method(
    "full-adagrad", "full-matrix AdaGrad", LrRange(1e-3, 1.0), hyper=(("eps", 1e-4),)
)
METHODS = (GGT, *DIAGONAL, REFERENCE)
LABELS = base.labels_of(METHODS)
BUDGET = Budget(
    smoke=10,
    quick=300,
    full=1000,
    paper="synthetic ill-conditioned problems, iterations not stated [unverified]",
    why="Full-matrix methods reach the target within 300 iterations on the rotated problem; a "
    "method that misses it counts as budget + 1.",
    unit="full-batch iterations",
)
TUNE_ON = Metric("iterations_to_target", tie_break="final_gap")


def decide(
    iterations: dict[str, dict[str, list[float]]], budget: int
) -> tuple[Verdict, dict[str, str]]:
    """(i) On the rotated problem, the 90% t-intervals of GGT's per-seed log iterations minus
    AdaGrad's and minus Adam's both lie below 0 (fails if either lies at or above 0).
    (ii) The advantage comes from the rotation: with the better diagonal method on each problem
    (lower median), the per-seed log advantage log(diagonal / GGT) is larger on the rotated
    problem than on its axis-aligned twin (same seed, same instance but the basis): the
    interval of the difference lies above 0 (fails if at or below 0).
    Holds if (i) and (ii); does not hold if either fails; inconclusive otherwise, and when no
    method reaches the target (iterations = budget + 1 everywhere) on a problem."""
    rotated, aligned = iterations["rotated"], iterations["axis-aligned"]
    faster = from_rotation = st.Decision.UNDECIDED
    if not any(all(min(v) > budget for v in per.values()) for per in (rotated, aligned)):

        def advantage(per) -> list[float]:
            best = min(DIAGONAL, key=lambda m: statistics.median(per[m.name])).name
            diagonal, ggt = st.log_pair(per[best], per["ggt"], budget + 1)
            return [d - g for d, g in zip(diagonal, ggt, strict=True)]

        ratios = [
            st.paired_interval(*st.log_pair(rotated["ggt"], rotated[m.name], budget + 1))
            for m in DIAGONAL
        ]
        faster = st.all_of([st.less(r) for r in ratios])
        from_rotation = st.greater(st.paired_interval(advantage(rotated), advantage(aligned)))
    return base.judged(
        {
            "ggt_faster_than_diagonal_when_rotated": faster,
            "advantage_larger_when_rotated": from_rotation,
        }
    )


def run(ctx: RunContext) -> ClaimResult:
    budget = BUDGET.at(ctx.scale)
    outcomes = ctx.compare(PROBLEMS, METHODS, budget, TUNE_ON)
    ctx.settle(outcomes, lambda o: decide(base.per_seed(o, "iterations_to_target"), budget)[0])
    iterations = base.per_seed(outcomes, "iterations_to_target")
    verdict, details = decide(iterations, budget)
    shown = base.reached_cell("iterations_to_target", budget)
    medians = "; ".join(
        f"{p}: " + ", ".join(f"{LABELS[m]} {shown(o)}" for m, o in per.items())
        for p, per in outcomes.items()
    )
    summary = (
        f"Linear regression, d=100, condition number 1e3; full-batch iterations to f* + "
        f"{TARGET_GAP:g} (f0 - f*), median of {len(ctx.seeds)} seeds: {medians}. GGT faster than "
        f"AdaGrad and Adam when rotated: {details['ggt_faster_than_diagonal_when_rotated']}; its "
        f"advantage larger when rotated: {details['advantage_larger_when_rotated']}."
    )
    cells = {
        "iterations (median)": shown,
        "iterations per seed": base.seeds_cell("iterations_to_target"),
    }
    numbers = base.comparison_numbers(
        ctx, BUDGET, outcomes, budget=budget, iterations=iterations, **details
    )
    panels = [Panel(p, "suboptimality", "iteration", "f - f*") for p in outcomes]
    fig = curves_figure(outcomes, list(LABELS), panels, LABELS)
    return ClaimResult(verdict, summary, numbers, base.outcome_table(outcomes, LABELS, cells), fig)


CLAIM = Claim(
    id="ggt-helps-when-ill-conditioned",
    notes=(
        "Plotting eigenvalues, they show that RNN task gradients are much worse conditioned, "
        "which would lead one to expect more benefit from second order method."
    ),
    statement=(
        "GGT (full-matrix adaptive regularization through a window of gradients) beats diagonal "
        "methods on ill-conditioned problems, and the advantage comes from the off-diagonal "
        "structure: it shrinks when the conditioning is axis-aligned."
    ),
    source="Agarwal et al., Efficient Full-Matrix Adaptive Regularization (arXiv 1806.02958)",
    criterion=(
        "Least-squares linear regression, d=100, feature covariance eigenvalues over [1e-3, 1], "
        "in a random basis (rotated) and in the coordinate axes (its twin, same instance "
        "otherwise); full batch. GGT (r=200, betas 0.9/1, eps 1e-4), diagonal AdaGrad and Adam, "
        "full-matrix AdaGrad (reference only); each lr searched in its own range (3 points per "
        "decade, widened at the edges, successive halving) by iterations to f* + "
        f"{TARGET_GAP:g} (f0 - f*) on a tuning instance; then >= 3 seeds (not reached counts "
        "as budget + 1). 90% t-intervals of per-seed log-iteration differences: (i) GGT "
        "decidedly faster than AdaGrad and than Adam on the rotated problem; (ii) its log "
        "advantage over the better diagonal method decidedly larger on the rotated problem than "
        "on the axis-aligned twin (replaces a fixed 2x threshold, which had no basis in the "
        "paper). Holds if (i) and (ii); does not hold if either decidedly fails; inconclusive "
        "otherwise, or if no method reaches the target on a problem."
    ),
    run=run,
)
