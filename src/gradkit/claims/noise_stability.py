"""Claim: injected noise attenuates along depth in a trained network, less in one trained on
random labels and less at initialisation (Arora, Ge, Neyshabur & Zhang, ICML 2018)."""

from __future__ import annotations

import statistics

from matplotlib.figure import Figure

from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict, judged
from gradkit.experiments import stability_epochs, stability_runs
from gradkit.experiments import stats as st

RELATIVE = 0.1
NETS = {"true": "true labels", "random": "random labels (500 samples)", "init": "at initialisation"}
FITTED = 0.99
"""The trained nets must reach this train accuracy for the comparison to mean anything."""


def decide(attenuation: dict[str, list[float]], accuracy: dict[str, list[float]]):
    """Per-seed r (median at the logits of noise RELATIVE x ||x|| injected at the first layer).
    Holds if the 90% t-intervals of log(r_true / RELATIVE), log(r_true / r_random) and
    log(r_true / r_init) all lie below 0; does not hold if any lies at or above 0; inconclusive
    otherwise, or if a trained net did not fit its labels (train accuracy < FITTED)."""
    if any(a < FITTED for net in ("true", "random") for a in accuracy[net]):
        return Verdict.INCONCLUSIVE, {"fitted": "no"}
    logs = {net: st.logs(values) for net, values in attenuation.items()}
    true = logs["true"]
    checks = {
        "attenuates": st.less(st.paired_interval(true, st.logs([RELATIVE] * len(true)))),
        "less with random labels": st.less(st.paired_interval(true, logs["random"])),
        "less at initialisation": st.less(st.paired_interval(true, logs["init"])),
    }
    return judged(checks)


def median(records, metric: str) -> float:
    return statistics.median(r.metric(metric) for r in records)


def run(ctx: RunContext) -> ClaimResult:
    per_net = stability_runs(ctx.executor, list(NETS), ctx.seeds, ctx.scale, RELATIVE)
    epochs = {n: stability_epochs(n, ctx.scale) if n != "init" else 0 for n in NETS}
    attenuation = {net: [r.metric("attenuation") for r in rs] for net, rs in per_net.items()}
    accuracy = {net: [r.metric("train_accuracy") for r in rs] for net, rs in per_net.items()}
    verdict, checks = decide(attenuation, accuracy)
    summary = (
        f"digits MLP 64-256x4-10 (ReLU); noise {RELATIVE:g} x ||x|| injected at the first layer, "
        f"median relative perturbation at the logits on held-out inputs, median of "
        f"{len(ctx.seeds)} seeds: "
        + ", ".join(f"{NETS[n]} {statistics.median(v):.3g}" for n, v in attenuation.items())
        + " (train accuracy "
        + ", ".join(f"{n} {statistics.median(accuracy[n]):.3f}" for n in ("true", "random"))
        + "). Decisions: "
        + ", ".join(f"{k} {v}" for k, v in checks.items())
        + "."
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
               "train_accuracy": accuracy, "checks": checks}  # fmt: skip
    fig = Figure(figsize=(10, 4), layout="tight")
    left, right = axes = fig.subplots(1, 2)
    for n, rs in per_net.items():
        for ax, curve in zip(axes, ("attenuation", "stable_rank"), strict=True):
            ax.plot(*rs[0].curve(curve), "o-", label=NETS[n])
    left.set(yscale="log", xlabel="layer (0 = where the noise enters)", ylabel="median r")
    left.set_title(
        f"noise {RELATIVE:g} x ||x|| at the first layer (seed {ctx.seeds[0]})", fontsize=9
    )
    right.set(xlabel="layer", ylabel="stable rank ||W||_F^2 / ||W||_2^2")
    for ax in axes:
        ax.legend(fontsize=7)
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="trained-nets-are-noise-stable",
    notes=(
        'Basically trained neural net will "reject" Gaussian noise injected at intermediate '
        "layers — a few layers down the road, injected noise is attenuated and original "
        "activations are mostly unchanged."
    ),
    statement=(
        "Noise injected into a trained network attenuates as it propagates to the output; it "
        "attenuates less in a network trained on random labels and at initialisation."
    ),
    source="Arora, Ge, Neyshabur & Zhang, Stronger generalization bounds for deep nets via a "
    "compression approach, ICML 2018 (arXiv 1802.05296)",
    criterion=(
        "The digits MLP 64-256-256-256-256-10 (ReLU, He-normal init) trained with Adam (lr 1e-3, "
        "batch 64) on the true labels (30 epochs) and on 500 samples with permuted labels (150 "
        "epochs), and untrained; not a tuned comparison (each net only has to fit its labels, "
        f"train accuracy >= {FITTED:g}). Noise of norm {RELATIVE:g} x ||x^1|| in a random "
        "direction added to the first layer's output of each held-out input; r = median of "
        "||x^L' - x^L|| / ||x^L|| at the logits. >= 3 seeds. Holds if the 90% t-intervals of "
        f"log(r_true / {RELATIVE:g}), log(r_true / r_random) and log(r_true / r_init) all lie "
        "below 0; does not hold if any lies at or above 0; inconclusive otherwise or if a "
        "trained net did not fit."
    ),
    run=run,
)
