"""Claim: a window of recent gradients is effectively low-rank, and its spectrum changes as
training goes on."""

from __future__ import annotations

import statistics

import numpy as np
from matplotlib.figure import Figure

from gradkit.checks import InputError
from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict, verdict_from
from gradkit.experiments.kinds.spectra import spectra_of, window_spectra_spec
from gradkit.experiments.stats import Decision

TASK, OPTIMIZER, LR = "mnist1d-mlp", "adam", 1e-3
WINDOW = 200
TOP = 10  # "the top few" singular values: 5% of the window
MASS = 0.5  # share of ||G||_F^2 the top ones must carry


def decide(mass: list[float]) -> Verdict:
    """``mass[w]``: the median over seeds of window w's share of ||G||_F^2 in the top TOP
    singular values. Holds if every window's share is >= MASS, does not hold if every one is
    below, inconclusive when they fall on both sides."""
    if not mass:
        raise InputError("decide needs at least one window")
    yes, no, undecided = Decision.YES, Decision.NO, Decision.UNDECIDED  # undecided: NaN
    return verdict_from([yes if m >= MASS else no if m < MASS else undecided for m in mass], "all")


def run(ctx: RunContext) -> ClaimResult:
    windows = ctx.pick(3, 10, smoke=1)
    specs = [window_spectra_spec(TASK, OPTIMIZER, LR, s, WINDOW, windows) for s in ctx.seeds]
    per_seed = [spectra_of(record) for record in ctx.executor.run(specs)]

    def median(of) -> list[float]:  # per window, over the seeds
        return [statistics.median(of(s[w]) for s in per_seed) for w in range(windows)]

    mass, top1 = median(lambda w: w.mass_in_top(TOP)), median(lambda w: w.mass_in_top(1))
    stable = median(lambda w: w.stable_rank())
    verdict = decide(mass)
    spans = [f"steps {w * WINDOW + 1}-{(w + 1) * WINDOW}" for w in range(windows)]
    summary = (
        f"{TASK} trained with Adam (lr {LR:g}); share of ||G||_F^2 in the top {TOP} of {WINDOW} "
        f"singular values of each window of {WINDOW} consecutive mini-batch gradients (median of "
        f"{len(ctx.seeds)} seeds): "
        + ", ".join(f"{s}: {m:.3f}" for s, m in zip(spans, mass, strict=True))
        + ". Top-1 share: "
        + ", ".join(f"{m:.3f}" for m in top1)
        + "; stable rank ||G||_F^2 / sigma_1^2: "
        + ", ".join(f"{r:.1f}" for r in stable)
        + "."
    )
    table = [
        {
            "window": span,
            f"top-{TOP} share": f"{m:.3f}",
            "top-1 share": f"{t:.3f}",
            "stable rank": f"{r:.1f}",
        }
        for span, m, t, r in zip(spans, mass, top1, stable, strict=True)
    ]
    numbers = {
        "top_mass": mass,
        "top1_mass": top1,
        "stable_rank": stable,
        "windows": spans,
        "per_seed_top_mass": [[s[w].mass_in_top(TOP) for w in range(windows)] for s in per_seed],
    }
    fig = Figure(figsize=(5.5, 3.6), layout="tight")
    ax = fig.subplots()
    for w, span in enumerate(spans):
        values = per_seed[0][w].singular_values.numpy()
        ax.semilogy(np.arange(1, len(values) + 1), values / values[0], label=span)
    ax.axvline(TOP, color="grey", linestyle=":")
    title = f"gradient-window spectra, {TASK} (seed {ctx.seeds[0]})"
    ax.set(xlabel="index i", ylabel="sigma_i / sigma_1", title=title)
    ax.legend(fontsize=7)
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="gradient-window-is-low-rank",
    notes=(
        "Note that this matrix has low rank, and this inverse can be computed more efficiently "
        "in terms of the following matrix."
    ),
    statement=(
        "The window of recent gradients GGT preconditions with is effectively low-rank: a few "
        "leading singular values carry most of its mass, and the spectrum changes during training."
    ),
    source="Agarwal et al., Efficient Full-Matrix Adaptive Regularization (arXiv 1806.02958)",
    criterion=(
        f"{TASK} trained with Adam at lr {LR:g} (not tuned: this is a measurement); windows of "
        f"{WINDOW} consecutive mini-batch gradients of all parameters (3 windows quick, 10 full), "
        f"the share of ||G||_F^2 carried by the top {TOP} singular values, median over >= 3 "
        f"seeds. Holds if the share is >= {MASS} in every window, does not hold if < {MASS} in "
        "every window, inconclusive otherwise. The evolution (shares, stable ranks) is reported."
    ),
    run=run,
)
