"""What a claim is, what running it produces, and the context it runs in."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from matplotlib.figure import Figure

from gradkit.experiments import (
    Budget,
    Executor,
    MethodOutcome,
    SearchAudit,
    audit_searches,
    compare_on_problems,
    evaluation_seeds,
    runs_at,
    stats,
)
from gradkit.experiments.stats import Decision

SCALES = ("smoke", "quick", "full")
"""smoke: every claim end to end in seconds, verdicts not meaningful (for tests); quick: the
default, budgets that let the effects show in minutes; full: the papers'-like budgets."""


class Verdict(StrEnum):
    HOLDS = "holds"
    DOES_NOT_HOLD = "does not hold"
    INCONCLUSIVE = "inconclusive"


def verdict_from(decisions, fails_when: str = "any", fails_on=None) -> Verdict:
    """HOLDS if every decision is YES; DOES_NOT_HOLD if ``"any"``, ``"most"`` (more than half)
    or ``"all"`` of ``fails_on`` (default: the decisions) are NO; INCONCLUSIVE otherwise."""
    decisions = list(decisions)
    if all(d == Decision.YES for d in decisions):
        return Verdict.HOLDS
    failing = decisions if fails_on is None else list(fails_on)
    noes = sum(d == Decision.NO for d in failing)
    fails = {"any": noes > 0, "most": noes > len(failing) / 2, "all": noes == len(failing)}
    return Verdict.DOES_NOT_HOLD if fails[fails_when] else Verdict.INCONCLUSIVE


def judged(
    decisions: Mapping[str, Decision], fails_when: str = "any", fails_on: Iterable[str] = ()
) -> tuple[Verdict, dict[str, str]]:
    """:func:`verdict_from` of named decisions (``fails_on`` names those that can fail the
    claim; default all), and the decisions as strings, for a claim's numbers."""
    failing = [decisions[k] for k in fails_on] or None
    verdict = verdict_from(decisions.values(), fails_when, failing)
    return verdict, {k: d.value for k, d in decisions.items()}


@dataclass
class ClaimResult:
    """The outcome of one claim: verdict, a summary with the numbers, a table and a figure."""

    verdict: Verdict
    summary: str
    numbers: dict[str, Any]
    table: list[dict[str, Any]] = field(default_factory=list)
    figure: Figure | None = None


@dataclass
class RunContext:
    """Scale, seeds, the executor of runs and a progress sink for a claim's run.

    ``plan(units)`` announces how many units of work (training runs, usually) the claim will do;
    ``advance()`` reports one done. Claims on :mod:`gradkit.experiments` submit their runs to
    ``executor`` (cached, parallel), which reports progress itself. With ``audits`` a list,
    every tuned comparison also audits its searches against the full grid
    (:func:`gradkit.experiments.audit_searches`) into it.
    """

    scale: str
    seeds: list[int]
    on_plan: Callable[[int], None] = lambda units: None
    on_advance: Callable[[int], None] = lambda units: None
    executor: Executor = field(default_factory=Executor)
    audits: list[SearchAudit] | None = None
    settlements: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.first_seeds = len(self.seeds)  # settling may add seeds; the stages stay planned

    @property
    def stages(self) -> list[int]:
        """Evaluation seed counts a claim may look at in turn while undecided: n, 2n, 10n/3 at
        quick scale (3, 6, 10 for n = 3), and 20n/3 too at full scale; n alone at smoke (n: the
        seeds the claim started with)."""
        n = self.first_seeds
        quick = [n, 2 * n, -(-10 * n // 3)]
        return {"smoke": [n], "quick": quick, "full": [*quick, -(-20 * n // 3)]}[self.scale]

    @property
    def level(self) -> float:
        """Each look's interval level: 90% over all the looks a claim may take (Bonferroni:
        1 - 0.10 / looks), so undecided claims looking again do not decide by chance."""
        return 1 - (1 - stats.LEVEL) / len(self.stages)

    def settle(self, outcomes, judge: Callable[[Any], Verdict]):
        """Seeds until decided, then the fragility check, for a comparison judged by
        ``judge(outcomes)`` (the claim's decision on these outcomes alone).

        From here on every interval of the claim is at :attr:`level`. While ``judge`` is
        inconclusive, every outcome runs the next stage's seeds (:attr:`stages`). Once decided,
        each searched method's rate is moved one lattice point down and up (one method at a
        time, with the same seeds): a verdict that reverses there is fragile, and the claim's
        verdict becomes inconclusive (:func:`apply_settlements`). A neighbour where the verdict
        is only undecided is an undecided comparison like any other: while stages are left,
        every outcome runs the next stage's seeds and the claim is judged and checked again; at
        the last stage an undecided neighbour too makes the verdict fragile. Returns
        ``outcomes``, extended; the seeds used, the looks, the flips and the undecided
        neighbours that asked for more seeds are kept in :attr:`settlements`, and the seeds used
        become the claim's :attr:`seeds`."""
        stats.set_level(self.level)
        seeds, looks, later = list(self.seeds), 1, iter(self.stages[1:])
        undecided_neighbours = []
        while True:
            verdict, count = judge(outcomes), next(later, None)
            flips, unusable, unchecked = [], [], 0  # of this look: a later one may be undecided
            if verdict != Verdict.INCONCLUSIVE:
                flips, unusable, unchecked = self._flips(
                    outcomes, judge, verdict, seeds, last=count is None
                )
                reversed_ = any(other != Verdict.INCONCLUSIVE for _, other in flips)
                if not flips or reversed_ or count is None:
                    break
                undecided_neighbours += [f"{move} on {len(seeds)} seeds" for move, _ in flips]
            if count is None:
                break
            seeds = evaluation_seeds(count, self.seeds[0])
            every = [o for per_method in outcomes.values() for o in per_method.values()]
            concurrently([functools.partial(o.extend, self.executor, seeds) for o in every])
            looks += 1
        self.settlements.append(
            {
                "seeds": len(seeds),
                "looks": looks,
                "level": self.level,
                "fragile": [f"{move}: {other.value}" for move, other in flips],
                "diverging_neighbours": unusable,
                "unchecked_neighbours": unchecked,
                "undecided_neighbours": undecided_neighbours,
            }
        )
        self.seeds = seeds  # the claim's evaluation seeds from here on (its summary counts them)
        return outcomes

    def _flips(self, outcomes, judge, verdict: Verdict, seeds: list[int], last: bool):
        """(flips, unusable, unchecked): the moves of one searched method one lattice point
        from its rate where the verdict differs from ``verdict``, as (move, verdict there); the
        moves where the moved method diverges on some seed (such a rate is not one anyone would
        run: the search scores a rate that diverges on any tuning seed as a failure, so its
        verdict is not a flip); and the number of moves left unrun.

        The moves run one method at a time (its two neighbours together) and stop at the first
        method whose moves reverse the verdict, or, at the ``last`` stage, merely make it
        undecided: one such flip already makes the verdict fragile, so the rest could only
        lengthen the list of flips, not change the verdict. Before the last stage an undecided
        neighbour asks for more seeds, so the other methods' moves run too, in case one of them
        reverses the verdict and settles it now."""
        moves = [
            [(problem, name, lr) for lr in outcome.neighbours()]
            for problem, per_method in outcomes.items()
            for name, outcome in per_method.items()
            if outcome.searched
        ]
        flips, unusable = [], []
        for index, wave in enumerate(moves):
            moved = concurrently(
                [
                    functools.partial(outcomes[p][m].at, self.executor, lr, seeds)
                    for p, m, lr in wave
                ]
            )
            for (problem, name, lr), outcome in zip(wave, moved, strict=True):
                move = f"{name} on {problem} at lr {lr:.3g}"
                if any(run.diverged for run in outcome.runs):
                    unusable.append(move)
                    continue
                other = judge({**outcomes, problem: {**outcomes[problem], name: outcome}})
                if other != verdict:
                    flips.append((move, other))
            decisive = [f for f in flips if last or f[1] != Verdict.INCONCLUSIVE]
            if decisive:
                return flips, unusable, sum(len(rest) for rest in moves[index + 1 :])
        return flips, unusable, 0

    def plan(self, units: int) -> None:
        self.on_plan(units)

    def advance(self, units: int = 1) -> None:
        self.on_advance(units)

    def compare(self, problems, methods, budget: int, tune_on, min_rung: int = 1, seeds=None):
        """:func:`gradkit.experiments.compare_on_problems` with this context's executor and
        seeds (or ``seeds``, e.g. none for methods only searched); at smoke scale each method
        runs one rate instead of a search."""
        outcomes = compare_on_problems(
            self.executor,
            problems,
            methods,
            budget,
            tune_on,
            self.seeds if seeds is None else seeds,
            self.scale != "smoke",
            min_rung,
        )
        if self.audits is not None:
            self.audits.extend(audit_searches(self.executor, problems, outcomes, budget, tune_on))
        return outcomes

    def add_reported(self, outcomes, problems, methods, budget: int, tune_on, min_rung: int = 1):
        """Where the claim reports its extras (:attr:`reports_extras`), search and run the
        reported ``methods`` on every problem, on the seeds settling left, and add them to
        ``outcomes`` (in place, after the judged methods); at quick scale, nothing."""
        if self.reports_extras:
            reported = self.compare(problems, methods, budget, tune_on, min_rung)
            for problem, per in outcomes.items():
                per |= reported[problem]
        return outcomes

    def runs_at(self, make_spec, method, lr: float, budget: int):
        """:func:`gradkit.experiments.runs_at` with this context's executor and seeds."""
        return runs_at(self.executor, make_spec, method, lr, budget, self.seeds)

    @property
    def reports_extras(self) -> bool:
        """Whether the claim runs the arms it only reports (methods, cells or scenarios beyond
        its judged comparison): at full scale, and at smoke scale so their code is tested. The
        quick scale runs the judged comparison alone, with every check of the protocol (search,
        seeds until decided, fragility), and says what it left to the full scale
        (:func:`full_scale_only`)."""
        return self.scale != "quick"

    def pick(self, quick, full, smoke=None):
        """The value for this run's scale (``quick``'s at smoke scale when ``smoke`` is None)."""
        if self.scale == "smoke" and smoke is not None:
            return smoke
        return quick if self.scale in ("quick", "smoke") else full


@dataclass(frozen=True)
class Claim:
    """A statement of the notes, turned into an experiment with a criterion fixed in code.

    ``criterion`` states, before anything runs, the ordering or ratio that decides the verdict,
    read from ``notes`` (the notes' sentence); ``run`` implements exactly that criterion.
    """

    id: str
    statement: str
    source: str
    criterion: str
    run: Callable[[RunContext], ClaimResult]
    reported: str = ""  # the paper's own number for what the claim measures, where it has one
    timed: bool = False  # measures wall-clock time: `gradkit reproduce` runs it alone
    notes: str = ""
    """The notes' own sentence the criterion reads, verbatim (docs/ICML2018-notes.md); where the
    claim tests the paper beyond the notes, the notes' nearest sentence, and the criterion says
    so."""


def full_scale_only(what: str) -> str:
    """The summary's sentence for the reported arms a quick run skips
    (:attr:`RunContext.reports_extras`)."""
    return (
        " Reported at full scale only (not judged; the quick scale runs the judged comparison "
        f"alone): {what}."
    )


def per_seed(outcomes: dict[str, dict[str, MethodOutcome]], metric: str):
    """``values[problem][method]``: the metric of every seed's run."""
    return {p: {m: o.values(metric) for m, o in per.items()} for p, per in outcomes.items()}


def tuned_lrs(outcomes: dict[str, dict[str, MethodOutcome]]) -> dict[str, dict[str, float]]:
    return {p: {m: o.lr for m, o in per.items()} for p, per in outcomes.items()}


def search_notes(outcomes: dict[str, dict[str, MethodOutcome]]) -> str:
    """Sentences on searches that widened past their range or stopped at a hard bound."""
    notes = []
    for problem, per_method in outcomes.items():
        for name, outcome in per_method.items():
            if outcome.search.note():
                notes.append(f"{name} on {problem}: {outcome.search.note()}")
            elif outcome.search.widened:
                notes.append(f"{name} on {problem}: search widened to {outcome.search.widened}")
    return (" " + "; ".join(notes) + ".") if notes else ""


def labels_of(methods) -> dict[str, str]:
    return {m.name: m.label for m in methods}


def median_cell(metric: str, spec: str = ".4f") -> Callable[[MethodOutcome], str]:
    """A table cell: the median of ``metric`` over the seeds, formatted by ``spec``."""
    return lambda outcome: format(outcome.median(metric), spec)


def seeds_cell(metric: str, spec: str = "g") -> Callable[[MethodOutcome], str]:
    """A table cell: every seed's ``metric``, formatted by ``spec``, comma-separated."""
    return lambda outcome: ", ".join(format(v, spec) for v in outcome.values(metric))


def outcome_table(
    outcomes: Mapping[str, Mapping[str, MethodOutcome]],
    labels: Mapping[str, str],
    cells: Mapping[str, Callable[[MethodOutcome], Any]],
    rate: str = "tuned lr",
    problem: str = "problem",
) -> list[dict[str, Any]]:
    """One row per (problem, method): the problem under the header ``problem`` (e.g.
    "scenario"), the method's label, its searched rate under the header ``rate``, then one
    column per cell, computed from the outcome. An empty header leaves its column out."""
    return [
        {
            **({problem: problem_name} if problem else {}),
            "method": labels[name],
            **({rate: f"{outcome.lr:.3g}"} if rate else {}),
            **{header: cell(outcome) for header, cell in cells.items()},
        }
        for problem_name, per_method in outcomes.items()
        for name, outcome in per_method.items()
    ]


def comparison_numbers(
    ctx: RunContext,
    budget: Budget,
    outcomes: Mapping[str, Mapping[str, MethodOutcome]],
    /,
    **values,
) -> dict[str, Any]:
    """A tuned comparison's numbers: the setting (ours vs the paper's budget), ``values`` and
    each (problem, method)'s tuned rate."""
    return {"setting": budget.describe(ctx.scale), **values, "tuned_lr": tuned_lrs(outcomes)}


def fixed_outcomes(
    ctx: RunContext, make_spec, methods, lrs: Mapping[str, float], budget: int
) -> dict[str, MethodOutcome]:
    """Each method at a rate set elsewhere (``lrs[method.name]``, e.g. tuned in another
    setting), run with every evaluation seed; the outcomes can run more seeds
    (:meth:`RunContext.settle`)."""
    return {
        m.name: MethodOutcome.fixed(
            m, lrs[m.name], ctx.runs_at(make_spec, m, lrs[m.name], budget), make_spec, budget
        )
        for m in methods
    }


def reached_cell(metric: str, budget: int) -> Callable[[MethodOutcome], str]:
    """A table cell: the median over the seeds of ``metric``, a count to a target (budget + 1:
    not reached), or "not within ``budget``" when the median missed it."""

    def cell(outcome: MethodOutcome) -> str:
        median = outcome.median(metric)
        return f"{median:g}" if median <= budget else f"not within {budget}"

    return cell


def unreached(
    outcomes: Mapping[str, Mapping[str, MethodOutcome]],
    metric: str,
    budget: int,
    labels: Mapping[str, str],
) -> str:
    """A sentence naming every (problem, method) cell none of whose runs reached the target of
    ``metric`` (a count to a target: > ``budget`` on every seed), or "" if every cell did on
    some seed: an unreachable target is reported, not left as a silent "undecided"."""
    cells = {
        problem: [labels[m] for m, o in per.items() if min(o.values(metric)) > budget]
        for problem, per in outcomes.items()
    }
    missed = "; ".join(
        f"{problem}: {'every method' if len(names) == len(outcomes[problem]) else ', '.join(names)}"
        for problem, names in cells.items()
        if names
    )
    return f" Target not reached within {budget} on any seed by: {missed}." if missed else ""


TRAINING_METRICS = {"train_loss": "final train loss", "test_accuracy": "test accuracy"}
"""A trained network's final metrics, with their axis labels."""
TRAINING_CELLS = {
    "train loss (median)": median_cell("train_loss"),
    "test accuracy (median)": median_cell("test_accuracy", ".3f"),
}
"""Table cells of :data:`TRAINING_METRICS`: the medians over the seeds."""


def listed(values: Mapping[str, Any], spec: str = "", sep: str = ", ") -> str:
    """``"key value, key value"``: each key with its value formatted by ``spec``."""
    return sep.join(f"{key} {format(value, spec)}" for key, value in values.items())


def concurrently(calls: list[Callable[[], Any]]) -> list[Any]:
    """The results of ``calls``, made in threads that only wait on the executor, so all their
    runs are in flight together."""
    if not calls:
        return []
    with ThreadPoolExecutor(len(calls)) as threads:
        return [future.result() for future in [threads.submit(call) for call in calls]]


def apply_settlements(result: ClaimResult, settlements: list[dict[str, Any]]) -> ClaimResult:
    """A claim's result after :meth:`RunContext.settle`: the seeds and looks in its summary and
    numbers, and a fragile verdict (one that flips within one lattice point of a chosen rate)
    inconclusive, with the flips in its summary."""
    if not settlements:
        return result
    seen = "; ".join(
        f"{s['seeds']} seeds, {s['looks']} look{'s' if s['looks'] > 1 else ''} at the "
        f"{100 * s['level']:.1f}% level"
        for s in settlements
    )
    summary, verdict = f"{result.summary} Judged on {seen}.", result.verdict
    diverging = [move for s in settlements for move in s.get("diverging_neighbours", [])]
    if diverging:
        summary += (
            f" Not counted as flips, since the moved method diverges there: {'; '.join(diverging)}."
        )
    undecided = [move for s in settlements for move in s.get("undecided_neighbours", [])]
    if undecided:
        summary += (
            " More seeds, since the verdict was undecided one lattice point away on fewer: "
            f"{'; '.join(undecided)}."
        )
    flips = [flip for s in settlements for flip in s["fragile"]]
    if flips and verdict != Verdict.INCONCLUSIVE:
        unchecked = sum(s.get("unchecked_neighbours", 0) for s in settlements)
        rest = (
            f"; {unchecked} other neighbours not run, as this already decides" if unchecked else ""
        )
        summary += (
            f" Fragile, so inconclusive (it was {verdict.value}): the verdict flips within one "
            f"lattice point of a chosen rate ({'; '.join(flips)}{rest})."
        )
        verdict = Verdict.INCONCLUSIVE
    numbers = {**result.numbers, "settled": settlements}
    return replace(result, verdict=verdict, summary=summary, numbers=numbers)
