"""Claims: signSGD with majority vote trains like full-precision methods with 32x less traffic
each way, and tolerates a minority of workers that invert their signs."""

from __future__ import annotations

from matplotlib.figure import Figure

from gradkit.claims import compression_runs as cr
from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.claims.distributed_runs import final_accuracy, median
from gradkit.report.simulation import trace_figure

TASK, WORKERS = "mnist1d-mlp", 7
METHODS = {  # name: (algorithm, grid, hyper-parameters)
    "majority-vote Signum": ("signum-vote", "sign", (("momentum", 0.9),)),
    "SGD (momentum 0.9)": ("allreduce", "sgd", (("momentum", 0.9),)),
    "Adam": ("allreduce-adam", "adam", ()),
}
ACCURACY_SLACK = 0.02
NEAR_CLEAN = 0.05
ADVERSARIES = (0, 1, 2, 3)


def _tuned(ctx: RunContext, methods: dict) -> dict[str, float]:
    return {
        name: cr.tuned_lr(ctx, algorithm, TASK, WORKERS, grid, hyper)
        for name, (algorithm, grid, hyper) in methods.items()
    }


def run_vote(ctx: RunContext) -> ClaimResult:
    ctx.plan(sum(len(cr.GRIDS[grid]) + len(ctx.seeds) for _, grid, _ in METHODS.values()))
    lrs = _tuned(ctx, METHODS)
    traces = {
        name: cr.runs(ctx, algorithm, TASK, WORKERS, lrs[name], hyper)
        for name, (algorithm, _, hyper) in METHODS.items()
    }
    accuracy = {name: median(final_accuracy(t) for t in ts) for name, ts in traces.items()}
    vote, sgd = traces["majority-vote Signum"][0], traces["SGD (momentum 0.9)"][0]
    d = vote.counter("payload_bits") / len(vote.steps)  # bits each worker sends per step
    wire = (sgd.total_bytes / len(sgd.steps)) / (vote.total_bytes / len(vote.steps))
    best_other = min(accuracy["SGD (momentum 0.9)"], accuracy["Adam"])
    holds = accuracy["majority-vote Signum"] >= best_other - ACCURACY_SLACK
    verdict = Verdict.HOLDS if holds else Verdict.DOES_NOT_HOLD
    summary = (
        f"{WORKERS} simulated workers, {cr.epochs(ctx)} epochs of {TASK}, medians of "
        f"{len(ctx.seeds)} seeds at tuned lr. Test accuracy: "
        + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items())
        + f". Each worker sends {d:.0f} bits up per step, one per coordinate (32x fewer than "
        f"float32), and receives as many down; measured wire bytes per worker-step (all-to-all "
        f"+ all-gather, with padding) are {wire:.1f}x fewer than a ring all-reduce of float32."
        + cr.edge_note(lrs, {k: v[1] for k, v in METHODS.items()})
    )
    table = [
        {"method": k, "tuned lr": lrs[k], "test accuracy": f"{accuracy[k]:.3f}"} for k in METHODS
    ]
    figure = trace_figure({k: v[0] for k, v in traces.items()})
    numbers = {"accuracy": accuracy, "bits_per_step": d, "wire_ratio": wire, "lr": lrs}
    return ClaimResult(verdict, summary, numbers, table, figure)


def run_byzantine(ctx: RunContext) -> ClaimResult:
    compared = {k: METHODS[k] for k in ("majority-vote Signum", "SGD (momentum 0.9)")}
    ctx.plan(
        sum(len(cr.GRIDS[g]) + len(ADVERSARIES) * len(ctx.seeds) for _, g, _ in compared.values())
    )
    lrs = _tuned(ctx, compared)
    accuracy = {
        name: {
            f: median(
                final_accuracy(t)
                for t in cr.runs(
                    ctx, algorithm, TASK, WORKERS, lrs[name], (*hyper, ("byzantine", f))
                )
            )
            for f in ADVERSARIES
        }
        for name, (algorithm, _, hyper) in compared.items()
    }
    vote, mean = accuracy["majority-vote Signum"], accuracy["SGD (momentum 0.9)"]
    vote_ok = vote[3] >= vote[0] - NEAR_CLEAN
    mean_degrades = mean[3] <= mean[0] - NEAR_CLEAN
    if vote_ok and mean_degrades:
        verdict = Verdict.HOLDS
    elif not vote_ok:
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    summary = (
        f"Median test accuracy with f of {WORKERS} workers inverting (signs for the vote, "
        f"gradients for mean-aggregated SGD), f = {', '.join(map(str, ADVERSARIES))}: "
        f"majority vote {', '.join(f'{vote[f]:.3f}' for f in ADVERSARIES)}; mean aggregation "
        f"{', '.join(f'{mean[f]:.3f}' for f in ADVERSARIES)}."
        + cr.edge_note(lrs, {k: v[1] for k, v in compared.items()})
    )
    table = [
        {"f": f, "majority vote": f"{vote[f]:.3f}", "mean aggregation": f"{mean[f]:.3f}"}
        for f in ADVERSARIES
    ]
    figure = Figure(figsize=(6, 4))
    ax = figure.subplots()
    for name, values in accuracy.items():
        ax.plot(ADVERSARIES, [values[f] for f in ADVERSARIES], marker="o", label=name)
    ax.set_xlabel(f"workers inverting (of {WORKERS})")
    ax.set_ylabel("median final test accuracy")
    ax.set_xticks(ADVERSARIES)
    ax.legend()
    figure.tight_layout()
    return ClaimResult(verdict, summary, {"accuracy": accuracy, "lr": lrs}, table, figure)


SIGNSGD_MAJORITY_VOTE = Claim(
    id="signsgd-majority-vote",
    statement=(
        "signSGD with majority vote (each worker sends the sign of its momentum, the server "
        "returns the majority sign) trains like full-precision distributed SGD with 32x less "
        "communication per iteration each way."
    ),
    source="Bernstein, Zhao, Azizzadenesheli, Anandkumar, ICLR 2019 (arXiv 1810.05291): abstract",
    criterion=(
        f"Holds if majority-vote Signum's median final test accuracy ({WORKERS} workers, equal "
        f"epochs, tuned lr) is at least the lower of momentum SGD's and Adam's minus "
        f"{ACCURACY_SLACK}; the bits per step are reported, counted exactly."
    ),
    run=run_vote,
)

BYZANTINE = Claim(
    id="majority-vote-is-byzantine-tolerant",
    statement=(
        "Majority vote is robust when up to half of the workers are adversarial: with 3 of 7 "
        "inverting their signs it still converges, while mean aggregation degrades."
    ),
    source="Bernstein, Zhao, Azizzadenesheli, Anandkumar, ICLR 2019 (arXiv 1810.05291): abstract",
    criterion=(
        f"Holds if the vote's median test accuracy with 3 of {WORKERS} inverting workers is "
        f"within {NEAR_CLEAN} of its clean accuracy and mean-aggregated momentum SGD's falls by "
        f"at least {NEAR_CLEAN}; does not hold if the vote falls by more than {NEAR_CLEAN}; "
        f"inconclusive otherwise. Each method keeps its lr tuned without adversaries."
    ),
    run=run_byzantine,
)
