"""Claim: GGT helps a recurrent model more than a convolutional one, whose gradients are better
conditioned."""

from __future__ import annotations

from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.claims.msvag_vs_adam import bar_figure
from gradkit.claims.spectra import window_spectra
from gradkit.claims.tuning import (
    comparison_units,
    grid_edge_note,
    lr_grid,
    tuned_comparison,
    tuned_lrs,
)

PROBLEMS = {"mnist1d-rnn": "recurrent (GRU)", "mnist1d-cnn": "convolutional"}
METHODS = ("adam", "ggt")
LABELS = {"adam": "Adam", "ggt": "GGT"}
WINDOW, TOP = 200, 10


def grid_for(ctx: RunContext) -> list[float]:
    return lr_grid(ctx.scale, 1e-4, 10.0)


def run(ctx: RunContext) -> ClaimResult:
    grid, epochs = grid_for(ctx), ctx.pick(4, 30)
    ctx.plan(len(PROBLEMS) * (comparison_units(len(METHODS), len(grid), len(ctx.seeds)) + 1))
    outcomes = {}
    spectra = {}
    for problem in PROBLEMS:
        outcomes[problem] = tuned_comparison(ctx, problem, list(METHODS), epochs, grid)
        adam_lr = outcomes[problem]["adam"].lr
        spectra[problem] = window_spectra(problem, "adam", adam_lr, ctx.seeds[0], WINDOW, 1)[0]
        ctx.advance()
    loss = {p: {m: outcomes[p][m].median("train_loss") for m in METHODS} for p in PROBLEMS}
    gain = {p: loss[p]["adam"] / loss[p]["ggt"] for p in PROBLEMS}
    rnn, cnn = PROBLEMS
    if gain[rnn] > gain[cnn] and gain[rnn] > 1:
        verdict = Verdict.HOLDS
    elif gain[rnn] <= gain[cnn]:
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    top = {p: spectra[p].mass_in_top(TOP) for p in PROBLEMS}
    stable = {p: spectra[p].stable_rank() for p in PROBLEMS}
    summary = (
        f"{epochs} epochs at tuned lrs (median of {len(ctx.seeds)} seeds), final train loss "
        "Adam / GGT: "
        + "; ".join(
            f"{p}: {loss[p]['adam']:.3f} / {loss[p]['ggt']:.3f} (gain {gain[p]:.2f})"
            for p in PROBLEMS
        )
        + f". Window of the first {WINDOW} Adam gradients (seed {ctx.seeds[0]}): top-{TOP} share "
        + ", ".join(f"{p} {top[p]:.3f}" for p in PROBLEMS)
        + "; stable rank "
        + ", ".join(f"{p} {stable[p]:.1f}" for p in PROBLEMS)
        + "."
        + grid_edge_note(outcomes, grid)
    )
    table = [
        {
            "problem": p,
            "method": LABELS[m],
            "tuned lr": f"{outcomes[p][m].lr:.0e}",
            "train loss": f"{loss[p][m]:.4f}",
            "test accuracy": f"{outcomes[p][m].median('test_accuracy'):.3f}",
        }
        for p in PROBLEMS
        for m in METHODS
    ]
    numbers = {
        "epochs": epochs,
        "train_loss": loss,
        "gain": gain,
        "tuned_lr": tuned_lrs(outcomes),
        "window_top_mass": top,
        "window_stable_rank": stable,
    }
    fig = bar_figure(outcomes, METHODS, {"train_loss": "final train loss"}, LABELS)
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="ggt-helps-recurrent-more",
    statement=(
        "GGT's gain over Adam is larger on a recurrent model than on a convolutional one; "
        "recurrent gradients are much worse conditioned."
    ),
    source="Agarwal et al., Efficient Full-Matrix Adaptive Regularization (arXiv 1806.02958)",
    criterion=(
        "mnist1d read by a GRU vs the mnist1d 1-D CNN; Adam and GGT (window 200 per parameter, "
        "betas 0.9/1, eps 1e-4), lr tuned per method on one log grid 1e-4..10 (validation "
        "split), then >= 3 seeds, 4 epochs (quick) / 30 (full). Gain = Adam's median final train "
        "loss / GGT's. Holds if the GRU's gain exceeds the CNN's and 1; does not hold if it does "
        "not exceed the CNN's; inconclusive otherwise. The spectrum of a 200-gradient window "
        "(top-10 share, stable rank) of each model is reported, not judged."
    ),
    run=run,
)
