"""Claim: after equal epochs AD-PSGD reaches a higher test accuracy than D-PSGD."""

from __future__ import annotations

from gradkit.claims import distributed_runs as dr
from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.report.simulation import trace_figure

ALGORITHMS = ("allreduce", "dpsgd", "adpsgd")
MARGIN = 0.005


def run(ctx: RunContext) -> ClaimResult:
    ctx.plan(len(ALGORITHMS) * (len(dr.lr_grid(ctx)) + len(ctx.seeds)))
    lrs = {a: dr.tuned_lr(ctx, a) for a in ALGORITHMS}
    traces = {a: dr.runs(ctx, a, "normal", lrs[a]) for a in ALGORITHMS}
    per_seed = {a: [dr.final_accuracy(t) for t in traces[a]] for a in ALGORITHMS}
    accuracy = {a: dr.median(per_seed[a]) for a in ALGORITHMS}
    gap = accuracy["adpsgd"] - accuracy["dpsgd"]
    if gap >= MARGIN:
        verdict = Verdict.HOLDS
    elif gap <= -MARGIN:
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    summary = (
        f"Median test accuracy after {dr.epochs(ctx)} epochs ({len(ctx.seeds)} seeds, each "
        f"algorithm at its tuned lr): "
        + ", ".join(f"{dr.NAMES[a]} {accuracy[a]:.3f}" for a in ALGORITHMS)
        + f". AD-PSGD - D-PSGD = {gap:+.3f} (criterion: >= +{MARGIN} holds, <= -{MARGIN} does "
        f"not hold)." + dr.grid_edge(ctx, lrs)
    )
    table = [
        {
            "algorithm": dr.NAMES[a],
            "tuned lr": lrs[a],
            "test accuracy per seed": ", ".join(f"{v:.3f}" for v in per_seed[a]),
            "median": f"{accuracy[a]:.3f}",
        }
        for a in ALGORITHMS
    ]
    figure = trace_figure({dr.NAMES[a]: traces[a][0] for a in ALGORITHMS})
    return ClaimResult(
        verdict, summary, {"accuracy": accuracy, "gap": gap, "lr": lrs}, table, figure
    )


CLAIM = Claim(
    id="decentralized-beats-centralized-accuracy",
    statement=(
        "The notes report AD-PSGD reaching a higher accuracy than D-PSGD after the same number "
        "of epochs (the asynchronous randomized averaging acting as a regulariser)."
    ),
    source="Lian, Zhang, Zhang, Liu, ICML 2018 (arXiv 1710.06952): experiments, as in the notes",
    criterion=(
        f"Holds if AD-PSGD's median final test accuracy exceeds D-PSGD's by >= {MARGIN} after "
        f"equal epochs on the unperturbed cluster; does not hold if it is lower by >= {MARGIN}; "
        f"inconclusive in between. AllReduce is reported for reference."
    ),
    run=run,
)
