"""Claim: a network trained on true labels compresses to fewer effective parameters than one
trained on random labels, at the same accuracy loss (Arora, Ge, Neyshabur & Zhang, ICML 2018)."""

from __future__ import annotations

import statistics

from matplotlib.figure import Figure

from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict, verdict_from
from gradkit.experiments import stability_runs
from gradkit.experiments import stats as st

TOLERANCE = 0.01  # the run kind's default: train accuracy the compressed net may lose
FITTED = 0.99
NETS = {"true": "true labels", "random": "random labels (500 samples)"}


def decide(parameters: dict[str, list[float]], accuracy: dict[str, list[float]]):
    """Per seed, the effective parameter count of the smallest common SVD rank that keeps each
    net's train accuracy within TOLERANCE. Holds if the 90% t-interval of log(true / random)
    lies below 0, does not hold if it lies at or above 0, inconclusive otherwise or if a net
    did not fit its labels (train accuracy < FITTED)."""
    if any(a < FITTED for values in accuracy.values() for a in values):
        return Verdict.INCONCLUSIVE, "a net did not fit its labels"
    interval = st.paired_interval(st.logs(parameters["true"]), st.logs(parameters["random"]))
    return verdict_from([st.less(interval)]), f"log(true / random) {interval}"


def run(ctx: RunContext) -> ClaimResult:
    per_net = stability_runs(ctx.executor, list(NETS), ctx.seeds, ctx.scale, 0.1)
    parameters = {n: [r.metric("svd_parameters") for r in rs] for n, rs in per_net.items()}
    accuracy = {n: [r.metric("train_accuracy") for r in rs] for n, rs in per_net.items()}
    verdict, interval = decide(parameters, accuracy)
    total = per_net["true"][0].metric("parameters")
    summary = (
        "digits MLP 64-256x4-10 trained on true labels and on 500 samples with random labels; "
        f"the smallest common SVD rank (1, 2, 4, ..., 256) keeping train accuracy within "
        f"{TOLERANCE:g}, as effective parameters (median of {len(ctx.seeds)} seeds): "
        + ", ".join(f"{NETS[n]} {statistics.median(v):.0f}" for n, v in parameters.items())
        + f" of {total:.0f}. {interval}."
    )
    table = [
        {
            "net": NETS[n],
            "train accuracy": f"{statistics.median(accuracy[n]):.3f}",
            "effective parameters per seed": ", ".join(f"{v:.0f}" for v in parameters[n]),
        }
        for n in NETS
    ]
    numbers = {"tolerance": TOLERANCE, "svd_parameters": parameters, "train_accuracy": accuracy}
    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.subplots()
    for colour, (n, rs) in enumerate(per_net.items()):
        for i, r in enumerate(rs):
            label = None if i else NETS[n]
            ax.plot(*r.curve("compression"), "o-", color=f"C{colour}", alpha=0.6, label=label)
    ax.set(xscale="log", xlabel="effective parameters (SVD, common rank)", ylabel="train accuracy")
    ax.legend(fontsize=7)
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="noise-stability-means-compressible",
    notes=(
        'You can then use this "noise stability" to prove that neural network is compressible —'
        " throwing out a lot of the weights is possible without changing numerics much."
    ),
    statement=(
        "A network trained on true labels (noise-stable) compresses to fewer effective "
        "parameters than one trained on random labels, at the same loss of accuracy."
    ),
    source="Arora, Ge, Neyshabur & Zhang, Stronger generalization bounds for deep nets via a "
    "compression approach, ICML 2018 (arXiv 1802.05296)",
    criterion=(
        "The nets of trained-nets-are-noise-stable (digits MLP 64-256x4-10, He-normal init, "
        "Adam lr 1e-3: true labels 30 epochs, 500 samples with permuted labels 150 epochs; "
        f"each must reach train accuracy >= {FITTED:g}). Every weight truncated to a common SVD "
        "rank r in 1, 2, 4, ..., 256; the smallest r keeping train accuracy within "
        f"{TOLERANCE:g} gives the effective parameter count r (m + n + 1) per layer plus biases "
        "(the full count if none does). >= 3 seeds. Holds if the 90% t-interval of the per-seed "
        "log(count_true / count_random) lies below 0, does not hold if it lies at or above 0, "
        "inconclusive otherwise. Matrix-Project (gradkit.analysis.matrix_project) is not used "
        "here: at these sizes it needs k ~ m n projections per layer."
    ),
    run=run,
)
