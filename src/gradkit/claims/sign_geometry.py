"""Claim: sign descent gains over SGD when the curvature is axis-aligned, not when rotated."""

from __future__ import annotations

from matplotlib.figure import Figure

from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.claims.tuning import (
    comparison_units,
    grid_edge_note,
    lr_grid,
    tuned_comparison,
    tuned_lrs,
)

PAIRS = (("signsgd", "sgd"), ("signum", "msgd"))  # (sign method, its non-sign twin)
TASKS = {"axis-aligned": "quadratic-axis", "rotated": "quadratic-rotated"}
EVAL_EVERY = 100  # steps
LAST = 5  # evaluations averaged for the final objective


def run(ctx: RunContext) -> ClaimResult:
    steps = ctx.pick(1000, 5000)
    grid = lr_grid(ctx.scale, 1e-4, 1.0)
    methods = [m for pair in PAIRS for m in pair]
    ctx.plan(len(TASKS) * comparison_units(len(methods), len(grid), len(ctx.seeds)))
    evals_per_epoch = 50_000 // EVAL_EVERY  # the noise set has 50 000 samples, batch size 1
    outcomes = {
        geometry: tuned_comparison(
            ctx,
            task,
            methods,
            epochs=1,
            grid=grid,
            evals_per_epoch=evals_per_epoch,
            max_steps=steps,
            last=LAST,
            validation=False,
        )
        for geometry, task in TASKS.items()
    }
    final = {
        geometry: {m: o.median("test_loss", LAST) for m, o in per_method.items()}
        for geometry, per_method in outcomes.items()
    }
    ratios = {
        f"{sign}/{plain}": {g: final[g][sign] / final[g][plain] for g in TASKS}
        for sign, plain in PAIRS
    }
    primary = ratios["signsgd/sgd"]
    axis, rotated = primary["axis-aligned"], primary["rotated"]
    if axis < 1 <= rotated:
        verdict = Verdict.HOLDS
    elif axis >= 1 or rotated <= axis:
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    momentum = ratios["signum/msgd"]
    summary = (
        f"Final objective f(x) = x'Hx/2 after {steps} steps (median of {len(ctx.seeds)} seeds, "
        f"mean of the last {LAST} evaluations), each method at its best lr on a shared grid. "
        f"signSGD/SGD: {axis:.3f} axis-aligned, {rotated:.3f} rotated. "
        f"Signum/momentum SGD: {momentum['axis-aligned']:.3f} axis-aligned, "
        f"{momentum['rotated']:.3f} rotated." + grid_edge_note(outcomes, grid)
    )
    table = [
        {
            "geometry": g,
            "method": m,
            "tuned lr": f"{outcomes[g][m].lr:.0e}",
            "final f (median)": f"{final[g][m]:.4g}",
        }
        for g in TASKS
        for m in methods
    ]
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, geometry in zip(axes, TASKS, strict=True):
        for method in methods:
            run0 = outcomes[geometry][method].runs[0]
            x = [e["step"] for e in run0.evals]
            y = [e["test_loss"] for e in run0.evals]
            ax.plot(x, y, label=f"{method} (lr {outcomes[geometry][method].lr:.0e})")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"noisy quadratic, {geometry}")
        ax.legend()
    axes[0].set_ylabel("f(x) (seed 0)")
    fig.tight_layout()
    numbers = {
        "steps": steps,
        "final_objective": final,
        "ratios": ratios,
        "tuned_lr": tuned_lrs(outcomes),
    }
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="sign-depends-on-geometry",
    statement=(
        "Whether the sign helps depends on geometry: sign descent gains over SGD when the "
        "Hessian is axis-aligned (diagonally dominant) and loses that gain when it is rotated."
    ),
    source="Balles & Hennig, Dissecting Adam, ICML 2018; Bernstein et al., signSGD, ICML 2018",
    criterion=(
        "Noisy quadratic, d=100, Hessian eigenvalues log-spaced over [0.1, 10], gradient noise "
        "N(0, 25 I), batch 1; lr of each method tuned on a shared log grid (1e-4..1). With "
        "r = f(signSGD)/f(SGD) at the end (median over seeds): holds if r_axis < 1 <= r_rotated; "
        "does not hold if r_axis >= 1 or r_rotated <= r_axis; inconclusive otherwise (the gain "
        "shrinks but persists). Signum vs momentum SGD is reported alongside."
    ),
    run=run,
)
