"""Claim: the inner-product test grows the batch of plain SGD as gradient noise comes to
dominate, and the grown batch beats fixed batches at equal work (Bollapragada et al. 2018).

The notes list the test's "expression for how to increase batch size in response to gradient
noise" as one of the two contributions that "seem useful on their own": judged as the test, used
without L-BFGS, growing SGD's batch (at least GROWTH x) and the grown batch reaching a lower gap
than SGD at fixed batches (16, its start, and 128) at equal work."""

from __future__ import annotations

from gradkit.claims.base import (
    Claim,
    ClaimResult,
    RunContext,
    Verdict,
    comparison_numbers,
    judged,
    labels_of,
    median_cell,
    outcome_table,
    per_seed,
    search_notes,
    seeds_cell,
)
from gradkit.experiments import Budget, LrRange, Method, Metric, logistic_work
from gradkit.experiments import stats as st
from gradkit.report.figures import Panel, curves_figure

INITIAL_BATCH = 16
THETA = 0.9  # the reference's theta
GROWTH = 4
"""The batch has grown if it ends at least GROWTH times its initial size."""
PROBLEMS = ("breast-cancer", "digits-parity")
SGD_RATES = LrRange(0.1, 10.0)
GROWING = Method(
    "growing",
    f"SGD, batch grown by the test from {INITIAL_BATCH}",
    SGD_RATES,
    "sgd-growing",
    (("batch", INITIAL_BATCH), ("theta", THETA)),
)
FIXED = tuple(
    Method(f"fixed-{b}", f"SGD, batch {b}", SGD_RATES, "sgd", (("batch", b),))
    for b in (INITIAL_BATCH, 128)
)
METHODS = (GROWING, *FIXED)
LABELS = labels_of(METHODS)
CELLS = {
    "final gap (median)": median_cell("final_gap", ".2e"),
    "final gap per seed": seeds_cell("final_gap", ".1e"),
    "last batch (median)": median_cell("final_batch", ".0f"),
}
PANELS = (  # curve, x, y, title ({p}: the problem), methods (none: all)
    ("suboptimality", "epochs of per-sample gradients", "F - F*", "", ()),
    ("batch_size", "iteration", "batch size", "{p}: grown batch", ("growing",)),
)
BUDGET = Budget(
    smoke=2,
    quick=20,
    full=60,
    paper="the test's claim is qualitative (Bollapragada, Byrd & Nocedal 2018 run dozens of "
    "epochs on LIBSVM sets)",
    why="After about 5 epochs SGD at batch 16 with a tuned rate stalls at its noise floor, so "
    "20 epochs leave room for the grown batch to go below it.",
    unit="epochs of per-sample gradients",
)
TUNE_ON = Metric("final_gap")
GAP_FLOOR = 1e-16


def grew(final_batches: list[float]) -> st.Decision:
    """YES if every seed's batch ended >= GROWTH x the initial one, NO if none did."""
    grown = [b >= GROWTH * INITIAL_BATCH for b in final_batches]
    return (
        st.Decision.YES if all(grown) else st.Decision.UNDECIDED if any(grown) else st.Decision.NO
    )


def decide(
    gaps: dict[str, dict[str, list[float]]], batches: dict[str, dict[str, list[float]]]
) -> tuple[Verdict, dict[str, str]]:
    """Per problem, the grown batch wins if it grew (:func:`grew`) and the t-intervals of its
    per-seed log final gap minus each fixed batch's lie below 0; it loses if it did not grow
    or an interval lies at or above 0. Holds if it wins every problem, does not hold if it loses
    every problem, inconclusive otherwise."""
    decisions = {}
    for p, per in gaps.items():
        logs = {m: st.logs(values, GAP_FLOOR) for m, values in per.items()}
        lower = [st.less(st.paired_interval(logs["growing"], logs[m.name])) for m in FIXED]
        decisions[p] = st.all_of([grew(batches[p]["growing"]), *lower])
    return judged(decisions, "all")


def run(ctx: RunContext) -> ClaimResult:
    budget = BUDGET.at(ctx.scale)
    problems = {p: logistic_work(p, 0.0) for p in PROBLEMS}
    outcomes = ctx.compare(problems, METHODS, budget, TUNE_ON)
    ctx.settle(outcomes, lambda o: decide(per_seed(o, "final_gap"), per_seed(o, "final_batch"))[0])
    gaps, batches = per_seed(outcomes, "final_gap"), per_seed(outcomes, "final_batch")
    verdict, wins = decide(gaps, batches)
    summary = (
        f"(F - F*) / (F0 - F*) after {budget} epochs of per-sample gradients, median of "
        f"{len(ctx.seeds)} seeds at each arm's tuned lr: "
        + "; ".join(
            f"{p}: grown batch {o['growing'].median('final_gap'):.1e} (last batch "
            f"{o['growing'].median('final_batch'):.0f}), "
            + ", ".join(f"batch {m.hyper[0][1]} {o[m.name].median('final_gap'):.1e}" for m in FIXED)
            + f" (grown batch wins: {wins[p]})"
            for p, o in outcomes.items()
        )
        + "."
        + search_notes(outcomes)
    )
    numbers = comparison_numbers(ctx, BUDGET, outcomes, final_gap=gaps, final_batch=batches)
    numbers |= {"budget": budget, "grown_batch_wins": wins}
    panels = [
        Panel(p, curve, x, y, title=title.format(p=p), methods=methods)
        for p in outcomes
        for curve, x, y, title, methods in PANELS
    ]
    fig = curves_figure(outcomes, list(LABELS), panels, LABELS)
    return ClaimResult(verdict, summary, numbers, outcome_table(outcomes, LABELS, CELLS), fig)


CLAIM = Claim(
    id="batch-grows-with-noise",
    notes="expression for how to increase batch size in response to gradient noise",
    statement=(
        "The inner-product test, used with plain SGD, increases the batch as gradient noise "
        "comes to dominate, and reaches a lower loss than fixed batches at equal work."
    ),
    source="Bollapragada, Mudigere, Nocedal, Shi & Tang, ICML 2018 (arXiv 1802.05374); "
    "Bollapragada, Byrd & Nocedal, SIAM J. Optim. 2018 (arXiv 1710.11258)",
    criterion=(
        "The notes: the test's expression for the batch size, useful on its own. "
        "l2-regularised logistic regression (lambda 1/n) on breast cancer and digits even/odd, "
        "work counted in per-sample gradients. SGD on fresh samples whose size the inner-"
        f"product test along the gradient (theta {THETA}) grows from {INITIAL_BATCH}, against "
        "SGD at fixed batches 16 and 128; every arm's lr searched in its own range (3 points "
        "per decade, widened at the edges, successive halving, the choice a local optimum at the "
        "full budget on three tuning seeds) by the final gap; then >= 3 seeds at equal work, "
        "more while undecided. The grown batch wins a problem if every seed's batch ended at "
        f">= {GROWTH}x its start and the t-intervals of its per-seed log final gap minus "
        "each fixed batch's lie below 0; loses if no seed's batch grew that much or an interval "
        "lies at or above 0. Holds if it wins both problems, does not hold if it loses both, "
        "inconclusive otherwise."
    ),
    run=run,
)
