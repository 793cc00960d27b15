"""Claim: error compensation lets a ~2-bit quantizer track 32-bit SGD, while the same
quantizer without it does measurably worse."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from types import SimpleNamespace

from gradkit.claims.base import (
    Claim,
    ClaimResult,
    RunContext,
    labels_of,
    median_cell,
    outcome_table,
    search_notes,
    tuned_lrs,
    verdict_from,
)
from gradkit.experiments import Budget, LrRange, Method, Metric, RunSpec, runs_per_seed, simulated
from gradkit.experiments import stats as st
from gradkit.experiments.kinds import quantization_error_run
from gradkit.report.figures import Panel, curves_figure

WORKERS = 8
MLP = "mnist1d-mlp, batch 32"
FLOOR = "least squares, whole-shard batches"
PROBLEMS = {
    MLP: simulated("mnist1d-mlp", WORKERS),
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
    ),
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
LABELS = labels_of(METHODS[MLP])
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
COMPARED = {MLP: "train_loss", FLOOR: "suboptimality"}  # what each problem tunes and compares


def decide(values: dict[str, dict[str, list[float]]], ecq: dict[str, str]):
    """90% t-intervals of per-seed log differences of the compared quantity (MLP: final train
    loss; least squares: final f - f*): (i) on the MLP, log(ECQ / SGD) below log TRACKS;
    (ii) on each problem, log(uncompensated / ECQ) above log GAP. Holds if all are YES; does
    not hold if ECQ decidedly fails to track, or on some problem the uncompensated quantizer is
    decidedly no worse than ECQ (the interval at or below 0); inconclusive otherwise."""
    decisions = {}
    for p, per in values.items():
        worse = st.paired_interval(st.logs(per["plain"]), st.logs(per[ecq[p]]))
        decisions[p] = {
            "plain_worse_by_gap": st.greater(worse, math.log(GAP)),
            "plain_worse_at_all": st.greater(worse, 0.0),
        }
    mlp = values[MLP]
    tracks = st.less(
        st.paired_interval(st.logs(mlp[ecq[MLP]]), st.logs(mlp["sgd"])), math.log(TRACKS)
    )
    decisions[MLP]["ecq_tracks_sgd"] = tracks
    verdict = verdict_from(
        [d for per in decisions.values() for d in per.values()],
        fails_on=[tracks, *(per["plain_worse_at_all"] for per in decisions.values())],
    )  # "worse by the gap" implies "worse at all", so HOLDS needs only the former, as stated
    return verdict, {p: {k: v.value for k, v in d.items()} for p, d in decisions.items()}


def tuned_with_grid(ctx: RunContext, problem: str, budget: int):
    """Every method's rate searched; SGD, the uncompensated quantizer and the ECQ (alpha, beta)
    whose tuning runs scored best then run on the evaluation seeds (the other pairs are only
    searched). Returns the outcomes of the methods run and every pair's best tuning score."""
    make_spec, tune_on = PROBLEMS[problem], Metric(COMPARED[problem])
    searched = ctx.compare({problem: make_spec}, METHODS[problem], budget, tune_on, seeds=())
    grid = {m.name: min(searched[problem][m.name].search.final_scores().values()) for m in ECQ}
    kept = {m: searched[problem][m] for m in ("sgd", "plain", min(grid, key=grid.get))}
    runs = runs_per_seed(
        ctx.executor,
        list(kept),
        ctx.seeds,
        lambda m, seed: make_spec(kept[m].method, kept[m].lr, budget, seed, False),
    )
    for name, outcome in kept.items():
        outcome.runs = runs[name]
    return kept, grid


def error_streams(ctx: RunContext, lr: float, ecq: Method, steps: int):
    """The quantizer's accumulated error ||sum_s (Q_s - g_s)|| on one worker's stream of MLP
    gradients (plain SGD at 32-bit SGD's tuned rate), one run per evaluation seed: an outcome
    per quantizer (no compensation, the chosen ECQ), its runs' curve ``accumulated_error``."""
    pair = [dict(ecq.hyper)[k] for k in ("alpha", "beta")]
    params = {"task": "mnist1d-mlp", "lr": lr, "steps": steps, "batch_size": 32}
    specs = [
        RunSpec.of(quantization_error_run, seed=s, **params, ecq={ecq.name: pair})
        for s in ctx.seeds
    ]
    records = ctx.executor.run(specs)
    return {
        name: SimpleNamespace(
            lr=lr,
            runs=[
                replace(r, curves={"accumulated_error": r.curves[f"error:{name}"]}) for r in records
            ],
        )
        for name in ("plain", ecq.name)
    }


def run(ctx: RunContext) -> ClaimResult:
    epochs, steps = BUDGET.at(ctx.scale), FLOOR_BUDGET.at(ctx.scale)
    tuned = {p: tuned_with_grid(ctx, p, b) for p, b in ((MLP, epochs), (FLOOR, steps))}
    outcomes = {p: kept for p, (kept, _) in tuned.items()}
    ecq = {p: list(per)[-1] for p, per in outcomes.items()}  # the kept pair comes last
    values = {p: {m: o.values(COMPARED[p]) for m, o in per.items()} for p, per in outcomes.items()}
    verdict, decisions = decide(values, ecq)
    stream_steps = epochs * 4000 // (WORKERS * 32)  # as many as one worker takes on the MLP
    streams = error_streams(
        ctx, outcomes[MLP]["sgd"].lr, outcomes[MLP][ecq[MLP]].method, stream_steps
    )
    error = {
        name: statistics.median(r.metrics[f"relative_error:{name}"] for r in s.runs)
        for name, s in streams.items()
    }
    bits = 2 + 32 / 512
    ratios = {
        p: {
            m: math.exp(st.paired_interval(st.logs(per[m]), st.logs(per["sgd"])).mean)
            for m in ("plain", ecq[p])
        }
        for p, per in values.items()
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
            f"{LABELS[m]} {o.median('suboptimality'):.2g}" for m, o in outcomes[FLOOR].items()
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
        row
        for p, per in outcomes.items()
        for row in outcome_table(
            {p: per},
            LABELS,
            {f"final {COMPARED[p].replace('_', ' ')} (median)": median_cell(COMPARED[p], ".4g")},
        )
    ]
    numbers = {
        "setting": f"MLP: {BUDGET.describe(ctx.scale)} Least squares: "
        + FLOOR_BUDGET.describe(ctx.scale),
        "compared": values,
        "chosen_ecq": ecq,
        "ecq_grid_tuning_score": {p: grid for p, (_, grid) in tuned.items()},
        "ratio_to_sgd": ratios,
        "relative_accumulated_error": error,
        "bits_per_entry": bits,
        "tuned_lr": tuned_lrs(outcomes),
        "decisions": decisions,
    }
    stream = f"one worker's MLP gradients ({stream_steps} steps)"
    panels = [
        Panel(MLP, "train_loss", "epoch", "train loss"),
        Panel(FLOOR, "suboptimality", "step", "f - f*"),
        Panel(
            stream,
            "accumulated_error",
            "step",
            "||sum of (Q(g) - g)||",
            title="accumulated quantization error",
        ),
    ]
    fig = curves_figure(outcomes | {stream: streams}, list(LABELS), panels, LABELS)
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="ecq-beats-plain-quantization",
    notes=(
        "The notable part is the compensation approach they used to correct for quantization "
        "error — store errors locally and fold them into next step's gradients"
    ),
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
