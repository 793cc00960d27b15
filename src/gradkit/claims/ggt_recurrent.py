"""Claim: GGT helps a recurrent model more than a convolutional one, whose gradients are better
conditioned.

The notes: GGT got "significantly better results on RNN tasks like PTB", and "the improvement
seems more marginal for CIFAR-10". Judged, both parts able to fail the claim: GGT's gain over
Adam (train loss at equal epochs) on the GRU lies above 0 and above its gain on the CNN. The
notes' "outperforming baselines in wall-clock time" is not measured (equal epochs, not equal
seconds); the gradient windows' conditioning is reported."""

from __future__ import annotations

import math
import statistics

from gradkit.claims import base
from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
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
REPORTED = tuple(m for m in METHODS if m.name not in ("adam", JUDGED))
"""Searched and run at smoke and full scale only, on the seeds the judged comparison settled
on."""
SKIPPED_AT_QUICK = "GGT with a window per parameter tensor (gradkit's default), its lr searched"
LABELS = base.labels_of(METHODS)
WINDOW, TOP = 200, 10
BUDGET = Budget(
    smoke=1,
    quick=8,
    full=60,
    paper="PTB 3-layer LSTM and CIFAR-10 ResNet-26, full schedules; training loss per iteration",
    why="8 epochs (quick; the tasks' default is 20) keep the quick suite within its time; the "
    "claim compares training-loss gains, visible from the first epochs; the full scale trains "
    "60.",
)
TUNE_ON = Metric("train_loss")


def gains(loss: dict[str, dict[str, list[float]]], ggt: str = JUDGED) -> dict[str, list[float]]:
    """Per seed, log(Adam's final train loss / GGT's): > 0 where GGT trains further."""
    return {
        p: [math.log(a / g) for a, g in zip(per["adam"], per[ggt], strict=True)]
        for p, per in loss.items()
    }


def decide(loss: dict[str, dict[str, list[float]]]) -> tuple[Verdict, dict[str, str]]:
    """With per-seed log gains of the paper's GGT over Adam: holds if the t-interval of
    (GRU gain - CNN gain) lies above 0 and that of the GRU gain lies above 0; does not hold if
    either lies at or below 0 (the notes state both: better results on the RNN task, more
    marginal on the CNN); inconclusive otherwise."""
    rnn, cnn = (gains(loss)[p] for p in PROBLEMS)
    more = st.greater(st.paired_interval(rnn, cnn))
    helps = st.greater(st.paired_interval(rnn, [0.0] * len(rnn)))
    decisions = {"gru_gain_exceeds_cnn_gain": more, "ggt_helps_gru": helps}
    return base.judged(decisions)


def run(ctx: RunContext) -> ClaimResult:
    epochs = BUDGET.at(ctx.scale)
    problems = {p: training(p) for p in PROBLEMS}
    compared = [m for m in METHODS if m not in REPORTED]
    outcomes = ctx.compare(problems, compared, epochs, TUNE_ON)
    ctx.settle(outcomes, lambda o: decide(base.per_seed(o, "train_loss"))[0])
    ctx.add_reported(outcomes, problems, REPORTED, epochs, TUNE_ON)
    ran = list(outcomes[next(iter(PROBLEMS))])
    loss = base.per_seed(outcomes, "train_loss")
    verdict, details = decide(loss)
    gain = {name: gains(loss, name) for name in ran if name != "adam"}
    windows = [
        window_spectra_spec(p, "adam", outcomes[p]["adam"].lr, ctx.seeds[0], WINDOW, 1)
        for p in PROBLEMS
    ]
    spectra = [spectra_of(record)[0] for record in ctx.executor.run(windows)]
    top = {p: s.mass_in_top(TOP) for p, s in zip(PROBLEMS, spectra, strict=True)}
    stable = {p: s.stable_rank() for p, s in zip(PROBLEMS, spectra, strict=True)}
    medians = "; ".join(
        f"{p}: " + " / ".join(f"{o.median('train_loss'):.3f}" for o in per.values())
        for p, per in outcomes.items()
    )
    mean_gains = "; ".join(
        f"{LABELS[n]} " + " vs ".join(f"{statistics.fmean(g[p]):+.2f}" for p in PROBLEMS)
        for n, g in gain.items()
    )
    summary = (
        f"{epochs} epochs at tuned lrs ({len(ctx.seeds)} seeds), median final train loss "
        f"{' / '.join(LABELS[m] for m in ran)}: {medians}. Mean log gain over "
        f"Adam, GRU vs CNN: {mean_gains}. GRU gain exceeds CNN gain (the paper's GGT): "
        f"{details['gru_gain_exceeds_cnn_gain']}; it helps the GRU: {details['ggt_helps_gru']}. "
        f"Window of the first {WINDOW} Adam gradients (seed {ctx.seeds[0]}): top-{TOP} share "
        f"{base.listed(top, '.3f')}; stable rank {base.listed(stable, '.1f')}."
        + ("" if ctx.reports_extras else base.full_scale_only(SKIPPED_AT_QUICK))
        + base.search_notes(outcomes)
    )
    numbers = base.comparison_numbers(
        ctx, BUDGET, outcomes, epochs=epochs, train_loss=loss, log_gain_per_seed=gain, **details
    )
    numbers |= {"window_top_mass": top, "window_stable_rank": stable}
    table = base.outcome_table(outcomes, LABELS, base.TRAINING_CELLS)
    fig = seeds_figure({"train_loss": loss}, {"train_loss": "final train loss"}, LABELS, ran)
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="ggt-helps-recurrent-more",
    notes=(
        "They got significantly better results on RNN tasks like PTB, outperforming baselines "
        "in wall-clock time. The improvement seems more marginal for CIFAR-10, they hypothesize"
        ' that RNN task was "more nonlinear" so had more to gain from second order '
        "preconditioning."
    ),
    statement=(
        "GGT's gain over Adam is larger on a recurrent model than on a convolutional one; "
        "recurrent gradients are much worse conditioned."
    ),
    source="Agarwal et al., Efficient Full-Matrix Adaptive Regularization (arXiv 1806.02958)",
    criterion=(
        "mnist1d read by a GRU vs the mnist1d 1-D CNN; Adam and GGT as in the paper (one "
        "window of the last 200 gradients of all parameters, betas 0.9/1, eps 1e-4); each "
        "method's lr searched in its own range (3 points per decade, widened at the edges, "
        "successive halving, the choice a local optimum at the full budget on three tuning "
        "seeds) by the tuning runs' train loss; then >= 3 seeds, more while undecided. Gain per "
        "seed = log(Adam's final train loss / GGT's) at equal epochs. Holds if the t-interval "
        "of (GRU gain - CNN gain) lies above 0 and that of the GRU gain lies above 0; does not "
        "hold if either lies at or below 0; inconclusive otherwise. GGT with a window per "
        "parameter tensor (gradkit's default) is run at smoke and full scale (its lr searched, "
        "on the seeds the judged comparison settled on) and reported, not judged; so is the "
        "spectrum of a 200-gradient window (top-10 share, stable rank) of each model. The "
        "notes' wall-clock comparison is not measured."
    ),
    run=run,
)
