"""Claim: Shampoo trains convolutional networks without batch normalization at least as well as
Adam and momentum SGD."""

from __future__ import annotations

import statistics

from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.claims.msvag_vs_adam import bar_figure, compare, comparison_plan, epochs_for
from gradkit.claims.tuning import grid_edge_note, lr_grid, tuned_lrs

PROBLEMS = ("mnist1d-cnn", "digits-cnn")
METHODS = ("shampoo", "adam", "msgd")
LABELS = {"shampoo": "Shampoo", "adam": "Adam", "msgd": "SGD+momentum"}
NEAR_BEST = 0.02  # Shampoo's test accuracy may trail the best by at most this much


def run(ctx: RunContext) -> ClaimResult:
    ctx.plan(comparison_plan(ctx, PROBLEMS, METHODS))
    outcomes = compare(ctx, PROBLEMS, METHODS)
    loss = {p: {m: outcomes[p][m].median("train_loss") for m in METHODS} for p in PROBLEMS}
    accuracy = {p: {m: outcomes[p][m].median("test_accuracy") for m in METHODS} for p in PROBLEMS}
    seconds = {
        p: {m: statistics.median(r.seconds for r in outcomes[p][m].runs) for m in METHODS}
        for p in PROBLEMS
    }
    wins = {
        p: loss[p]["shampoo"] <= min(loss[p].values())
        and accuracy[p]["shampoo"] >= max(accuracy[p].values()) - NEAR_BEST
        for p in PROBLEMS
    }
    if all(wins.values()):
        verdict = Verdict.HOLDS
    elif not any(wins.values()):
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    summary = (
        f"CNNs without batch norm, {epochs_for(ctx)} epochs at each method's tuned lr (median of "
        f"{len(ctx.seeds)} seeds), final train loss / test accuracy: "
        + "; ".join(
            f"{p}: "
            + ", ".join(f"{LABELS[m]} {loss[p][m]:.3f} / {accuracy[p][m]:.3f}" for m in METHODS)
            for p in PROBLEMS
        )
        + ". Shampoo lowest loss with accuracy near the best on "
        + (", ".join(p for p, w in wins.items() if w) or "no problem")
        + "."
        + grid_edge_note(outcomes, lr_grid(ctx.scale))
    )
    table = [
        {
            "problem": p,
            "method": LABELS[m],
            "tuned lr": f"{outcomes[p][m].lr:.0e}",
            "train loss": f"{loss[p][m]:.4f}",
            "test accuracy": f"{accuracy[p][m]:.3f}",
            "seconds per run": f"{seconds[p][m]:.2f}",
        }
        for p in PROBLEMS
        for m in METHODS
    ]
    numbers = {
        "epochs": epochs_for(ctx),
        "train_loss": loss,
        "test_accuracy": accuracy,
        "seconds_per_run": seconds,
        "tuned_lr": tuned_lrs(outcomes),
        "shampoo_wins": wins,
    }
    fig = bar_figure(
        outcomes,
        METHODS,
        {"train_loss": "final train loss", "test_accuracy": "test accuracy"},
        LABELS,
    )
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="shampoo-trains-without-batchnorm",
    statement=(
        "Shampoo trains convolutional networks without batch normalization as well as or better "
        "than Adam and SGD with momentum, at a comparable cost per step."
    ),
    source="Gupta, Koren & Singer, Shampoo, ICML 2018 (arXiv 1802.09568)",
    criterion=(
        "The mnist1d 1-D CNN and the digits 2-D CNN (neither has batch norm); Shampoo (momentum "
        "0.9, epsilon 1e-4, roots every 10 steps), Adam and SGD with momentum 0.9, lr tuned per "
        "method on one shared log grid (validation split), then >= 3 seeds, equal epochs. "
        "Shampoo wins a problem if its median final train loss is the lowest of the three and its "
        f"median test accuracy is within {NEAR_BEST} of the best. Holds if it wins both problems, "
        "does not hold if it wins neither, inconclusive otherwise. Seconds per run are reported."
    ),
    run=run,
)
