"""Claim: GGT helps a recurrent model more than a convolutional one, whose gradients are better
conditioned."""

from __future__ import annotations

import math
import statistics

from gradkit.claims.base import (
    Claim,
    ClaimResult,
    RunContext,
    Verdict,
    per_seed,
    search_notes,
    tuned_lrs,
)
from gradkit.experiments import Budget, LrRange, Method, Metric, training
from gradkit.experiments import stats as st
from gradkit.experiments.kinds.spectra import spectra_of, window_spectra_spec
from gradkit.report.figures import seeds_figure

PROBLEMS = {"mnist1d-rnn": "recurrent (GRU)", "mnist1d-cnn": "convolutional"}
METHODS = (
    Method("adam", "Adam", LrRange(0.00215, 0.1)),
    # GGT's steps scale like lr |m| / sigma, not lr per coordinate
    Method("ggt-flat", "GGT (the paper's: one window)", LrRange(0.0464, 2.15)),
    Method("ggt", "GGT (a window per parameter)", LrRange(0.0464, 2.15)),
)
JUDGED = "ggt-flat"
"""The paper's GGT keeps one window of whole gradient vectors; gradkit's default (a window per
parameter tensor, a block-diagonal GGT) is run and reported, not judged."""
LABELS = {m.name: m.label for m in METHODS}
WINDOW, TOP = 200, 10
BUDGET = Budget(
    smoke=1,
    quick=15,
    full=60,
    paper="PTB 3-layer LSTM and CIFAR-10 ResNet-26, full schedules; training loss per iteration",
    why="15 epochs (quick; the tasks' default is 20) keep the quick suite within its time; the "
    "claim compares training-loss gains, visible from the first epochs.",
)
TUNE_ON = Metric("train_loss")


def gains(loss: dict[str, dict[str, list[float]]], ggt: str = JUDGED) -> dict[str, list[float]]:
    """Per seed, log(Adam's final train loss / GGT's): > 0 where GGT trains further."""
    return {
        p: [math.log(a / g) for a, g in zip(per["adam"], per[ggt], strict=True)]
        for p, per in loss.items()
    }


def decide(loss: dict[str, dict[str, list[float]]]) -> tuple[Verdict, dict[str, str]]:
    """With per-seed log gains of the paper's GGT over Adam: holds if the 90% t-interval of
    (GRU gain - CNN gain) lies above 0 and that of the GRU gain lies above 0; does not hold if
    the first lies at or below 0; inconclusive otherwise."""
    rnn, cnn = (gains(loss)[p] for p in PROBLEMS)
    more = st.greater(st.paired_interval(rnn, cnn))
    helps = st.greater(st.paired_interval(rnn, [0.0] * len(rnn)))
    if more == st.Decision.YES and helps == st.Decision.YES:
        verdict = Verdict.HOLDS
    elif more == st.Decision.NO:
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    return verdict, {"gru_gain_exceeds_cnn_gain": more.value, "ggt_helps_gru": helps.value}


def run(ctx: RunContext) -> ClaimResult:
    epochs = BUDGET.at(ctx.scale)
    outcomes = ctx.compare({p: training(p) for p in PROBLEMS}, METHODS, epochs, TUNE_ON)
    loss = per_seed(outcomes, "train_loss")
    verdict, details = decide(loss)
    gain = {name: gains(loss, name) for name in ("ggt-flat", "ggt")}
    mean_gain = {n: {p: statistics.fmean(g[p]) for p in PROBLEMS} for n, g in gain.items()}
    records = ctx.executor.run(
        [
            window_spectra_spec(p, "adam", outcomes[p]["adam"].lr, ctx.seeds[0], WINDOW, 1)
            for p in PROBLEMS
        ]
    )
    spectra = {p: spectra_of(r)[0] for p, r in zip(PROBLEMS, records, strict=True)}
    top = {p: spectra[p].mass_in_top(TOP) for p in PROBLEMS}
    stable = {p: spectra[p].stable_rank() for p in PROBLEMS}
    summary = (
        f"{epochs} epochs at tuned lrs ({len(ctx.seeds)} seeds), median final train loss "
        "Adam / GGT (one window) / GGT (a window per parameter): "
        + "; ".join(
            f"{p}: " + " / ".join(f"{per[m.name].median('train_loss'):.3f}" for m in METHODS)
            for p, per in outcomes.items()
        )
        + ". Mean log gain over Adam, GRU vs CNN: "
        + "; ".join(
            f"{LABELS[n]} {g['mnist1d-rnn']:+.2f} vs {g['mnist1d-cnn']:+.2f}"
            for n, g in mean_gain.items()
        )
        + ". GRU gain exceeds CNN gain (the paper's GGT): "
        f"{details['gru_gain_exceeds_cnn_gain']}; it helps the GRU: {details['ggt_helps_gru']}. "
        f"Window of the first {WINDOW} Adam gradients (seed {ctx.seeds[0]}): top-{TOP} share "
        + ", ".join(f"{p} {top[p]:.3f}" for p in PROBLEMS)
        + "; stable rank "
        + ", ".join(f"{p} {stable[p]:.1f}" for p in PROBLEMS)
        + "."
        + search_notes(outcomes)
    )
    table = [
        {
            "problem": p,
            "method": LABELS[m],
            "tuned lr": f"{o.lr:.3g}",
            "train loss (median)": f"{o.median('train_loss'):.4f}",
            "test accuracy (median)": f"{o.median('test_accuracy'):.3f}",
        }
        for p, per in outcomes.items()
        for m, o in per.items()
    ]
    numbers = {
        "epochs": epochs,
        "setting": BUDGET.describe(ctx.scale),
        "train_loss": loss,
        "log_gain_per_seed": gain,
        "tuned_lr": tuned_lrs(outcomes),
        "window_top_mass": top,
        "window_stable_rank": stable,
        **details,
    }
    fig = seeds_figure(
        {"train_loss": loss}, {"train_loss": "final train loss"}, LABELS, list(LABELS)
    )
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="ggt-helps-recurrent-more",
    statement=(
        "GGT's gain over Adam is larger on a recurrent model than on a convolutional one; "
        "recurrent gradients are much worse conditioned."
    ),
    source="Agarwal et al., Efficient Full-Matrix Adaptive Regularization (arXiv 1806.02958)",
    criterion=(
        "mnist1d read by a GRU vs the mnist1d 1-D CNN; Adam and GGT as in the paper (one "
        "window of the last 200 gradients of all parameters, betas 0.9/1, eps 1e-4); each "
        "method's lr searched in its own range (3 points per decade, widened at the edges, "
        "successive halving) by the tuning runs' train loss; then >= 3 seeds. Gain per seed = "
        "log(Adam's final train loss / GGT's). Holds if the 90% t-interval of (GRU gain - CNN "
        "gain) lies above 0 and that of the GRU gain lies above 0; does not hold if the first "
        "lies at or below 0; inconclusive otherwise. GGT with a window per parameter tensor "
        "(gradkit's default) is run and reported, not judged; so is the spectrum of a "
        "200-gradient window (top-10 share, stable rank) of each model."
    ),
    run=run,
)
