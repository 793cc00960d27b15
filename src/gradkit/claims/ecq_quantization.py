"""Claim: error compensation lets a ~2-bit quantizer track 32-bit SGD, while the same
quantizer without it does measurably worse."""

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
from gradkit.experiments import (
    Budget,
    LrRange,
    Method,
    MethodOutcome,
    Metric,
    RunRecord,
    RunSpec,
    simulated,
)
from gradkit.experiments import stats as st
from gradkit.experiments.kinds import quantization_error_run
from gradkit.report.figures import Panel, curves_figure

WORKERS = 8
MLP = "mnist1d-mlp, batch 32"
FLOOR = "least squares, whole-shard batches"
MLP_PROBLEM = {MLP: simulated("mnist1d-mlp", WORKERS)}
FLOOR_PROBLEM = {
    # each worker's gradient is its whole shard's (no sampling noise), and differs from the
    # others' at the optimum, so only the quantizer's error keeps x from x*: the floor the
    # paper's synthetic problems show. The instance is drawn from the seed, so the tuning seeds
    # solve other instances (no held-out split needed).
    FLOOR: simulated(
        "least-squares",
        WORKERS,
        evals_per_epoch=1,
        hold_out=False,
        batch_size=200,  # 1600 training samples / 8 workers
        suboptimality=True,
    )
}
QUANTIZER = (("levels", 1), ("bucket_size", 512))  # ternary, max-norm scale per 512 entries
ECQ_GRID = ((1.0, 1.0), (1.0, 0.9), (0.5, 0.9))  # the reference's (alpha, beta) grid


def methods(lr_range: LrRange) -> tuple[Method, ...]:
    """32-bit SGD, the quantizer without compensation and ECQ over the grid, searched in
    ``lr_range``."""
    return (
        Method("sgd", "32-bit SGD", lr_range, "allreduce"),
        Method(
            "plain", "quantized, no compensation", lr_range, "qsgd", (*QUANTIZER, ("norm", "max"))
        ),
        *(
            Method(
                f"ecq-a{a:g}-b{b:g}",
                f"ECQ-SGD (alpha {a:g}, beta {b:g})",
                lr_range,
                "ecq",
                (*QUANTIZER, ("alpha", a), ("beta", b)),
            )
            for a, b in ECQ_GRID
        ),
    )


METHODS = {
    MLP: methods(LrRange(0.1, 2.15)),
    # the Hessian's largest eigenvalue is about 5: SGD is stable below 2 / 5
    FLOOR: methods(LrRange(0.0215, 0.464)),
}
ECQ = METHODS[MLP][2:]
LABELS = {m.name: m.label for m in METHODS[MLP]}
TRACKS = 1.10
"""ECQ tracks 32-bit SGD on the MLP: final train loss decidedly below 1.1x SGD's ('without
performance degradation', with a tolerance for the finite run)."""
GAP = 1.10
"""The uncompensated quantizer does measurably worse: its train loss (MLP) and its
suboptimality floor (least squares) decidedly above 1.1x ECQ's."""
BUDGET = Budget(
    smoke=1,
    quick=15,
    full=90,
    paper="CIFAR-10 and ImageNet nets trained to their usual length",
    why="the MLP still improves after 15 epochs (quick), as the full 90 show; both are long "
    "enough for the quantizers' train-loss gap to show.",
)
FLOOR_BUDGET = Budget(
    smoke=2,
    quick=150,
    full=1000,
    paper="synthetic quadratic and logistic problems run until the curves flatten",
    why="the features' condition number is about 9, so 32-bit SGD at a good rate reaches "
    "float32's rounding level (f - f* ~ 1e-12) within about 100 steps and the quantizers reach "
    "their floors within about 50; a floor proportional to lr^2 (error feedback's) rather than "
    "lr (no compensation) pays off at small rates, which need the full scale's 1000 steps.",
    unit="steps (one whole-shard batch each)",
)
TUNE_ON = {MLP: Metric("train_loss"), FLOOR: Metric("suboptimality")}
COMPARED = {MLP: "train_loss", FLOOR: "suboptimality"}


def log_values(values: list[float]) -> list[float]:
    return [math.log(v) if v > 0 else -math.inf for v in values]


def best_ecq(per) -> str:
    """The (alpha, beta) whose tuned run scored best (mean over the tuning seeds)."""
    return min(ECQ, key=lambda m: min(per[m.name].search.final_scores().values())).name


def decide(values: dict[str, dict[str, list[float]]], ecq: dict[str, str]):
    """90% t-intervals of per-seed log differences of the compared quantity (MLP: final train
    loss; least squares: final f - f*): (i) on the MLP, log(ECQ / SGD) below log TRACKS;
    (ii) on each problem, log(uncompensated / ECQ) above log GAP. Holds if all are YES; does
    not hold if ECQ decidedly fails to track, or on some problem the uncompensated quantizer is
    decidedly no worse than ECQ (the interval at or below 0); inconclusive otherwise."""
    decisions = {}
    for p, per in values.items():
        ours = log_values(per[ecq[p]])
        worse = st.paired_interval(log_values(per["plain"]), ours)
        decisions[p] = {
            "plain_worse_by_gap": st.greater(worse, math.log(GAP)),
            "plain_worse_at_all": st.greater(worse, 0.0),
        }
    mlp = values[MLP]
    decisions[MLP]["ecq_tracks_sgd"] = st.less(
        st.paired_interval(log_values(mlp[ecq[MLP]]), log_values(mlp["sgd"])), math.log(TRACKS)
    )
    yes, no = st.Decision.YES, st.Decision.NO
    if decisions[MLP]["ecq_tracks_sgd"] == yes and all(
        d["plain_worse_by_gap"] == yes for d in decisions.values()
    ):
        verdict = Verdict.HOLDS
    elif decisions[MLP]["ecq_tracks_sgd"] == no or any(
        d["plain_worse_at_all"] == no for d in decisions.values()
    ):
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    return verdict, {p: {k: v.value for k, v in d.items()} for p, d in decisions.items()}


def accumulated_errors(ctx: RunContext, lr: float, ecq: str, steps: int) -> list[RunRecord]:
    """The quantizer's accumulated error ||sum_s (Q_s - g_s)|| on one worker's stream of MLP
    gradients (plain SGD at 32-bit SGD's tuned rate), without compensation and with the chosen
    ECQ, one run per evaluation seed."""
    alpha_beta = dict(next(m for m in ECQ if m.name == ecq).hyper)
    specs = [
        RunSpec.of(
            quantization_error_run,
            task="mnist1d-mlp",
            seed=seed,
            lr=lr,
            steps=steps,
            batch_size=32,
            ecq={ecq: [alpha_beta["alpha"], alpha_beta["beta"]]},
        )
        for seed in ctx.seeds
    ]
    return ctx.executor.run(specs)


def error_outcomes(records: list[RunRecord], ecq: str, sgd: MethodOutcome):
    """The stream runs as one outcome per quantizer, each run's curve ``accumulated_error``
    (what :func:`curves_figure` draws)."""
    return {
        name: MethodOutcome(
            sgd.method,
            sgd.search,
            [
                RunRecord(r.metrics, {"accumulated_error": r.curves[f"error:{name}"]})
                for r in records
            ],
        )
        for name in ("plain", ecq)
    }


def tuned_with_grid(ctx: RunContext, problem, budget: int):
    """Every method's rate searched; SGD, the uncompensated quantizer and the ECQ (alpha, beta)
    whose tuning runs scored best then run on the evaluation seeds (the other pairs are only
    searched). Returns the outcomes of the methods run, the chosen pair's name and every pair's
    best tuning score."""
    ((name, make_spec),) = problem.items()
    searched = ctx.compare(problem, METHODS[name], budget, TUNE_ON[name], seeds=())[name]
    chosen = best_ecq(searched)
    kept = {m: searched[m] for m in ("sgd", "plain", chosen)}
    grid_scores = {m.name: min(searched[m.name].search.final_scores().values()) for m in ECQ}
    specs = [make_spec(o.method, o.lr, budget, s, False) for o in kept.values() for s in ctx.seeds]
    records = iter(ctx.executor.run(specs))
    for outcome in kept.values():
        outcome.runs = [next(records) for _ in ctx.seeds]
    return {name: kept}, chosen, grid_scores


def run(ctx: RunContext) -> ClaimResult:
    epochs, steps = BUDGET.at(ctx.scale), FLOOR_BUDGET.at(ctx.scale)
    outcomes, chosen_mlp, grid_mlp = tuned_with_grid(ctx, MLP_PROBLEM, epochs)
    floor, chosen_floor, grid_floor = tuned_with_grid(ctx, FLOOR_PROBLEM, steps)
    outcomes |= floor
    ecq = {MLP: chosen_mlp, FLOOR: chosen_floor}
    grid = {MLP: grid_mlp, FLOOR: grid_floor}
    values = {p: per_seed(outcomes, COMPARED[p])[p] for p in outcomes}
    verdict, decisions = decide(values, ecq)
    stream_steps = epochs * 4000 // (WORKERS * 32)  # as many as one worker takes on the MLP
    streams = accumulated_errors(ctx, outcomes[MLP]["sgd"].lr, ecq[MLP], stream_steps)
    error = {
        name: statistics.median(r.metrics[f"relative_error:{name}"] for r in streams)
        for name in ("plain", ecq[MLP])
    }
    bits = 2 + 32 / 512
    ratios = {
        p: {
            m: math.exp(
                st.paired_interval(log_values(values[p][m]), log_values(values[p]["sgd"])).mean
            )
            for m in ("plain", ecq[p])
        }
        for p in values
    }
    summary = (
        f"{WORKERS} simulated workers, ternary max-norm quantizer ({bits:.2f} bits per entry "
        "counting the per-bucket scales); ECQ at the (alpha, beta) its tuning chose. Against "
        f"32-bit SGD (geometric mean over {len(ctx.seeds)} seeds), MLP train loss after "
        f"{epochs} epochs: {LABELS[ecq[MLP]]} {ratios[MLP][ecq[MLP]]:.3f}x, no compensation "
        f"{ratios[MLP]['plain']:.3f}x; least-squares f - f* after {steps} steps: "
        f"{LABELS[ecq[FLOOR]]} {ratios[FLOOR][ecq[FLOOR]]:.3g}x, no compensation "
        f"{ratios[FLOOR]['plain']:.3g}x (median f - f*: "
        + ", ".join(
            f"{LABELS[m]} {outcomes[FLOOR][m].median('suboptimality'):.2g}"
            for m in ("sgd", "plain", ecq[FLOOR])
        )
        + "). Accumulated quantization error after "
        f"{stream_steps} steps of one worker's MLP gradients, relative to the summed gradient "
        f"(median): no compensation {error['plain']:.3f}, {LABELS[ecq[MLP]]} "
        f"{error[ecq[MLP]]:.3f}. Decisions: "
        + "; ".join(
            f"{p}: " + ", ".join(f"{k} {v}" for k, v in d.items()) for p, d in decisions.items()
        )
        + "."
        + search_notes(outcomes)
    )
    table = [
        {
            "problem": p,
            "method": LABELS[m],
            "tuned lr": f"{o.lr:.3g}",
            f"final {COMPARED[p].replace('_', ' ')} (median)": f"{o.median(COMPARED[p]):.4g}",
        }
        for p, per in outcomes.items()
        for m, o in per.items()
    ]
    numbers = {
        "setting": f"MLP: {BUDGET.describe(ctx.scale)} Least squares: "
        + FLOOR_BUDGET.describe(ctx.scale),
        "compared": values,
        "chosen_ecq": ecq,
        "ecq_grid_tuning_score": grid,
        "ratio_to_sgd": ratios,
        "relative_accumulated_error": error,
        "bits_per_entry": bits,
        "tuned_lr": tuned_lrs(outcomes),
        "decisions": decisions,
    }
    stream = f"one worker's MLP gradients ({stream_steps} steps)"
    figure_outcomes = outcomes | {stream: error_outcomes(streams, ecq[MLP], outcomes[MLP]["sgd"])}
    panels = [
        Panel(MLP, "train_loss", "epoch", "train loss", methods=("sgd", "plain", ecq[MLP])),
        Panel(FLOOR, "suboptimality", "step", "f - f*", methods=("sgd", "plain", ecq[FLOOR])),
        Panel(
            stream,
            "accumulated_error",
            "step",
            "||sum of (Q(g) - g)||",
            title="accumulated quantization error",
            methods=("plain", ecq[MLP]),
        ),
    ]
    fig = curves_figure(figure_outcomes, list(LABELS), panels, LABELS)
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="ecq-beats-plain-quantization",
    statement=(
        "Error-compensated quantization (ECQ-SGD) compresses gradients by up to two orders of "
        "magnitude without performance degradation; the same quantizer without compensation "
        "converges to a worse point."
    ),
    source="Wu, Huang, Huang, Zhang, ICML 2018 (arXiv 1806.08054): abstract; experiments",
    criterion=(
        f"{WORKERS} simulated workers; the mnist1d MLP (batch 32), and least squares (d = 20, "
        "label noise) with whole-shard batches run to the quantizers' floors. 32-bit SGD, the "
        "ternary max-norm quantizer (~2 bits per entry) without compensation, and ECQ with "
        "(alpha, beta) in {(1, 1), (1, 0.9), (0.5, 0.9)} (the pair with the best tuning runs "
        "is compared); each lr searched (3 points per decade, widened at the edges, successive "
        "halving) on the compared quantity: final train loss (MLP), final f - f* (least "
        "squares); then >= 3 seeds. 90% t-intervals of per-seed log differences. Holds if, on "
        f"the MLP, log(ECQ / SGD) lies below log {TRACKS}, and on both problems "
        f"log(uncompensated / ECQ) above log {GAP}; does not hold if ECQ decidedly fails to "
        "track SGD or on some problem the uncompensated quantizer is decidedly no worse than "
        "ECQ; inconclusive otherwise. The quantizer's accumulated error is measured directly "
        "on a stream of MLP gradients and reported."
    ),
    run=run,
    reported=(
        'gradients compressed "by a factor of up to two magnitudes without performance '
        'degradation" (abstract); no per-experiment figure is quoted here.'
    ),
)
