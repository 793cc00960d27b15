"""Claim: M-SGD, M-SSD, M-SVAG and Adam rank differently on different problems."""

from __future__ import annotations

import math
import statistics
from collections import Counter

from gradkit.claims import base
from gradkit.claims.base import Claim, ClaimResult, RunContext, Verdict
from gradkit.experiments import Budget, LrRange, Method, Metric, training
from gradkit.experiments import stats as st
from gradkit.report.figures import seeds_figure

PROBLEMS = ("mnist1d-mlp", "digits-cnn", "mnist1d-rnn")
METHODS = (
    Method("msgd", "M-SGD", LrRange(0.0215, 1.0)),
    Method("signum", "M-SSD", LrRange(1e-3, 0.0215)),
    # dampened momentum (1 - beta) g: ~10x heavy-ball SGD's rates
    Method("msvag", "M-SVAG", LrRange(0.215, 21.5)),
    Method("adam", "Adam", LrRange(0.00215, 0.1)),
)
LABELS = base.labels_of(METHODS)
SIGN_BASED = ("signum", "adam")
NO_HARM = 1.1
"""M-SVAG does no harm if its train loss is decidedly below 1.1x M-SGD's (per-seed log ratio)."""
BUDGET = Budget(
    smoke=1,
    quick=15,
    full=60,
    paper="Fashion-MNIST MLP, CIFAR-10/100 CNNs and a char-LSTM, full schedules",
    why="15 epochs (quick; the tasks' default is 20): the claim is about train loss, still "
    "falling there, so the ranking reflects optimisation speed.",
)
TUNE_ON = Metric("train_loss")


def decide(loss: dict[str, dict[str, list[float]]]) -> tuple[Verdict, dict[str, dict[str, str]]]:
    """(i) M-SVAG no worse than M-SGD: per problem, the 90% t-interval of the per-seed
    log(M-SVAG loss / M-SGD loss) lies below log(NO_HARM) (YES) or at or above it (NO); the
    part holds if YES on at least 2 of 3 problems and fails if NO on at least 2.
    (ii) Problem dependence: per problem, the best sign-based method (lower median loss) against
    the best other: sign wins if the interval of their log-loss difference lies below 0, loses
    if above; the part holds if the sign wins decidedly somewhere and loses decidedly
    elsewhere, and fails if it is decided the same way on every problem.
    Holds if both parts hold, does not hold if either fails, inconclusive otherwise."""
    no_harm, sign_wins = {}, {}
    for p, per in loss.items():
        ratio = st.paired_interval(st.logs(per["msvag"]), st.logs(per["msgd"]))
        no_harm[p] = st.less(ratio, math.log(NO_HARM))
        median = {m: statistics.median(v) for m, v in per.items()}
        sign = min(SIGN_BASED, key=median.get)
        other = min((m for m in per if m not in SIGN_BASED), key=median.get)
        sign_wins[p] = st.less(st.paired_interval(st.logs(per[sign]), st.logs(per[other])))
    yes, no, undecided = st.Decision.YES, st.Decision.NO, st.Decision.UNDECIDED
    harm_counts = Counter(no_harm.values())
    harmless = yes if harm_counts[yes] >= 2 else no if harm_counts[no] >= 2 else undecided
    signs = set(sign_wins.values())
    depends = yes if {yes, no} <= signs else undecided if undecided in signs else no
    details = {
        "msvag_no_worse_than_msgd": {p: d.value for p, d in no_harm.items()},
        "sign_based_best": {p: d.value for p, d in sign_wins.items()},
    }
    return base.verdict_from([harmless, depends]), details


def run(ctx: RunContext) -> ClaimResult:
    epochs = BUDGET.at(ctx.scale)
    outcomes = ctx.compare({p: training(p) for p in PROBLEMS}, METHODS, epochs, TUNE_ON)
    ctx.settle(outcomes, lambda o: decide(base.per_seed(o, "train_loss"))[0])
    values = {metric: base.per_seed(outcomes, metric) for metric in base.TRAINING_METRICS}
    verdict, details = decide(values["train_loss"])
    rankings = {
        p: [LABELS[m] for m in sorted(per, key=lambda m: per[m].median("train_loss"))]
        for p, per in outcomes.items()
    }
    ranked = "; ".join(f"{p}: {' < '.join(r)}" for p, r in rankings.items())
    summary = (
        f"After {epochs} epochs at each method's tuned lr ({len(ctx.seeds)} seeds), ranking by "
        f"median final train loss: {ranked}. M-SVAG decidedly below {NO_HARM}x M-SGD's loss: "
        f"{base.listed(details['msvag_no_worse_than_msgd'])}; best sign-based method decidedly "
        f"better than the best other: {base.listed(details['sign_based_best'])}."
        + base.search_notes(outcomes)
    )
    numbers = base.comparison_numbers(
        ctx, BUDGET, outcomes, epochs=epochs, **values, rankings=rankings, **details
    )
    table = base.outcome_table(outcomes, LABELS, base.TRAINING_CELLS)
    fig = seeds_figure(values, base.TRAINING_METRICS, LABELS)
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="msvag-vs-adam",
    statement=(
        "'Square root free' Adam (variance adaptation applied to momentum SGD, M-SVAG) helps on "
        "some problems; whether the sign (M-SSD, Adam) or the magnitude (M-SGD, M-SVAG) wins is "
        "problem-dependent."
    ),
    source="Balles & Hennig, Dissecting Adam, ICML 2018 (arXiv 1705.07774)",
    criterion=(
        "M-SGD, M-SSD, M-SVAG, Adam on the mnist1d MLP, the digits CNN and the mnist1d GRU; each "
        "method's lr searched in its own range (M-SVAG's ~10x M-SGD's; 3 points per decade, "
        "widened at the edges, successive halving) by a tuning run's train loss; then >= 3 "
        "seeds. 90% t-intervals of per-seed log-loss differences. (i) M-SVAG's loss below "
        f"{NO_HARM}x M-SGD's, decided YES on >= 2 of 3 problems (fails if decided NO on >= 2); "
        "(ii) the best sign-based method decidedly beats the best other on some problem and "
        "decidedly loses on another (fails if decided the same way on all three). Holds if (i) "
        "and (ii) hold; does not hold if either fails; inconclusive otherwise."
    ),
    run=run,
)
