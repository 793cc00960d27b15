"""Claim: a trained network rejects noise injected at an intermediate layer: a few layers
down, the noise is attenuated, and more than in the untrained network (the notes, from Arora,
Ge, Neyshabur & Zhang, ICML 2018).

The notes: 'Basically trained neural net will "reject" Gaussian noise injected at intermediate
layers — a few layers down the road, injected noise is attenuated and original activations are
mostly unchanged.' and, contrasting the untrained net: 'Note that while noise stability in
trained network implies generalization, you want the opposite of noise stability in your
untrained network. All perturbations should propagate without attenuation.' Judged: r_true <
RELATIVE (attenuated) and r_true < r_init (the trained net, not the untrained one, rejects the
noise: the notes oppose the two). Reported, not judged: r_true < r_random (the paper's
comparison with random labels, not the notes')."""

from __future__ import annotations

import statistics

from matplotlib.figure import Figure

from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict, judged, per_seed
from gradkit.experiments import stability_outcomes
from gradkit.experiments import stats as st

RELATIVE = 0.1
NETS = {"true": "true labels", "random": "random labels (500 samples)", "init": "at initialisation"}
PROBLEM = "digits MLP"
JUDGED = ("true", "init")
"""The nets the judged comparisons read: only they take more seeds while undecided."""
FITTED = 0.99
"""A trained net must reach this train accuracy for its comparisons to mean anything."""


def fitted(accuracy: list[float]) -> bool:
    return all(a >= FITTED for a in accuracy)


def decide(attenuation: dict[str, list[float]], accuracy: dict[str, list[float]]):
    """Per-seed r (median at the logits of noise RELATIVE x ||x|| injected at the first layer).
    Holds if the t-intervals of log(r_true / RELATIVE) and log(r_true / r_init) both lie below
    0; does not hold if either lies at or above 0; inconclusive otherwise, or if the true-label
    net did not fit its labels (train accuracy < FITTED). Returns the verdict and the judged
    decisions."""
    if not fitted(accuracy["true"]):
        return Verdict.INCONCLUSIVE, {f"true-label net fitted (train accuracy >= {FITTED:g})": "no"}
    true = st.logs(attenuation["true"])
    return judged(
        {
            "attenuates": st.less(st.paired_interval(true, st.logs([RELATIVE] * len(true)))),
            "less at initialisation": st.less(
                st.paired_interval(true, st.logs(attenuation["init"]))
            ),
        }
    )


def reported(attenuation: dict[str, list[float]], accuracy: dict[str, list[float]]) -> str:
    """The paper's comparison, not judged: the interval of log(r_true / r_random) on the seeds
    both ran, or why it means nothing (the random-label net did not fit its labels)."""
    if not fitted(accuracy["random"]):
        return "not compared: the random-label net did not fit its labels"
    true, random = st.common_seeds(st.logs(attenuation["true"]), st.logs(attenuation["random"]))
    interval = st.paired_interval(true, random)
    return f"log(r_true / r_random) {interval}, {st.less(interval).value}"


def run(ctx: RunContext) -> ClaimResult:
    outcomes = {PROBLEM: stability_outcomes(ctx.executor, NETS, ctx.seeds, ctx.scale, RELATIVE)}

    def judge(o) -> Verdict:
        return decide(per_seed(o, "attenuation")[PROBLEM], per_seed(o, "train_accuracy")[PROBLEM])[
            0
        ]

    ctx.settle({PROBLEM: {n: outcomes[PROBLEM][n] for n in JUDGED}}, judge)  # random: reported
    per_net = {n: o.runs for n, o in outcomes[PROBLEM].items()}
    attenuation = per_seed(outcomes, "attenuation")[PROBLEM]
    accuracy = per_seed(outcomes, "train_accuracy")[PROBLEM]
    verdict, checks = decide(attenuation, accuracy)
    random_labels = reported(attenuation, accuracy)
    epochs = {n: o.budget if n != "init" else 0 for n, o in outcomes[PROBLEM].items()}
    summary = (
        f"digits MLP 64-256x4-10 (ReLU); noise {RELATIVE:g} x ||x|| injected at the first layer, "
        f"median relative perturbation at the logits on held-out inputs, median of "
        f"{len(ctx.seeds)} seeds{random_seeds(attenuation['random'], ctx.seeds)}: "
        + ", ".join(f"{NETS[n]} {statistics.median(v):.3g}" for n, v in attenuation.items())
        + " (train accuracy "
        + ", ".join(f"{n} {statistics.median(accuracy[n]):.3f}" for n in ("true", "random"))
        + "). Decisions: "
        + ", ".join(f"{k} {v}" for k, v in checks.items())
        + f". Reported, not judged (the paper's, not the notes'): {random_labels}."
    )
    table = [
        {
            "net": NETS[n],
            "epochs": epochs[n],
            "train accuracy": f"{statistics.median(accuracy[n]):.3f}",
            "r at the logits per seed": ", ".join(f"{v:.3g}" for v in attenuation[n]),
            "median layer cushion": f"{median(per_net[n], 'cushion'):.3f}",
            "mean stable rank": f"{median(per_net[n], 'stable_rank'):.1f}",
        }
        for n in NETS
    ]
    numbers = {"relative_noise": RELATIVE, "epochs": epochs, "attenuation": attenuation,
               "train_accuracy": accuracy, "checks": checks,
               "reported_random_labels": random_labels}  # fmt: skip
    return ClaimResult(verdict, summary, numbers, table, figure(per_net, ctx.seeds[0]))


def random_seeds(values: list[float], seeds: list[int]) -> str:
    """The random-label net's seed count where settling left it behind the judged nets'."""
    return "" if len(values) == len(seeds) else f" (the random-label net {len(values)})"


def median(records, metric: str) -> float:
    return statistics.median(r.metric(metric) for r in records)


def figure(per_net, seed: int) -> Figure:
    """Median r per layer after the injection, and each layer's stable rank (seed ``seed``)."""
    fig = Figure(figsize=(10, 4), layout="tight")
    left, right = axes = fig.subplots(1, 2)
    for n, rs in per_net.items():
        for ax, curve in zip(axes, ("attenuation", "stable_rank"), strict=True):
            ax.plot(*rs[0].curve(curve), "o-", label=NETS[n])
    left.set(yscale="log", xlabel="layer (0 = where the noise enters)", ylabel="median r")
    left.set_title(f"noise {RELATIVE:g} x ||x|| at the first layer (seed {seed})", fontsize=9)
    right.set(xlabel="layer", ylabel="stable rank ||W||_F^2 / ||W||_2^2")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig


CLAIM = Claim(
    id="trained-nets-are-noise-stable",
    notes=(
        'Basically trained neural net will "reject" Gaussian noise injected at intermediate '
        "layers — a few layers down the road, injected noise is attenuated and original "
        "activations are mostly unchanged."
    ),
    statement=(
        "Noise injected into a trained network attenuates as it propagates to the output, and "
        "more than in the untrained network (where, the notes say, perturbations should "
        "propagate without attenuation)."
    ),
    source="Arora, Ge, Neyshabur & Zhang, Stronger generalization bounds for deep nets via a "
    "compression approach, ICML 2018 (arXiv 1802.05296)",
    criterion=(
        "The digits MLP 64-256-256-256-256-10 (ReLU, He-normal init) trained with Adam (lr 1e-3, "
        "batch 64) on the true labels (30 epochs), untrained, and (reported) on 500 samples "
        "with permuted labels (150 epochs); not a tuned comparison (the trained nets only have "
        f"to fit their labels, train accuracy >= {FITTED:g}). Noise of norm {RELATIVE:g} x "
        "||x^1|| in a random Gaussian direction added to the first layer's output of each "
        "held-out input; r = median of ||x^L' - x^L|| / ||x^L|| at the logits, four layers "
        "down. >= 3 seeds, more for the judged nets while undecided (settled; the "
        "random-label net keeps its first). Holds if the t-intervals of "
        f"log(r_true / {RELATIVE:g}) (the notes: the noise is attenuated) and log(r_true / "
        "r_init) (the notes oppose the trained net's noise stability to the untrained net, "
        "where 'all perturbations should propagate without attenuation') both lie below 0; "
        "does not hold if either lies at or above 0; inconclusive otherwise or if the "
        "true-label net did not fit. Reported, not judged (beyond the notes: the paper's): "
        "log(r_true / r_random), the net trained on random labels."
    ),
    run=run,
)
