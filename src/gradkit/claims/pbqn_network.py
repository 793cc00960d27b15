"""Claim: progressive-batching L-BFGS trains a small convolutional network to a training loss
comparable to Adam's per epoch (Bollapragada et al. 2018).

Beyond the notes: they say only that the test and the stochastic line search "seem useful on
their own", nothing about networks. The paper's abstract says the method "performs well on
training logistic regression and deep neural networks" (the reference reads its CIFAR-10 runs as
a training loss comparable to Adam's per epoch, unverified). "Comparable" is read as PBQN's
final training loss below COMPARABLE x Adam's (a non-inferiority margin fixed before running;
the paper states none); PBQN runs at the paper's theta, Adam at its tuned rate."""

from __future__ import annotations

import math
import statistics

from gradkit.claims.base import (
    Claim,
    ClaimResult,
    RunContext,
    Verdict,
    fixed_outcomes,
    search_notes,
    verdict_from,
)
from gradkit.experiments import Budget, LrRange, Method, Metric, training
from gradkit.experiments import stats as st
from gradkit.report.figures import Panel, curves_figure

TASK = "digits-cnn"
PAPER_THETA = 0.9  # PBQN as train() builds it: first sample the task's batch (32), memory 10
COMPARABLE = 2.0
"""PBQN's final training loss is comparable if it is below COMPARABLE x Adam's."""
PBQN = Method("pbqn", f"PBQN (theta {PAPER_THETA})", LrRange(PAPER_THETA, PAPER_THETA))
ADAM = Method("adam", "Adam", LrRange(0.00215, 0.1))
LABELS = {m.name: m.label for m in (PBQN, ADAM)}
BUDGET = Budget(
    smoke=1,
    quick=10,
    full=30,
    paper="CIFAR-10 CNNs, training loss per epoch over tens of epochs",
    why="Adam's training loss on the digits CNN falls by two orders of magnitude within 10 "
    "epochs, so a method that is not comparable per epoch shows it there.",
    unit="epochs of per-sample gradients",
)
TUNE_ON = Metric("train_loss")


def decide(loss: dict[str, list[float]]) -> tuple[Verdict, str]:
    """The t-interval of the per-seed log(PBQN's final train loss / Adam's): holds if it lies
    below log COMPARABLE, does not hold if it lies at or above it, inconclusive otherwise.
    Returns the verdict and the interval."""
    interval = st.paired_interval(st.logs(loss["pbqn"]), st.logs(loss["adam"]))
    verdict = verdict_from([st.less(interval, math.log(COMPARABLE))])
    return verdict, str(interval)


def losses(outcomes) -> dict[str, list[float]]:
    """Each method's per-seed final train loss."""
    return {m: o.values("train_loss") for m, o in outcomes.items()}


def run(ctx: RunContext) -> ClaimResult:
    epochs = BUDGET.at(ctx.scale)
    runs = training(TASK)
    tuned = ctx.compare({TASK: runs}, (ADAM,), epochs, TUNE_ON)
    paper = fixed_outcomes(
        ctx,
        lambda method, lr, budget, seed, tuning: runs(method, None, budget, seed, tuning),
        (PBQN,),
        {"pbqn": PAPER_THETA},
        epochs,
    )  # theta is PBQN's own setting, not a learning rate: train() builds it
    outcomes = {"pbqn": paper["pbqn"], **tuned[TASK]}
    ctx.settle({TASK: outcomes}, lambda o: decide(losses(o[TASK]))[0])
    pbqn, adam = outcomes.values()
    loss = losses(outcomes)
    verdict, interval = decide(loss)
    batches = [r.curve("batch_size")[1][-1] for r in pbqn.runs]
    summary = (
        f"{TASK}, {epochs} epochs (PBQN's counted in per-sample gradients), median of "
        f"{len(ctx.seeds)} seeds: final train loss PBQN {pbqn.median('train_loss'):.4f} (last "
        f"batch {statistics.median(batches):.0f} of the training set), Adam (lr {adam.lr:.3g}) "
        f"{adam.median('train_loss'):.4f}; test accuracy {pbqn.median('test_accuracy'):.3f} vs "
        f"{adam.median('test_accuracy'):.3f}. log(PBQN loss / Adam loss) per seed: {interval} "
        f"(comparable: below log {COMPARABLE:g})." + search_notes(tuned)
    )
    table = [
        {"method": LABELS[m], "lr": "" if o is pbqn else f"{o.lr:.3g}",
         "train loss per seed": ", ".join(f"{v:.4f}" for v in loss[m]),
         "test accuracy (median)": f"{o.median('test_accuracy'):.3f}",
         "seconds per run": f"{statistics.median(r.seconds for r in o.runs):.1f}"}
        for m, o in outcomes.items()
    ]  # fmt: skip
    numbers = {"setting": BUDGET.describe(ctx.scale), "epochs": epochs, "train_loss": loss,
               "test_accuracy": {m: o.values("test_accuracy") for m, o in outcomes.items()},
               "pbqn_last_batch": batches, "adam_lr": adam.lr,
               "log_loss_ratio": interval}  # fmt: skip
    panels = [
        Panel(TASK, "train_loss", "epoch", "train loss"),
        Panel(TASK, "batch_size", "iteration", "batch size", title="PBQN's batch",
              methods=("pbqn",)),
        Panel(TASK, "step_size", "iteration", "accepted step", title="PBQN's accepted steps",
              methods=("pbqn",)),
    ]  # fmt: skip
    fig = curves_figure({TASK: outcomes}, list(LABELS), panels, LABELS, {"pbqn": ""})
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="pbqn-on-a-small-network",
    notes=(
        "The algorithm seemed quite complex to describe, but I think the two contributions seem"
        " useful on their own:"
    ),
    statement="Progressive-batching L-BFGS trains a convolutional network to a training loss "
    "comparable to Adam's per epoch.",
    source="Bollapragada, Mudigere, Nocedal, Shi & Tang, ICML 2018 (arXiv 1802.05374)",
    criterion="Beyond the notes (they call the test and the stochastic line search useful, nothing "
    "about networks): the paper's 'performs well on training ... deep neural networks'. "
    f"The digits 2-D CNN, {BUDGET.quick} epochs (quick) of per-sample gradients. PBQN "
    f"as the paper sets it (theta {PAPER_THETA}, memory 10, 25% overlap, stochastic Armijo "
    "search; first sample the task's batch, 32), not tuned; Adam with its lr searched in its own "
    "range (3 points per decade, widened at the edges, successive halving, the choice a local "
    "optimum at the full budget on three tuning seeds) by the tuning runs' train loss; then >= 3 "
    "seeds, more while undecided. Holds if the t-interval of the per-seed log(PBQN's final "
    f"train loss / Adam's) lies below log {COMPARABLE:g} (comparable: gradkit's margin, fixed "
    "before running; the paper gives none), does not hold if it lies at or above it, "
    "inconclusive otherwise. Test accuracy and PBQN's batch are reported.",
    run=run,
)
