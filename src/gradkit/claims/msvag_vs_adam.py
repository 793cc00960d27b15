"""Claim: 'square root free' Adam (M-SVAG) helps on some problems.

The notes: "'Square root free' version of Adam is called 'Stochastic Variance Adapted Gradient'
and they show it helps in some problems. In the graph below, green is Adam and red is SVAG."
So the judged comparison is M-SVAG against Adam, on some problem; how M-SVAG compares with
M-SGD, and whether the sign (M-SSD, Adam) or the magnitude (M-SGD, M-SVAG) wins where, are
the paper's further points and are reported, not judged."""

from __future__ import annotations

import math
import statistics

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
JUDGED = ("msvag", "adam")
REPORTED = tuple(m for m in METHODS if m.name not in JUDGED)
"""M-SGD and M-SSD: searched and run at smoke and full scale only, on the seeds the judged
comparison settled on."""
SIGN_BASED = ("signum", "adam")
NO_HARM = 1.1
"""Reported: M-SVAG does no harm if its train loss is decidedly below 1.1x M-SGD's."""
SKIPPED_AT_QUICK = (
    f"M-SGD and M-SSD, each lr searched (M-SVAG against {NO_HARM}x M-SGD's loss, and whether "
    "the sign or the magnitude wins where)"
)
BUDGET = Budget(
    smoke=1,
    quick=8,
    full=60,
    paper="Fashion-MNIST MLP, CIFAR-10/100 CNNs and a char-LSTM, full schedules",
    why="8 epochs (quick, shortened for the suite's time; the tasks' default is 20): the claim "
    "is about train loss, still falling there, so the ranking reflects optimisation speed; the "
    "full scale trains 60.",
)
TUNE_ON = Metric("train_loss")


def decide(loss: dict[str, dict[str, list[float]]]) -> tuple[Verdict, dict[str, dict[str, str]]]:
    """M-SVAG helps on a problem if the 90% t-interval of the per-seed log(M-SVAG loss / Adam
    loss) lies below 0 (YES), and does not if it lies at or above 0 (NO). Holds if it helps on
    some problem; does not hold if it decidedly does not on every problem; inconclusive
    otherwise. Reported alongside, where M-SGD and M-SSD ran: :func:`reported`."""
    helps = {
        p: st.less(st.paired_interval(st.logs(per["msvag"]), st.logs(per["adam"])))
        for p, per in loss.items()
    }
    details = {"msvag_beats_adam": {p: d.value for p, d in helps.items()}} | reported(loss)
    return base.verdict_from([st.any_of(list(helps.values()))]), details


def reported(loss: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, str]]:
    """On the problems where every method ran (the reported ones run at smoke and full scale;
    none: {}): M-SVAG's loss decidedly below NO_HARM x M-SGD's, and the best sign-based
    method's (by median) decidedly below the best other's."""
    no_harm, sign_wins = {}, {}
    for p, per in loss.items():
        if set(per) != set(LABELS):
            continue
        ratio = st.paired_interval(st.logs(per["msvag"]), st.logs(per["msgd"]))
        no_harm[p] = st.less(ratio, math.log(NO_HARM)).value
        median = {m: statistics.median(v) for m, v in per.items()}
        sign = min(SIGN_BASED, key=median.get)
        other = min((m for m in per if m not in SIGN_BASED), key=median.get)
        sign_wins[p] = st.less(st.paired_interval(st.logs(per[sign]), st.logs(per[other]))).value
    if not no_harm:
        return {}
    return {"msvag_no_worse_than_msgd": no_harm, "sign_based_best": sign_wins}


def reported_text(details: dict[str, dict[str, str]]) -> str:
    """The reported decisions of :func:`reported`, or what the quick scale left out."""
    if "sign_based_best" not in details:
        return "." + base.full_scale_only(SKIPPED_AT_QUICK)
    return (
        f"; reported: M-SVAG decidedly below {NO_HARM}x M-SGD's loss: "
        f"{base.listed(details['msvag_no_worse_than_msgd'])}; best sign-based method decidedly "
        f"better than the best other: {base.listed(details['sign_based_best'])}."
    )


def run(ctx: RunContext) -> ClaimResult:
    epochs = BUDGET.at(ctx.scale)
    problems = {p: training(p) for p in PROBLEMS}
    compared = [m for m in METHODS if m.name in JUDGED]
    outcomes = ctx.compare(problems, compared, epochs, TUNE_ON)
    ctx.settle(outcomes, lambda o: decide(base.per_seed(o, "train_loss"))[0])
    if ctx.reports_extras:  # on the seeds the judged runs settled on
        extra = ctx.compare(problems, REPORTED, epochs, TUNE_ON)
        outcomes = {
            p: {m.name: (per | extra[p])[m.name] for m in METHODS} for p, per in outcomes.items()
        }
    values = {metric: base.per_seed(outcomes, metric) for metric in base.TRAINING_METRICS}
    verdict, details = decide(values["train_loss"])
    rankings = {
        p: [LABELS[m] for m in sorted(per, key=lambda m: per[m].median("train_loss"))]
        for p, per in outcomes.items()
    }
    ranked = "; ".join(f"{p}: {' < '.join(r)}" for p, r in rankings.items())
    summary = (
        f"After {epochs} epochs at each method's tuned lr ({len(ctx.seeds)} seeds), ranking by "
        f"median final train loss: {ranked}. M-SVAG decidedly below Adam's loss (judged): "
        f"{base.listed(details['msvag_beats_adam'])}"
        + reported_text(details)
        + base.search_notes(outcomes)
    )
    numbers = base.comparison_numbers(
        ctx, BUDGET, outcomes, epochs=epochs, **values, rankings=rankings, **details
    )
    table = base.outcome_table(outcomes, LABELS, base.TRAINING_CELLS)
    fig = seeds_figure(values, base.TRAINING_METRICS, LABELS, list(outcomes[PROBLEMS[0]]))
    return ClaimResult(verdict, summary, numbers, table, fig)


CLAIM = Claim(
    id="msvag-vs-adam",
    notes=(
        '"Square root free" version of Adam is called "Stochastic Variance Adapted Gradient" '
        "and they show it helps in some problems. In the graph below, green is Adam and red is "
        "SVAG."
    ),
    statement=(
        "'Square root free' Adam (variance adaptation without the square root, applied to "
        "momentum SGD: M-SVAG) 'helps in some problems' (the notes), against Adam."
    ),
    source="Balles & Hennig, Dissecting Adam, ICML 2018 (arXiv 1705.07774)",
    criterion=(
        "M-SGD, M-SSD, M-SVAG, Adam on the mnist1d MLP, the digits CNN and the mnist1d GRU; each "
        "method's lr searched in its own range (M-SVAG's ~10x M-SGD's; 3 points per decade, "
        "successive halving, the choice a local optimum at the full budget on three tuning "
        "seeds) by the tuning runs' train loss; then >= 3 seeds. Per problem, the t-interval "
        "of per-seed log(M-SVAG loss / Adam loss): M-SVAG helps if it lies below 0, does not "
        "if it lies at or above 0. Holds if M-SVAG helps on some problem; does not hold if it "
        "decidedly does not on all three; inconclusive otherwise. M-SVAG against "
        f"{NO_HARM}x M-SGD's loss and whether the sign or the magnitude wins where are "
        "reported, not judged; M-SGD and M-SSD run at smoke and full scale (on the seeds the "
        "judged comparison settled on)."
    ),
    run=run,
)
