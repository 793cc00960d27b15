"""Claims: with a straggler or a slow network, AD-PSGD reaches a target loss much sooner in
simulated time than AllReduce SGD and D-PSGD."""

from __future__ import annotations

import math
import statistics

from gradkit.claims.base import (
    Claim,
    ClaimResult,
    RunContext,
    Verdict,
    judged,
    labels_of,
    search_notes,
)
from gradkit.experiments import Budget, LrRange, Method, MethodOutcome, Metric, simulated
from gradkit.experiments import stats as st
from gradkit.report.figures import Panel, curves_figure

TASK, WORKERS, STRAGGLER = "mnist1d-mlp", 16, 10.0
METHODS = (
    Method("allreduce", "AllReduce", LrRange(0.215, 4.64)),
    Method("dpsgd", "D-PSGD", LrRange(0.1, 2.15)),
    Method("adpsgd", "AD-PSGD", LrRange(0.1, 2.15)),
)
LABELS = labels_of(METHODS)
SCENARIOS = {
    "normal": simulated(TASK, WORKERS),
    "slow-worker": simulated(TASK, WORKERS, slowdown={"0": STRAGGLER}),
    "transfer-1": simulated(TASK, WORKERS, transfer_cost=1.0),
    "transfer-5": simulated(TASK, WORKERS, transfer_cost=5.0),
}
SPEEDUP = 2.0
"""AD-PSGD must be decidedly >= 2x faster than the better baseline: the paper reports 'often
orders of magnitude' with stragglers, so 2x is a conservative floor."""
TARGET_SLACK = 1.1
BUDGET = Budget(
    smoke=1,
    quick=30,
    full=90,
    paper="16 GPUs with one slowed 2x-100x (or a slowed network), wall time to a loss",
    why="30 epochs let every algorithm reach the common target on the unperturbed cluster.",
)
TUNE_ON = Metric("train_loss")


def time_to(run, target: float) -> float:
    times, values = run.curve("train_loss@time")
    return next((t for t, v in zip(times, values, strict=True) if v <= target), math.inf)


def decide(times: dict[str, list[float]]) -> tuple[Verdict, dict]:
    """Per seed, log(best baseline time / AD-PSGD time), the baseline being the better (lower
    median time) of AllReduce and D-PSGD. Holds if its 90% t-interval lies above log(SPEEDUP),
    does not hold if it lies at or below it, inconclusive otherwise or when no method reaches
    the target."""
    if all(math.isinf(t) for values in times.values() for t in values):
        return Verdict.INCONCLUSIVE, {"speedup_interval": None}
    baseline = min(("allreduce", "dpsgd"), key=lambda a: statistics.median(times[a]))
    interval = st.paired_interval(st.logs(times[baseline]), st.logs(times["adpsgd"]))
    verdict, named = judged({"decision": st.greater(interval, math.log(SPEEDUP))})
    ratio = {k: math.exp(getattr(interval, k)) for k in ("mean", "low", "high")}
    return verdict, {"baseline": baseline, "speedup_interval": ratio, **named}


def time_to_target_claim(ctx: RunContext, scenarios: list[str], deciding: str) -> ClaimResult:
    """Times to a target training loss in each scenario; the verdict uses ``deciding``.

    Rates are tuned once on the unperturbed cluster (the stragglers and links change when a
    step happens, not what it computes) and kept in every scenario. The target is fixed from
    the unperturbed runs: 1.1 x the highest median final loss of the three algorithms there,
    so each reaches it without perturbation.
    """
    epochs = BUDGET.at(ctx.scale)
    outcomes = ctx.compare({"normal": SCENARIOS["normal"]}, METHODS, epochs, TUNE_ON)
    lrs = {m: o.lr for m, o in outcomes["normal"].items()}
    for s in scenarios:
        runs = {m: ctx.runs_at(SCENARIOS[s], m, lrs[m.name], epochs) for m in METHODS}
        outcomes[s] = {m.name: MethodOutcome.fixed(m, lrs[m.name], r) for m, r in runs.items()}
    target = TARGET_SLACK * max(o.median("train_loss") for o in outcomes["normal"].values())
    times = {
        s: {m: [time_to(r, target) for r in o.runs] for m, o in per.items()}
        for s, per in outcomes.items()
    }
    verdict, details = decide(times[deciding])
    if not target < min(r.curve("train_loss")[1][0] for r in outcomes["normal"]["allreduce"].runs):
        verdict = Verdict.INCONCLUSIVE  # no meaningful target: not below the initial loss
    medians = {s: {m: statistics.median(v) for m, v in per.items()} for s, per in times.items()}
    speed = details["speedup_interval"]
    summary = (
        f"Target training loss {target:.4f}. Median simulated time to reach it in '{deciding}': "
        + ", ".join(f"{LABELS[m]} {medians[deciding][m]:.4g}" for m in LABELS)
        + (
            f"; AD-PSGD / {LABELS[details['baseline']]} speed-up per seed {speed['mean']:.2f}x "
            f"(90% interval {speed['low']:.2f}-{speed['high']:.2f}; criterion above {SPEEDUP}x)."
            if speed and math.isfinite(speed["mean"])
            else "; no speed-up measurable (the target was not reached, or reached at once)."
        )
        + search_notes(outcomes)
    )
    table = [
        {"scenario": s, "algorithm": LABELS[m], "tuned lr": f"{lrs[m]:.3g}",
         "time to target (median)": f"{medians[s][m]:.4g}",
         "per seed": ", ".join(f"{t:.4g}" for t in times[s][m])}
        for s in times
        for m in LABELS
    ]  # fmt: skip
    numbers = {
        "setting": BUDGET.describe(ctx.scale),
        "target_loss": target,
        "time_to_target": times,
        "tuned_lr": lrs,
        **details,
    }
    panels = [Panel(s, "train_loss@time", "simulated time", "train loss") for s in outcomes]
    fig = curves_figure(outcomes, list(LABELS), panels, LABELS)
    for ax in fig.axes[: len(panels)]:
        ax.axhline(target, color="k", linestyle=":", linewidth=1)
    return ClaimResult(verdict, summary, numbers, table, fig)


def _criterion(what: str) -> str:
    return (
        f"{WORKERS} simulated workers on i.i.d. shards of mnist1d (MLP, batch 32 per worker); "
        "each algorithm's lr searched on the unperturbed cluster (3 points per decade, widened "
        "at the edges, successive halving) by the final train loss of a tuning run, then kept "
        f"in every scenario. Target = {TARGET_SLACK} x the highest median final training loss "
        "of AllReduce, D-PSGD and AD-PSGD on the unperturbed cluster. Per seed, speed-up = the "
        "better baseline's simulated time to the target / AD-PSGD's. Holds if, "
        f"{what}, the 90% t-interval of the per-seed log speed-up lies above log {SPEEDUP}; "
        "does not hold if it lies at or below; inconclusive otherwise, if no method reaches "
        "the target or if the target is not below the initial loss."
    )


SLOW_WORKER = Claim(
    id="adpsgd-tolerates-slow-worker",
    notes=(
        "The scaling difference was especially dramatic when there's a slow worker or a "
        "slowdown in network links."
    ),
    statement=(
        "In a heterogeneous environment (one worker slowed 2x-100x), AllReduce and D-PSGD epoch "
        "times follow the straggler while AD-PSGD's barely change; AD-PSGD outperforms them "
        "'often by orders of magnitude'."
    ),
    source="Lian, Zhang, Zhang, Liu, ICML 2018 (arXiv 1710.06952): abstract; experiments",
    criterion=_criterion(f"with worker 0 computing {STRAGGLER:g}x slower"),
    run=lambda ctx: time_to_target_claim(ctx, ["slow-worker"], "slow-worker"),
    reported=(
        '"outperforms ... often by orders of magnitude in a heterogeneous environment" '
        "(abstract); each epoch up to 4-8x faster than the synchronous counterparts in a "
        "network-sharing HPC environment (abstract)."
    ),
)

SLOW_NETWORK = Claim(
    id="adpsgd-tolerates-slow-network",
    notes=(
        "The scaling difference was especially dramatic when there's a slow worker or a "
        "slowdown in network links."
    ),
    statement=(
        "AD-PSGD keeps most of its speed on a slow or shared network, where synchronous "
        "averaging waits for every transfer."
    ),
    source="Lian, Zhang, Zhang, Liu, ICML 2018 (arXiv 1710.06952): experiments",
    criterion=_criterion(
        "when moving one model over a link costs 5 gradient computations (also reported: 1)"
    ),
    run=lambda ctx: time_to_target_claim(ctx, ["transfer-1", "transfer-5"], "transfer-5"),
    reported=(
        "each epoch up to 4-8x faster than the synchronous counterparts in a network-sharing "
        "HPC environment (abstract)."
    ),
)
