"""Claim: M-SGD, M-SSD, M-SVAG and Adam rank differently on different problems."""

from __future__ import annotations

from matplotlib.figure import Figure

from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.claims.tuning import (
    MethodOutcome,
    comparison_units,
    grid_edge_note,
    lr_grid,
    tuned_comparison,
    tuned_lrs,
)

PROBLEMS = ("mnist1d-mlp", "digits-cnn", "mnist1d-rnn")
METHODS = ("msgd", "signum", "msvag", "adam")
LABELS = {"msgd": "M-SGD", "signum": "M-SSD", "msvag": "M-SVAG", "adam": "Adam"}
SIGN_BASED = ("signum", "adam")
NO_HARM = 1.1  # M-SVAG's train loss may exceed M-SGD's by at most this factor


def epochs_for(ctx: RunContext) -> int:
    return ctx.pick(4, 30)


def compare(ctx: RunContext, problems, methods) -> dict[str, dict[str, MethodOutcome]]:
    """Tuned comparison of ``methods`` on each problem (runs shared with other claims)."""
    grid = lr_grid(ctx.scale)
    return {
        problem: tuned_comparison(ctx, problem, list(methods), epochs_for(ctx), grid)
        for problem in problems
    }


def comparison_plan(ctx: RunContext, problems, methods) -> int:
    return len(problems) * comparison_units(len(methods), len(lr_grid(ctx.scale)), len(ctx.seeds))


def bar_figure(outcomes, methods, metrics: dict[str, str], labels=LABELS) -> Figure:
    """Median (bar) and min-max (whisker) of each metric, one panel per problem and metric."""
    problems = list(outcomes)
    fig = Figure(figsize=(4 * len(problems), 3.2 * len(metrics)))
    axes = fig.subplots(len(metrics), len(problems), squeeze=False)
    for row, (metric, label) in enumerate(metrics.items()):
        for col, problem in enumerate(problems):
            ax = axes[row][col]
            medians = [outcomes[problem][m].median(metric) for m in methods]
            low_high = [outcomes[problem][m].spread(metric) for m in methods]
            errors = [
                [md - lo for md, (lo, _) in zip(medians, low_high, strict=True)],
                [hi - md for md, (_, hi) in zip(medians, low_high, strict=True)],
            ]
            ax.bar([labels.get(m, m) for m in methods], medians, yerr=errors, capsize=4)
            ax.set_title(f"{problem}")
            ax.set_ylabel(label)
    fig.tight_layout()
    return fig


def run(ctx: RunContext) -> ClaimResult:
    ctx.plan(comparison_plan(ctx, PROBLEMS, METHODS))
    outcomes = compare(ctx, PROBLEMS, METHODS)
    loss = {p: {m: outcomes[p][m].median("train_loss") for m in METHODS} for p in PROBLEMS}
    accuracy = {p: {m: outcomes[p][m].median("test_accuracy") for m in METHODS} for p in PROBLEMS}
    no_harm = {p: loss[p]["msvag"] <= NO_HARM * loss[p]["msgd"] for p in PROBLEMS}
    sign_wins = {
        p: min(loss[p][m] for m in SIGN_BASED)
        < min(loss[p][m] for m in METHODS if m not in SIGN_BASED)
        for p in PROBLEMS
    }
    variance_ok = sum(no_harm.values()) >= 2
    problem_dependent = len(set(sign_wins.values())) > 1
    if variance_ok and problem_dependent:
        verdict = Verdict.HOLDS
    elif not variance_ok and not problem_dependent:
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    rankings = {p: [LABELS[m] for m in sorted(METHODS, key=lambda m: loss[p][m])] for p in PROBLEMS}
    summary = (
        f"After {epochs_for(ctx)} epochs at each method's tuned lr (median of {len(ctx.seeds)} "
        "seeds), ranking by final training loss: "
        + "; ".join(f"{p}: {' < '.join(r)}" for p, r in rankings.items())
        + f". M-SVAG no worse than M-SGD (<= {NO_HARM}x loss) on {sum(no_harm.values())}/3 "
        "problems; sign-based methods best on "
        + (", ".join(p for p, w in sign_wins.items() if w) or "no problem")
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
        }
        for p in PROBLEMS
        for m in METHODS
    ]
    numbers = {
        "epochs": epochs_for(ctx),
        "train_loss": loss,
        "test_accuracy": accuracy,
        "tuned_lr": tuned_lrs(outcomes),
        "msvag_no_worse_than_msgd": no_harm,
        "sign_based_best": sign_wins,
        "rankings": rankings,
    }
    fig = bar_figure(
        outcomes, METHODS, {"train_loss": "final train loss", "test_accuracy": "test accuracy"}
    )
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="msvag-vs-adam",
    statement=(
        "'Square root free' Adam (variance adaptation applied to momentum SGD, M-SVAG) helps on "
        "some problems; whether the sign (M-SSD, Adam) or the magnitude (M-SGD, M-SVAG) wins is "
        "problem-dependent."
    ),
    source="Balles & Hennig, Dissecting Adam, ICML 2018 (arXiv 1705.07774)",
    criterion=(
        "M-SGD, M-SSD, M-SVAG, Adam on the mnist1d MLP, the digits CNN and the mnist1d GRU; lr "
        "tuned per method on one shared log grid (validation split), then >= 3 seeds. (i) M-SVAG's "
        f"median final train loss <= {NO_HARM} x M-SGD's on at least 2 of 3 problems; (ii) the "
        "best sign-based method beats the best non-sign method on some but not all problems. "
        "Holds if (i) and (ii); does not hold if neither; inconclusive otherwise."
    ),
    run=run,
)
