"""Claim: AD-PSGD converges per epoch like AllReduce SGD, and ends more accurate than EASGD."""

from __future__ import annotations

from gradkit.claims import distributed_runs as dr
from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.report.simulation import trace_figure

ALGORITHMS = ("allreduce", "adpsgd", "easgd")
LOSS_RATIO = 1.10
ACCURACY_SLACK = 0.02


def run(ctx: RunContext) -> ClaimResult:
    ctx.plan(len(ALGORITHMS) * (len(dr.lr_grid(ctx)) + len(ctx.seeds)))
    lrs = {a: dr.tuned_lr(ctx, a) for a in ALGORITHMS}
    traces = {a: dr.runs(ctx, a, "normal", lrs[a]) for a in ALGORITHMS}
    loss = {a: dr.median(dr.final_loss(t) for t in traces[a]) for a in ALGORITHMS}
    accuracy = {a: dr.median(dr.final_accuracy(t) for t in traces[a]) for a in ALGORITHMS}
    ratio = loss["adpsgd"] / loss["allreduce"]
    matches = ratio <= LOSS_RATIO and accuracy["adpsgd"] >= accuracy["allreduce"] - ACCURACY_SLACK
    beats_easgd = accuracy["adpsgd"] >= accuracy["easgd"]
    if matches and beats_easgd:
        verdict = Verdict.HOLDS
    elif not matches:
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    summary = (
        f"{dr.WORKERS} simulated workers, {dr.epochs(ctx)} epochs of {dr.TASK}, per-worker batch "
        f"{dr.BATCH}, medians of {len(ctx.seeds)} seeds. Final training loss AD-PSGD/AllReduce = "
        f"{ratio:.3f} (criterion <= {LOSS_RATIO}); test accuracy AllReduce "
        f"{accuracy['allreduce']:.3f}, AD-PSGD {accuracy['adpsgd']:.3f}, EASGD "
        f"{accuracy['easgd']:.3f}." + dr.grid_edge(ctx, lrs)
    )
    table = [
        {
            "algorithm": dr.NAMES[a],
            "tuned lr": lrs[a],
            "final train loss": f"{loss[a]:.4f}",
            "test accuracy": f"{accuracy[a]:.3f}",
            "consensus": f"{dr.median(t.final('consensus') for t in traces[a]):.2e}",
        }
        for a in ALGORITHMS
    ]
    return ClaimResult(
        verdict,
        summary,
        {"loss_ratio": ratio, "accuracy": accuracy, "final_loss": loss, "lr": lrs},
        table,
        trace_figure({dr.NAMES[a]: traces[a][0] for a in ALGORITHMS}),
    )


CLAIM = Claim(
    id="adpsgd-matches-allreduce-per-epoch",
    statement=(
        "AD-PSGD converges per epoch like AllReduce-SGD (ImageNet, up to 128 GPUs) and reaches "
        "final accuracy close to AllReduce and better than EASGD (CIFAR-10, 16 workers)."
    ),
    source="Lian, Zhang, Zhang, Liu, ICML 2018 (arXiv 1710.06952): abstract; experiments",
    criterion=(
        f"Holds if, after equal epochs, AD-PSGD's median final training loss is <= {LOSS_RATIO}x "
        f"AllReduce's, its test accuracy is at least AllReduce's - {ACCURACY_SLACK}, and at "
        f"least EASGD's. Does not hold if either comparison with AllReduce fails; inconclusive "
        f"if only the EASGD comparison fails."
    ),
    run=run,
)
