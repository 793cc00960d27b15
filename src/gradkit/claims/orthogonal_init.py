"""Claim: delta-orthogonal initialisation at criticality makes the body of a very deep vanilla
tanh CNN isometric at init (perturbations propagate without attenuation) and trains it, better
than Gaussian initialisation at the same point (the notes, from Xiao et al., ICML 2018).

The notes: 'Initializing neural nets in this way, using orthogonal matrices for fully connected
layers, and "delta-orthogonal" for conv layers, enabled training 10k layer tanh network', "this
way" being 'All perturbations should propagate without attenuation.' Judged: (1) the Jacobian
spectrum at init is flatter for delta-orthogonal than Gaussian, (2) at the deepest depth
delta-orthogonal ends with a lower training loss than Gaussian. Reported, not judged (beyond the
notes: the paper's): (3) off-critical initialisation trains worse, (4) the advantage over
Gaussian grows with depth."""

from __future__ import annotations

import statistics

import numpy as np
from matplotlib.figure import Figure

from gradkit.claims.base import (
    Claim,
    ClaimResult,
    RunContext,
    Verdict,
    comparison_numbers,
    full_scale_only,
    judged,
    per_seed,
    search_notes,
)
from gradkit.experiments import (
    Budget,
    LrRange,
    Method,
    Metric,
    deep_cnn,
    evaluation_seeds,
    init_spectra,
)
from gradkit.experiments import stats as st
from gradkit.experiments.kinds.deep_cnn import CHANNELS, INITS, Q_STAR, init_point
from gradkit.experiments.search import lattice_index, lattice_value

RATE_TIMES_DEPTH = 0.3
"""The search starts on the lattice points around 0.3 / depth: deeper nets need smaller rates
(the tuned rates of the four inits fall from ~0.05 at depth 8 to ~0.005-0.01 at depth 48)."""


def rates(depth: int) -> LrRange:
    """One lattice point either side of RATE_TIMES_DEPTH / depth, widened at the edges down to
    a decade below it and up to 1 (only the ordered init, whose signals shrink 0.5x per layer,
    wants rates above 0.1, at depth 8)."""
    centre = lattice_index(RATE_TIMES_DEPTH / depth, 3)
    low, high = lattice_value(centre - 1, 3), lattice_value(centre + 1, 3)
    return LrRange(low, high, floor=min(low, lattice_value(centre - 3, 3)), ceiling=max(high, 1.0))


LABELS = {
    "delta-orthogonal": "delta-orthogonal, critical",
    "gaussian": "Gaussian, critical",
    "ordered": "delta-orthogonal, sigma_w^2 0.5",
    "chaotic": "delta-orthogonal, sigma_w^2 2",
}


OFF_CRITICAL = ("ordered", "chaotic")
DEPTHS = {"smoke": (2, 4), "quick": (48,), "full": (8, 32, 128)}
BUDGET = Budget(
    smoke=1,
    quick=3,
    full=20,
    paper="MNIST and CIFAR-10 with thousands of SGD steps, nets up to 10 000 layers deep",
    why="At depth 48 the tuned delta-orthogonal net is below 0.2 training loss within 5 "
    "epochs (110 steps), while the Gaussian one is not; the quick scale's 3 epochs (66 steps, "
    "shortened for the suite's time) judge earlier on the same descent; the full scale trains "
    "20 epochs, up to 128 layers.",
)
TUNE_ON = Metric("train_loss")


JUDGED = ("delta-orthogonal", "gaussian")
"""The inits the judged comparisons read; the off-critical ones are reported."""
SKIPPED_AT_QUICK = (
    "delta-orthogonal off the critical line (sigma_w^2 0.5 and 2), and every init at the full "
    "scale's depths 8, 32 and 128 (whether the advantage grows with depth), each lr searched"
)


def cells(ctx: RunContext) -> dict[int, tuple[str, ...]]:
    """The inits trained at each depth: every init at every depth of the scale where the claim
    reports its extras (smoke, full); the judged inits at the deepest depth alone (quick)."""
    depths = DEPTHS[ctx.scale]
    if ctx.reports_extras:
        return dict.fromkeys(depths, tuple(INITS))
    return {max(depths): JUDGED}


def decide(
    loss: dict[str, list[float]], spread: dict[str, list[float]]
) -> tuple[Verdict, dict[str, str]]:
    """``loss[init]``: final training loss per seed at the deepest depth; ``spread[init]``: std
    of log sigma of the body's Jacobian at init per seed, there.

    Two decisions on t-intervals over seeds: (1) isometry at init: spread(delta-orthogonal) -
    spread(Gaussian) < 0; (2) log(loss delta-orthogonal / loss Gaussian) < 0. Holds if both
    are YES, does not hold if either is NO, inconclusive otherwise."""
    orthogonal, gaussian = (st.logs(loss[i]) for i in JUDGED)
    return judged(
        {
            "isometric at init": st.less(st.paired_interval(*(spread[i] for i in JUDGED))),
            "trains better than Gaussian": st.less(st.paired_interval(orthogonal, gaussian)),
        }
    )


def reported(loss: dict[int, dict[str, list[float]]]) -> dict[str, str]:
    """The paper's parts, not judged, each on the seeds both of its sides ran (settling adds
    seeds to the judged cells only): (3) at the deepest depth D, log(loss off-critical / loss
    delta-orthogonal) > 0 for both off-critical inits; (4) log(delta-orthogonal / Gaussian) at
    D minus the same at the shallowest depth < 0."""
    deepest, shallowest = max(loss), min(loss)
    logs = {depth: {i: st.logs(v) for i, v in per.items()} for depth, per in loss.items()}

    def gap(depth: int) -> list[float]:  # per seed: log(loss delta-orthogonal / loss Gaussian)
        return [
            a - b for a, b in zip(*st.common_seeds(*(logs[depth][i] for i in JUDGED)), strict=True)
        ]

    worse = [
        st.paired_interval(*st.common_seeds(logs[deepest][c], logs[deepest]["delta-orthogonal"]))
        for c in OFF_CRITICAL
    ]
    grows = st.paired_interval(*st.common_seeds(gap(deepest), gap(shallowest)))
    return {
        f"off-critical trains worse at depth {deepest}": st.all_of(
            [st.greater(w) for w in worse]
        ).value,
        "advantage grows with depth": f"{grows}, {st.less(grows).value}",
    }


def spreads(ctx: RunContext, inits, depth: int, count: int) -> dict[str, list[float]]:
    """The Jacobian spread at init of each of ``inits`` at ``depth`` for the first ``count``
    evaluation seeds (the claim's seeds after settling)."""
    seeds = evaluation_seeds(count, ctx.seeds[0])
    spectra = init_spectra(ctx.executor, list(inits), depth, seeds)
    return {i: [r.metric("log_spread") for r in rs] for i, rs in spectra.items()}


def run(ctx: RunContext) -> ClaimResult:
    trained, epochs = cells(ctx), BUDGET.at(ctx.scale)
    depths, deepest = tuple(trained), max(trained)
    problems = {f"depth {depth}": deep_cnn(depth) for depth in depths}
    methods = {f"depth {d}": [Method(i, LABELS[i], rates(d)) for i in trained[d]] for d in depths}
    outcomes = ctx.compare(problems, methods, epochs, TUNE_ON)
    judged_cells = {f"depth {deepest}": {i: outcomes[f"depth {deepest}"][i] for i in JUDGED}}

    def judge(o) -> Verdict:
        cells = o[f"depth {deepest}"]
        count = len(cells["delta-orthogonal"].runs)
        values = {i: cells[i].values("train_loss") for i in JUDGED}
        return decide(values, spreads(ctx, JUDGED, deepest, count))[0]

    ctx.settle(judged_cells, judge)  # the reported cells keep their first seeds
    spectra = init_spectra(ctx.executor, list(trained[deepest]), deepest, ctx.seeds)
    spread = {i: [r.metric("log_spread") for r in rs] for i, rs in spectra.items()}
    loss = {d: per_seed(outcomes, "train_loss")[f"depth {d}"] for d in depths}
    verdict, decisions = decide(loss[deepest], spread)
    paper = reported(loss) if ctx.reports_extras else {}

    def median(values) -> str:
        return f"{statistics.median(values):.3g}"

    summary = (
        f"Vanilla tanh CNN on digits images ({CHANNELS} channels, circular padding, flatten + "
        f"linear readout), SGD momentum 0.9 for {epochs} epochs at each (depth, init)'s tuned "
        f"lr; median final training loss ({seen(outcomes, ctx.seeds)}): "
        + "; ".join(
            f"depth {depth}: " + ", ".join(f"{LABELS[i]} {median(v)}" for i, v in per.items())
            for depth, per in loss.items()
        )
        + f". Std of log sigma of the body's Jacobian at init, depth {deepest}: "
        + ", ".join(f"{LABELS[i]} {median(v)}" for i, v in spread.items())
        + ". Decisions: "
        + ", ".join(f"{k} {v}" for k, v in decisions.items())
        + "."
        + reported_text(paper)
        + search_notes(outcomes)
    )
    table = [
        {
            "depth": depth,
            "init": LABELS[init],
            "chi_1": f"{init_point(init).chi_1:.3g}",
            "lr": f"{outcome.lr:.3g}",
            "train loss (median)": median(outcome.values("train_loss")),
            "train accuracy (median)": median(outcome.values("train_accuracy")),
            "train loss per seed": ", ".join(f"{v:.3g}" for v in outcome.values("train_loss")),
        }
        for depth, problem in zip(depths, problems, strict=True)
        for init, outcome in outcomes[problem].items()
    ]
    numbers = comparison_numbers(
        ctx,
        BUDGET,
        outcomes,
        depths=list(depths),
        q_star=Q_STAR,
        train_loss={str(d): per for d, per in loss.items()},
        jacobian_log_spread=spread,
        decisions=decisions,
        reported=paper,
    )
    fig = figure(outcomes, spectra, depths, ctx.seeds[0])
    return ClaimResult(verdict, summary, numbers, table, fig)


def reported_text(paper: dict[str, str]) -> str:
    """The sentence on the paper's parts (:func:`reported`), or what the quick scale left out."""
    if not paper:
        return full_scale_only(SKIPPED_AT_QUICK)
    return (
        " Reported, not judged (the paper's, not the notes'): "
        + "; ".join(f"{k} {v}" for k, v in paper.items())
        + "."
    )


def seen(outcomes, seeds) -> str:
    """How many seeds the cells ran: settling adds seeds to the judged cells only."""
    others = min(len(o.runs) for per in outcomes.values() for o in per.values())
    if others == len(seeds):
        return f"{len(seeds)} seeds"
    return f"{len(seeds)} seeds for the judged cells, {others} for the others"


def figure(outcomes, spectra, depths, seed: int) -> Figure:
    """Trainability heat map (depth x init), training curves at the deepest depth, and the
    Jacobian at init: its log10 singular values at the deepest depth and their spread along
    depth (the first evaluation seed, ``seed``); of the inits trained at the deepest depth
    (every depth trains the same inits)."""
    fig = Figure(figsize=(11, 8), layout="tight")
    (heat, curves), (histogram, along) = fig.subplots(2, 2)
    inits = list(outcomes[f"depth {max(depths)}"])
    grid = np.array(
        [[outcomes[f"depth {d}"][i].median("train_loss") for i in inits] for d in depths]
    )
    image = heat.imshow(np.log10(grid), cmap="viridis_r", aspect="auto")
    for (row, col), value in np.ndenumerate(grid):
        heat.text(col, row, f"{value:.2g}", ha="center", va="center", fontsize=8,
                  bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0})  # fmt: skip
    heat.set(xticks=range(len(inits)), yticks=range(len(depths)), yticklabels=depths,
             ylabel="depth", title="median final training loss (log10 colour)")  # fmt: skip
    heat.set_xticklabels([LABELS[i] for i in inits], rotation=15, fontsize=7)
    fig.colorbar(image, ax=heat)
    deepest = f"depth {max(depths)}"
    for init in inits:
        x, y = outcomes[deepest][init].runs[0].curve("train_loss")
        curves.plot(x, y, label=f"{LABELS[init]} (lr {outcomes[deepest][init].lr:.3g})")
        x, y = spectra[init][0].curve("log10_sigma")
        histogram.hist(y, bins=60, histtype="step", label=LABELS[init])
        x, y = spectra[init][0].curve("log_spread")
        along.plot(x, y, "o-", label=LABELS[init])
    curves.set(yscale="log", xlabel="epoch", ylabel="training loss",
               title=f"{deepest}, seed {seed}")  # fmt: skip
    histogram.set(xlabel="log10 singular value", ylabel="count",
                  title=f"body Jacobian at init, {deepest}, seed {seed}")  # fmt: skip
    along.set(xlabel="depth", ylabel="std of log sigma", title="Jacobian spread at init")
    for ax in (curves, histogram, along):
        ax.legend(fontsize=7)
    return fig


CLAIM = Claim(
    id="orthogonal-init-trains-very-deep-tanh",
    notes=(
        "Initializing neural nets in this way, using orthogonal matrices for fully connected "
        'layers, and "delta-orthogonal" for conv layers, enabled training 10k layer tanh '
        "network"
    ),
    statement=(
        "Vanilla tanh CNNs initialised delta-orthogonally at a critical point are isometric at "
        "init (perturbations propagate without attenuation) and train at great depth, better "
        "than with Gaussian initialisation at the same point."
    ),
    source="Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington, Dynamical Isometry and a "
    "Mean Field Theory of CNNs: How to Train 10,000-Layer Vanilla Convolutional Neural "
    "Networks, ICML 2018 (arXiv 1806.05393)",
    criterion=(
        f"Digits 1x8x8 images, a stem 3x3 convolution to {CHANNELS} channels, then depth "
        f"3x3 convolutions of {CHANNELS} channels (circular padding, tanh), flatten, linear; "
        f"every layer initialised delta-orthogonally at the tanh critical point for q* "
        f"{Q_STAR:g}, Gaussian N(0, sigma_w^2 / fan_in) at the same point, or delta-orthogonally "
        "at sigma_w^2 0.5 (ordered, chi_1 0.5) and 2 (chaotic, chi_1 1.11) with the critical "
        "sigma_b^2. SGD with momentum 0.9, batch 64; every (depth, init) has its lr searched "
        "(from the 3 lattice points around 0.3 / depth, 3 per decade, widened at the edges from "
        "a decade below that to 1, successive halving) on the final training loss; depth "
        "48 with the two critical inits alone (quick) or 8, 32 and 128 (full); >= 3 seeds, more "
        "for the judged cells while undecided (settled, with the fragility check at their rates' "
        "lattice neighbours). "
        "Holds if the t-intervals over seeds put (1) the std of log sigma of the body's "
        "Jacobian at init lower for delta-orthogonal than for Gaussian at the deepest depth D "
        "(the notes: 'All perturbations should propagate without attenuation') and (2) log(loss "
        "delta-orthogonal / loss Gaussian) below 0 at D (the notes: it 'enabled training' the "
        "deep tanh net); does not hold if either is decidedly false; inconclusive otherwise. "
        "Reported, not judged (beyond the notes: the paper's), at smoke and full scale, on the "
        "seeds both sides ran: (3) log(loss off-critical / loss delta-orthogonal) above 0 at D "
        "for both off-critical inits, (4) the log ratio of (2) lower at D than at the "
        "shallowest depth."
    ),
    run=run,
    reported=(
        "vanilla CNNs of 10 000+ layers trainable with this initialisation (abstract); about "
        "99% MNIST test accuracy at 10 000 layers and about 82% CIFAR-10 accuracy, roughly "
        "independent of depth, for thousands of layers (not confirmed in the paper's text by "
        "us)."
    ),
)
