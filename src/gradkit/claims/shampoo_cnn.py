"""Claim: with Shampoo a convolutional network does away with batch normalization.

The notes: "The impressive result is that using this optimizer they are able to do away with
batch-norm layers, and optimize to 5% error on CIFAR using just convolutional layers." Doing
away with batch norm is judged against the network trained the usual way, with batch norm and
momentum SGD: Shampoo without it must not lose test accuracy to that. The train losses and the
cost per run are reported, and at smoke and full scale Adam and momentum SGD without batch norm."""

from __future__ import annotations

import statistics

from gradkit.claims import base
from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.experiments import Budget, LrRange, Method, Metric, training
from gradkit.experiments import stats as st
from gradkit.report.figures import seeds_figure

PROBLEMS = ("mnist1d-cnn", "digits-cnn")
WITH_BN = Method("msgd-bn", "SGD+momentum, with batch norm", LrRange(0.0215, 1.0), "msgd")
"""The usual way to train the network: batch norm after each convolution, momentum SGD."""
JUDGED = (Method("shampoo", "Shampoo", LrRange(0.0215, 1.0)), WITH_BN)
REPORTED = (
    Method("adam", "Adam", LrRange(0.00215, 0.1)),
    Method("msgd", "SGD+momentum", LrRange(0.0215, 1.0)),
)
"""Without batch norm, reported beside the judged pair; they run at smoke and full scale only."""
UNRUN = "Adam and momentum SGD without batch norm (each lr searched alike)"
"""The reported arms as the quick scale's summary names them."""
METHODS = (*JUDGED, *REPORTED)
LABELS = base.labels_of(METHODS)
MARGIN = 0.02
"""Shampoo without batch norm must trail the batch-norm network's test accuracy by decidedly
less than 2 points (t-interval of the per-seed gap below 0.02)."""
BUDGET = Budget(
    smoke=1,
    quick=8,
    full=60,
    paper="CIFAR-10/100 ResNet-32 and Inception, full schedules (about 100+ epochs)",
    why="8 epochs (quick, shortened for the suite's time): test accuracy is still rising; by 15 "
    "it has nearly stopped for every method, and the full scale trains 60.",
)
TUNE_ON = Metric("test_accuracy", higher_is_better=True)  # validation accuracy on tuning runs


def problem(task: str):
    """The runs of ``task``'s network; the batch-norm baseline trains its batch-norm twin."""
    plain, with_bn = training(task), training(f"{task}-bn")

    def spec(method, lr, epochs, seed, tuning):
        runs = with_bn if method.name == WITH_BN.name else plain
        return runs(method, lr, epochs, seed, tuning)

    return spec


def decide(accuracy: dict[str, dict[str, list[float]]]) -> tuple[Verdict, dict[str, str]]:
    """Per problem, non-inferiority: the t-interval of the per-seed test-accuracy gap
    (batch-norm network with momentum SGD) - (Shampoo without batch norm) lies below
    :data:`MARGIN` (YES) or at or above it (NO). Holds if YES on every problem, does not hold
    if NO on some, inconclusive otherwise."""
    gaps = {p: st.paired_interval(a[WITH_BN.name], a["shampoo"]) for p, a in accuracy.items()}
    return base.judged({p: st.less(gap, MARGIN) for p, gap in gaps.items()})


def seconds(outcome) -> float:
    """The median wall-clock seconds of a method's runs."""
    return statistics.median(r.seconds for r in outcome.runs)


def run(ctx: RunContext) -> ClaimResult:
    epochs = BUDGET.at(ctx.scale)
    problems = {p: problem(p) for p in PROBLEMS}
    outcomes = ctx.compare(problems, JUDGED, epochs, TUNE_ON)
    ctx.settle(outcomes, lambda o: decide(base.per_seed(o, "test_accuracy"))[0])
    ctx.add_reported(outcomes, problems, REPORTED, epochs, TUNE_ON)
    values = {metric: base.per_seed(outcomes, metric) for metric in base.TRAINING_METRICS}
    verdict, decisions = decide(values["test_accuracy"])
    gaps = {
        p: st.paired_interval(a[WITH_BN.name], a["shampoo"])
        for p, a in values["test_accuracy"].items()
    }
    medians = "; ".join(
        f"{p}: "
        + ", ".join(
            f"{LABELS[m]} {o.median('test_accuracy'):.3f} / {o.median('train_loss'):.3f}"
            for m, o in per.items()
        )
        + f" (with batch norm - Shampoo {100 * gaps[p].mean:+.1f} points "
        f"[{100 * gaps[p].low:+.1f}, {100 * gaps[p].high:+.1f}]: below "
        f"{100 * MARGIN:.0f}: {decisions[p]})"
        for p, per in outcomes.items()
    )
    summary = (
        f"CNNs, {epochs} epochs at each method's tuned lr ({len(ctx.seeds)} seeds), median test "
        f"accuracy / final train loss: {medians}."
        + ("" if ctx.reports_extras else base.full_scale_only(UNRUN))
        + base.search_notes(outcomes)
    )
    per_run = {p: {m: seconds(o) for m, o in per.items()} for p, per in outcomes.items()}
    numbers = base.comparison_numbers(
        ctx, BUDGET, outcomes, epochs=epochs, **values, seconds_per_run=per_run,
        shampoo_does_away_with_batch_norm=decisions,
    )  # fmt: skip
    cells = {**base.TRAINING_CELLS, "seconds per run": lambda o: f"{seconds(o):.1f}"}
    table = base.outcome_table(outcomes, LABELS, cells)
    ran = [m.name for m in METHODS if m.name in outcomes[PROBLEMS[0]]]
    fig = seeds_figure(values, base.TRAINING_METRICS, LABELS, ran)
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="shampoo-trains-without-batchnorm",
    notes=(
        "The impressive result is that using this optimizer they are able to do away with "
        "batch-norm layers, and optimize to 5% error on CIFAR using just convolutional layers."
    ),
    statement=(
        "With Shampoo a convolutional network can 'do away with batch-norm layers' (the notes): "
        "trained without them, it reaches the accuracy of the same network with batch norm "
        "trained the usual way."
    ),
    source="Gupta, Koren & Singer, Shampoo, ICML 2018 (arXiv 1802.09568)",
    criterion=(
        "The mnist1d 1-D CNN and the digits 2-D CNN, each without batch norm (Shampoo, momentum "
        "0.9, epsilon 1e-4, roots every 10 steps; Adam; momentum SGD 0.9) and with batch norm "
        "after each convolution (momentum SGD 0.9, the usual way); each method's lr searched in "
        "its own range (3 points per decade, successive halving, the choice a local optimum at "
        "the full budget on three tuning seeds) by validation accuracy; then >= 3 seeds, equal "
        "epochs. Per problem, non-inferiority: the t-interval of the per-seed test-accuracy gap "
        f"(with batch norm - Shampoo) must lie below {100 * MARGIN:.0f} points. Holds if it does "
        "on both problems; does not hold if it lies at or above on either; inconclusive "
        "otherwise. Reported, not judged: train losses and seconds per run, and at smoke and "
        "full scale Adam and momentum SGD without batch norm."
    ),
    run=run,
)
