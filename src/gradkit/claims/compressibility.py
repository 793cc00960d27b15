"""Claim: the trained (noise-stable) network is compressible: most of its weights can go while
its outputs barely change (the notes, from Arora, Ge, Neyshabur & Zhang, ICML 2018).

The notes: 'You can then use this "noise stability" to prove that neural network is
compressible — throwing out a lot of the weights is possible without changing numerics much.'
Judged, both fixed from that sentence before any run: "a lot of the weights" read as most of
them (KEPT: the compressed net keeps less than half the parameter count), "without
changing numerics much" as the train accuracy within TOLERANCE of the uncompressed net's.
Reported, not judged (the paper's, not the notes'): the net trained on random labels needs
more parameters."""

from __future__ import annotations

import math
import statistics

from matplotlib.figure import Figure

from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict, judged, per_seed
from gradkit.experiments import stability_outcomes
from gradkit.experiments import stats as st

RELATIVE = 0.1  # the noise of the runs trained-nets-are-noise-stable probes (shared runs)
TOLERANCE = 0.01
"""'without changing numerics much': the compressed net's train accuracy may lose at most 1
point (the run kind's default); the paper's bound keeps the training margin loss, i.e. the
training classifications, nearly unchanged."""
KEPT = 0.5
"""'throwing out a lot of the weights': most of them; the effective parameter count of the
compressed net is below KEPT x the full count."""
FITTED = 0.99
NETS = {"true": "true labels", "random": "random labels (500 samples)"}
PROBLEM = "digits MLP"
JUDGED = ("true",)
"""The net the judged comparison reads: only it takes more seeds while undecided."""


def fitted(accuracy: list[float]) -> bool:
    return all(a >= FITTED for a in accuracy)


def decide(parameters: dict[str, list[float]], total: float, accuracy: dict[str, list[float]]):
    """Per seed, the effective parameter count of the smallest common SVD rank that keeps the
    net's train accuracy within TOLERANCE (``total``, the full count, if none does). Holds if
    the t-interval of log(count_true / total) - log KEPT lies below 0; does not hold if it lies
    at or above 0; inconclusive otherwise or if the true-label net did not fit its labels (train
    accuracy < FITTED). Returns the verdict and the judged decision."""
    if not fitted(accuracy["true"]):
        return Verdict.INCONCLUSIVE, {f"true-label net fitted (train accuracy >= {FITTED:g})": "no"}
    kept = st.logs([count / total for count in parameters["true"]])
    interval = st.paired_interval(kept, [math.log(KEPT)] * len(kept))
    return judged({f"keeps less than {KEPT:g} of the weights": st.less(interval)})


def reported(parameters: dict[str, list[float]], accuracy: dict[str, list[float]]) -> str:
    """The paper's comparison, not judged: log(count_true / count_random) on the seeds both
    ran, or why it means nothing (the random-label net did not fit its labels)."""
    if not fitted(accuracy["random"]):
        return "not compared: the random-label net did not fit its labels"
    true, random = st.common_seeds(st.logs(parameters["true"]), st.logs(parameters["random"]))
    interval = st.paired_interval(true, random)
    return f"log(count_true / count_random) {interval}, {st.less(interval).value}"


def run(ctx: RunContext) -> ClaimResult:
    outcomes = {PROBLEM: stability_outcomes(ctx.executor, NETS, ctx.seeds, ctx.scale, RELATIVE)}
    total = outcomes[PROBLEM]["true"].runs[0].metric("parameters")

    def judge(o) -> Verdict:
        values = per_seed(o, "svd_parameters")[PROBLEM]
        return decide(values, total, per_seed(o, "train_accuracy")[PROBLEM])[0]

    ctx.settle({PROBLEM: {n: outcomes[PROBLEM][n] for n in JUDGED}}, judge)  # random: reported
    parameters = per_seed(outcomes, "svd_parameters")[PROBLEM]
    accuracy = per_seed(outcomes, "train_accuracy")[PROBLEM]
    verdict, decisions = decide(parameters, total, accuracy)
    random_labels = reported(parameters, accuracy)
    kept = {n: statistics.median(v) / total for n, v in parameters.items()}
    uncompressed = {n: sum(v >= total for v in values) for n, values in parameters.items()}
    summary = (
        "digits MLP 64-256x4-10 trained on true labels (and, reported, on 500 samples with "
        "random labels); the smallest common SVD rank (1, 2, 4, ..., 256) keeping train "
        f"accuracy within {TOLERANCE:g}, as effective parameters (median of {len(ctx.seeds)} "
        f"seeds{random_seeds(parameters['random'], ctx.seeds)}): "
        + ", ".join(
            f"{NETS[n]} {statistics.median(v):.0f} ({kept[n]:.0%})" for n, v in parameters.items()
        )
        + f" of {total:.0f}; no rank below full kept the accuracy on "
        + ", ".join(
            f"{u} of {len(parameters[n])} seeds ({n} labels)" for n, u in uncompressed.items()
        )
        + ". Decisions: "
        + ", ".join(f"{k} {v}" for k, v in decisions.items())
        + f". Reported, not judged (the paper's, not the notes'): {random_labels}."
    )
    table = [
        {
            "net": NETS[n],
            "train accuracy": f"{statistics.median(accuracy[n]):.3f}",
            "effective parameters per seed": ", ".join(f"{v:.0f}" for v in parameters[n]),
            "kept (median)": f"{kept[n]:.1%}",
        }
        for n in NETS
    ]
    numbers = {"tolerance": TOLERANCE, "kept_at_most": KEPT, "parameters": total,
               "svd_parameters": parameters, "train_accuracy": accuracy,
               "decisions": decisions, "reported_random_labels": random_labels}  # fmt: skip
    return ClaimResult(verdict, summary, numbers, table, figure(outcomes[PROBLEM], total))


def random_seeds(values: list[float], seeds: list[int]) -> str:
    """The random-label net's seed count where settling left it behind the true-label net's."""
    return "" if len(values) == len(seeds) else f", the random-label net {len(values)}"


def figure(per_net, total: float) -> Figure:
    """Train accuracy over the effective parameter count of each rank tried, every seed."""
    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.subplots()
    for colour, (n, outcome) in enumerate(per_net.items()):
        for i, r in enumerate(outcome.runs):
            label = None if i else NETS[n]
            ax.plot(*r.curve("compression"), "o-", color=f"C{colour}", alpha=0.6, label=label)
    ax.axvline(KEPT * total, color="grey", linestyle=":", label=f"{KEPT:g} of the weights")
    ax.set(xscale="log", xlabel="effective parameters (SVD, common rank)", ylabel="train accuracy")
    ax.legend(fontsize=7)
    return fig


CLAIM = Claim(
    id="noise-stability-means-compressible",
    notes=(
        'You can then use this "noise stability" to prove that neural network is compressible —'
        " throwing out a lot of the weights is possible without changing numerics much."
    ),
    statement=(
        "A network trained on true labels (noise-stable) is compressible: most of its "
        "weights can be thrown out with its train accuracy nearly unchanged."
    ),
    source="Arora, Ge, Neyshabur & Zhang, Stronger generalization bounds for deep nets via a "
    "compression approach, ICML 2018 (arXiv 1802.05296)",
    criterion=(
        "The nets of trained-nets-are-noise-stable (digits MLP 64-256x4-10, He-normal init, "
        "Adam lr 1e-3: true labels 30 epochs, and, reported, 500 samples with permuted labels "
        f"150 epochs; the true-label net must reach train accuracy >= {FITTED:g}, the other too "
        "for its comparison to be reported). Every weight truncated to "
        "a common SVD rank r in 1, 2, 4, ..., 256; the smallest r keeping train accuracy within "
        f"{TOLERANCE:g} ('without changing numerics much') gives the effective parameter count "
        "r (m + n + 1) per layer plus biases (the full count if none does). >= 3 seeds, more "
        "for the true-label net while undecided (settled). Holds if the t-interval of its "
        "per-seed "
        f"log(count / full count) lies below log {KEPT:g} ('throwing out a lot of the weights': "
        "most of them), does not hold if it lies at or above it, inconclusive otherwise or if "
        "the net did not fit. Reported, not judged (beyond the notes: the paper's): "
        "log(count_true / count_random). Matrix-Project (gradkit.analysis.matrix_project) is "
        "not used here: at these sizes it needs k ~ m n projections per layer."
    ),
    run=run,
)
