"""Claim: Signum matches Adam's accuracy (signSGD, ICML 2018)."""

from __future__ import annotations

from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.claims.msvag_vs_adam import LABELS, bar_figure, compare, comparison_plan, epochs_for
from gradkit.claims.tuning import grid_edge_note, lr_grid, tuned_lrs

PROBLEMS = ("mnist1d-mlp", "digits-cnn")
METHODS = ("signum", "adam", "msgd")
MATCH = 0.02  # accuracy gap (absolute) within which Signum matches Adam
MISS = 0.05  # gap beyond which it clearly does not


def steps_to(result, target: float) -> float:
    """First evaluation step at which train accuracy reaches ``target`` (inf if never)."""
    for e in result.evals:
        if e.get("train_accuracy", 0.0) >= target:
            return e["step"]
    return float("inf")


def run(ctx: RunContext) -> ClaimResult:
    ctx.plan(comparison_plan(ctx, PROBLEMS, METHODS))
    outcomes = compare(ctx, PROBLEMS, METHODS)
    accuracy = {p: {m: outcomes[p][m].median("test_accuracy") for m in METHODS} for p in PROBLEMS}
    gaps = {p: accuracy[p]["signum"] - accuracy[p]["adam"] for p in PROBLEMS}
    if all(abs(g) <= MATCH for g in gaps.values()):
        verdict = Verdict.HOLDS
    elif any(abs(g) > MISS for g in gaps.values()):
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    # speed: steps to 90% of the lowest final train accuracy among the methods (seed 0 runs)
    speed = {}
    for p in PROBLEMS:
        target = 0.9 * min(outcomes[p][m].runs[0].final("train_accuracy") for m in METHODS)
        speed[p] = {m: steps_to(outcomes[p][m].runs[0], target) for m in METHODS}
    summary = (
        f"Median test accuracy after {epochs_for(ctx)} epochs at tuned lr "
        f"({len(ctx.seeds)} seeds): "
        + "; ".join(
            f"{p}: Signum {accuracy[p]['signum']:.3f}, Adam {accuracy[p]['adam']:.3f}, "
            f"M-SGD {accuracy[p]['msgd']:.3f} (gap Signum-Adam {100 * gaps[p]:+.1f} points)"
            for p in PROBLEMS
        )
        + "."
        + grid_edge_note(outcomes, lr_grid(ctx.scale))
    )
    table = [
        {
            "problem": p,
            "method": LABELS[m],
            "tuned lr": f"{outcomes[p][m].lr:.0e}",
            "test accuracy": f"{accuracy[p][m]:.3f}",
            "steps to common target": speed[p][m],
        }
        for p in PROBLEMS
        for m in METHODS
    ]
    numbers = {
        "epochs": epochs_for(ctx),
        "test_accuracy": accuracy,
        "gap_signum_minus_adam": gaps,
        "steps_to_common_train_accuracy": speed,
        "tuned_lr": tuned_lrs(outcomes),
    }
    fig = bar_figure(outcomes, METHODS, {"test_accuracy": "test accuracy"})
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="signum-matches-adam",
    statement=(
        "The momentum counterpart of signSGD (Signum) matches the accuracy and convergence speed "
        "of Adam."
    ),
    source="Bernstein et al., signSGD: Compressed Optimisation for Non-Convex Problems, ICML 2018",
    criterion=(
        "Signum, Adam and momentum SGD on the mnist1d MLP and the digits CNN, lr tuned per method "
        "on one shared log grid (validation split), >= 3 seeds, equal epochs. Holds if the median "
        f"test-accuracy gap |Signum - Adam| <= {100 * MATCH:.0f} points on both tasks; does not "
        f"hold if it exceeds {100 * MISS:.0f} points on either; inconclusive otherwise."
    ),
    run=run,
)
