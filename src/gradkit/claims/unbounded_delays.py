"""Claim: asynchronous SGD converges even when delays grow without bound, polynomially or
linearly, with a step that shrinks slightly faster than 1/n, the quasilinear schedule, whatever
the polynomial's degree (Zhou et al., ICML 2018).

The notes: "In this paper they show that they can even grow grow polynomially, and you'd still
converge to global minimum for a class of convex problems", and "With linear delays, step sizes
(alpha's) must go down slightly faster than geometric rate. Surprisingly, polynomially growing
delays don't require shrinking much faster than for linearly growing delays, and there's no
dependence degree of the polynomial." Judged: the quasilinear schedule converges on the convex
problem under every delay profile (and under linear delays in every seed). Reported, not judged,
at smoke and full scale: the non-convex, variationally coherent problem (the paper's class,
beyond the notes' "class of convex problems"), the n^-q schedules the sufficient conditions cover
(a derivation from the paper's conditions that neither the notes nor the abstract state) and the
schedules they do not.
"""

from __future__ import annotations

from gradkit.claims.base import (
    Claim,
    ClaimResult,
    RunContext,
    Verdict,
    full_scale_only,
    judged,
    labels_of,
    per_seed,
    search_notes,
    tuned_lrs,
)
from gradkit.distributed.delays import DelayProfile
from gradkit.experiments import Budget, LrRange, Method, Metric, delayed
from gradkit.experiments import stats as st
from gradkit.experiments.kinds.async_delays import NOISE, PROBLEMS
from gradkit.optim.schedules import Schedule
from gradkit.report.figures import Panel, curves_figure

DELAYS = {
    "bounded:10": "d_n = 10",
    "power:0.5": "d_n = n^0.5",
    "power:0.8": "d_n = n^0.8",
    "linear:0.5": "d_n = n/2",
}
FIRST_STEPS = LrRange(0.01, 1.0, floor=1e-4, ceiling=10.0)
SCHEDULES = {
    "constant": Method("constant", "constant", FIRST_STEPS, "constant"),
    "poly0.6": Method("poly0.6", "n^-0.6", FIRST_STEPS, "polynomial", (("q", 0.6),)),
    "poly0.95": Method("poly0.95", "n^-0.95", FIRST_STEPS, "polynomial", (("q", 0.95),)),
    "quasilinear": Method("quasilinear", "quasilinear", FIRST_STEPS, "quasilinear"),
}
LABELS = labels_of(SCHEDULES.values())
BUDGET = Budget(
    smoke=500,
    quick=20_000,
    full=200_000,
    paper="a convergence theorem (with probability 1, as n -> infinity); at most small "
    "numerical illustrations",
    why="20 000 updates let the linear delay reach 10 000 and the quasilinear step fall to "
    "1/300 of its first value; convergence is judged by the distance still falling over the "
    "last decade of updates, which any finite budget can show.",
    unit="server updates",
)
TUNE_ON = Metric("distance")


def satisfies(schedule: str, delays: str) -> bool:
    """Whether the sufficient conditions hold for this schedule under these delays."""
    method, exponent = SCHEDULES[schedule], DelayProfile.parse(delays).exponent
    return Schedule(method.runs, **dict(method.hyper)).satisfies(exponent)


CELLS = {f"{p}, {DELAYS[d]}": (p, d) for p in PROBLEMS for d in DELAYS}
"""Cell name -> (problem, delays)."""


def converges(distance: list[float], decade: list[float]) -> st.Decision:
    """YES if the 90% t-intervals over seeds put log(distance) (relative to the start) and
    log(decade ratio) below 0: closer than the start, and still approaching x* over the last
    decade of updates; NO if either lies at or above 0."""
    zeros = [0.0] * len(distance)
    return st.all_of([st.less(st.paired_interval(st.logs(v), zeros)) for v in (distance, decade)])


CONVEX, QUASI, LINEAR = "quadratic", "quasilinear", "linear:0.5"
"""The notes' 'class of convex problems' (a strongly convex quadratic), the notes' schedule
('slightly faster than' 1/n for linear delays, whatever the degree) and the linear delays."""
UNRUN = (
    "the non-convex problem under every delay profile and the other schedules (constant, n^-0.6, "
    "n^-0.95) on both problems, each c searched alike"
)
"""The reported (cell, schedule) pairs, as the quick scale's summary names them."""


def decide(distance, decade) -> tuple[Verdict, dict[str, str]]:
    """``distance[cell][schedule]`` and ``decade[cell][schedule]`` per seed, cells named as
    in :data:`CELLS`. Holds if on the convex problem under every delay profile the quasilinear
    schedule converges (:func:`converges` YES), and under d_n = n/2 has both ratios below 1 in
    every seed; does not hold if any of these is NO (or fails in a seed); inconclusive
    otherwise."""
    decisions = {}
    for name, (problem, delays) in CELLS.items():
        if problem != CONVEX:
            continue
        decisions[f"{name}: {LABELS[QUASI]}"] = converges(
            distance[name][QUASI], decade[name][QUASI]
        )
        if delays == LINEAR:
            quasi = distance[name][QUASI] + decade[name][QUASI]
            every = st.Decision.YES if all(v < 1 for v in quasi) else st.Decision.NO
            decisions[f"{problem}: quasilinear under n/2 in every seed"] = every
    return judged(decisions)


def reported(distance, decade) -> dict[str, str]:
    """:func:`converges` of every other (cell, schedule) the sufficient conditions cover
    (reported, not judged)."""
    return {
        f"{name}: {LABELS[s]}": converges(distance[name][s], decade[name][s]).value
        for name, (problem, delays) in CELLS.items()
        for s in SCHEDULES
        if satisfies(s, delays) and (problem, s) != (CONVEX, QUASI)
    }


def judged_outcomes(outcomes) -> dict:
    """The outcomes :func:`decide` reads: the quasilinear schedule on the convex problem."""
    return {n: {QUASI: outcomes[n][QUASI]} for n, (p, _) in CELLS.items() if p == CONVEX}


def reported_text(outcomes, distance, decade) -> str:
    """The summary's sentences on the reported (cell, schedule) pairs: whether those the
    sufficient conditions cover converge, and the final distance of those they do not."""
    others = reported(distance, decade)
    unsettled = [k for k, v in others.items() if v != "yes"]
    violators = [
        f"{name}: {LABELS[s]} {o.median('distance'):.2g}"
        for name, per in outcomes.items()
        for s, o in per.items()
        if not satisfies(s, CELLS[name][1])
    ]
    return (
        " Reported, not judged (the non-convex problem, the n^-q schedules the conditions "
        f"cover), converges: {sum(v == 'yes' for v in others.values())} of {len(others)} yes"
        + (f" (not: {'; '.join(unsettled)})" if unsettled else "")
        + ". Median final ||x - x*|| / ||x_1 - x*|| of the schedules the conditions do not "
        "cover (reported, not required): " + "; ".join(violators) + "."
    )


def run(ctx: RunContext) -> ClaimResult:
    updates = BUDGET.at(ctx.scale)
    cells = CELLS if ctx.reports_extras else {n: c for n, c in CELLS.items() if c[0] == CONVEX}
    schedules = list(SCHEDULES.values()) if ctx.reports_extras else [SCHEDULES[QUASI]]
    problems = {name: delayed(*where) for name, where in cells.items()}
    outcomes = ctx.compare(problems, schedules, updates, TUNE_ON)
    ctx.settle(
        judged_outcomes(outcomes),
        lambda o: decide(per_seed(o, "distance"), per_seed(o, "decade_ratio"))[0],
    )
    distance, decade = per_seed(outcomes, "distance"), per_seed(outcomes, "decade_ratio")
    verdict, decisions = decide(distance, decade)
    others = reported(distance, decade) if ctx.reports_extras else {}
    failing = [k for k, v in decisions.items() if v != "yes"]
    rows = [(name, s, o) for name, per in outcomes.items() for s, o in per.items()]
    summary = (
        f"x_(n+1) = x_n - alpha_n (grad f(x_(n - d_n)) + {NOISE:g} z_n), d = 20, x* = 0, "
        f"{updates} updates, each schedule's first step c tuned per cell; "
        f"{sum(v == 'yes' for v in decisions.values())} of {len(decisions)} checks decided "
        "yes"
        + (f" (not: {'; '.join(failing)})" if failing else "")
        + "."
        + (
            reported_text(outcomes, distance, decade)
            if ctx.reports_extras
            else full_scale_only(UNRUN)
        )
        + search_notes(outcomes)
    )
    table = [
        {
            "problem, delays": name,
            "schedule": LABELS[s],
            "covered by the conditions": "yes" if satisfies(s, CELLS[name][1]) else "no",
            "judged": "yes" if (CELLS[name][0], s) == (CONVEX, QUASI) else "no",
            "c": f"{o.lr:.3g}",
            "final distance (median)": f"{o.median('distance'):.3g}",
            "last-decade ratio (median)": f"{o.median('decade_ratio'):.3g}",
        }
        for name, s, o in rows
    ]
    numbers = {
        "setting": BUDGET.describe(ctx.scale),
        "distance": distance,
        "decade_ratio": decade,
        "tuned_c": tuned_lrs(outcomes),
        "decisions": decisions,
        "reported_converges": others,
    }
    panels = [
        Panel(name, "distance", "update n", "||x_n - x*|| / ||x_1 - x*||", log_x=True)
        for name in outcomes
    ]
    fig = curves_figure(outcomes, list(SCHEDULES), panels, LABELS, dict.fromkeys(SCHEDULES, "c"))
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="async-sgd-survives-unbounded-delays",
    notes=(
        "In this paper they show that they can even grow grow polynomially, and you'd still "
        "converge to global minimum for a class of convex problems."
    ),
    statement=(
        "Asynchronous SGD converges to the global minimum of a convex problem even when "
        "gradient delays grow without bound, polynomially or linearly in the update count, with "
        "a step that decays slightly faster than 1/n (the quasilinear schedule) whatever the "
        "polynomial's degree."
    ),
    source="Zhou, Mertikopoulos, Bambos, Glynn, Ye, Li & Fei-Fei, Distributed Asynchronous "
    "Optimization with Unbounded Delays: How Slow Can You Go?, ICML 2018 (PMLR 80, zhou18b)",
    criterion=(
        "x_(n+1) = x_n - alpha_n (grad f(x_(n - d_n)) + 0.1 z_n) exactly (a ring buffer of "
        "iterates), float64, d = 20, x_1 ~ N(0, 4 I), on a strongly convex quadratic "
        "(eigenvalues 1..4, random basis; the notes' 'class of convex problems') and on sum "
        "log(1 + x_i^2) (variationally coherent, the paper's class beyond the notes'), x* = 0; "
        "delays d_n = 10, n^0.5, n^0.8, n/2; schedules constant, n^-0.6, n^-0.95 and "
        "quasilinear c h(16)/h(n+15), h(m) = m log m log log m (the notes' step 'slightly "
        "faster' than 1/n, with 'no dependence [on the] degree of the polynomial'), each with "
        "its first step c searched per (problem, delays) (3 points per decade, widened at the "
        "edges, successive halving) on the final distance; >= 3 seeds. Holds if on the "
        "quadratic under every delay profile the t-intervals of the quasilinear schedule's "
        "log(final distance / start) and log(distance over the last 5% of updates / the same "
        "at a tenth of them) both lie below 0, and under d_n = n/2 both ratios are below 1 in "
        "every seed; does not hold if any is decidedly false; inconclusive otherwise. Reported, "
        "not judged, at smoke and full scale: the non-convex problem, the n^-q schedules for "
        "(1 + p)/2 < q <= 1 under d_n = O(n^p) (derived from the paper's sufficient "
        "conditions; neither the notes nor the abstract state them) and the schedules the "
        "conditions do not cover."
    ),
    run=run,
    reported="convergence with probability 1 under polynomially growing delays with a "
    "'judiciously chosen quasilinear step-size sequence' (abstract); no figure is quoted.",
)
