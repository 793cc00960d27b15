"""The verdict protocol after the search: seeds in stages until decided (with the interval level
corrected for the looks), and the fragility check at the lattice neighbours of each rate."""

from __future__ import annotations

import contextvars

import pytest

from experiment_helpers import toy_run
from gradkit.claims.base import ClaimResult, RunContext, Verdict, apply_settlements
from gradkit.experiments import Executor, LrRange, Method, Metric, RunSpec
from gradkit.experiments import stats as st

METHODS = [Method("a", "A", LrRange(1e-3, 1e-1)), Method("b", "B", LrRange(1e-3, 1e-1))]


def toy(gap: float, noise: float, diverge_above: float = 1e9):
    """B's loss is A's plus ``gap``, each with its own seed noise; both optimal at 0.01; rates
    above ``diverge_above`` diverge on seed 1."""

    def make(method, lr, budget, seed, tuning):
        shift, salt = (gap, 1) if method.name == "b" else (0.0, 0)
        return RunSpec.of(
            toy_run, lr=lr, budget=budget, seed=seed, shift=shift, noise=noise, salt=salt,
            diverge_above=diverge_above, diverging_seed=1,
        )  # fmt: skip

    return {"toy": make}


def a_beats_b(outcomes) -> Verdict:
    per = outcomes["toy"]
    decision = st.less(st.paired_interval(per["a"].values("loss"), per["b"].values("loss")))
    return {st.Decision.YES: Verdict.HOLDS, st.Decision.NO: Verdict.DOES_NOT_HOLD}.get(
        decision, Verdict.INCONCLUSIVE
    )


def settled(gap: float, noise: float, scale: str = "quick", diverge_above: float = 1e9):
    """A claim's comparison, settled in its own context (as ``reproduce`` runs each claim, so
    the level it sets stays there): the context, the outcomes, the verdict at the first look,
    and the level of an interval computed after settling."""

    def claim():
        ctx = RunContext(scale, [0, 1, 2], executor=Executor())
        outcomes = ctx.compare(toy(gap, noise, diverge_above), METHODS, 9, Metric("loss"))
        with st.confidence(ctx.level):
            first_look = a_beats_b(outcomes)
        ctx.settle(outcomes, a_beats_b)
        after = st.paired_interval([1.0, 2.0, 3.5], [0.0] * 3).level
        return ctx, outcomes, first_look, after

    return contextvars.copy_context().run(claim)


def test_stages_and_the_level_corrected_for_the_looks():
    assert RunContext("smoke", [0, 1, 2]).stages == [3]
    assert RunContext("quick", [0, 1, 2]).stages == [3, 6, 10]
    assert RunContext("full", [0, 1, 2]).stages == [3, 6, 10, 20]
    assert RunContext("quick", [0, 1, 2]).level == pytest.approx(1 - 0.10 / 3)
    assert RunContext("smoke", [0, 1, 2]).level == pytest.approx(0.9)  # one look: as before


def test_an_undecided_comparison_gets_more_seeds_until_decided():
    ctx, outcomes, first_look, _ = settled(gap=0.5, noise=0.3)
    assert first_look == Verdict.INCONCLUSIVE
    (settlement,) = ctx.settlements
    assert settlement["looks"] == 2 and settlement["seeds"] == 6
    assert all(len(o.runs) == 6 for o in outcomes["toy"].values())
    assert a_beats_b(outcomes) == Verdict.HOLDS
    assert settlement["fragile"] == settlement["undecided_neighbours"] == []


def test_a_neighbour_undecided_on_few_seeds_asks_for_more_seeds():
    """A wins by 0.15 at its rate, decided on 3 seeds; one lattice point lower its lead is
    0.04, undecided on 3 seeds (an undecided comparison, not a reversal): every method runs the
    next stage's seeds, and on 6 the verdict holds at the rates and at every neighbour."""
    ctx, outcomes, first_look, _ = settled(gap=0.15, noise=0.02)
    assert first_look == Verdict.HOLDS
    (settlement,) = ctx.settlements
    assert settlement["undecided_neighbours"] == ["a on toy at lr 0.00464 on 3 seeds"]
    assert settlement["seeds"] == 6 and settlement["looks"] == 2 and settlement["fragile"] == []
    assert all(len(o.runs) == 6 for o in outcomes["toy"].values())
    result = apply_settlements(ClaimResult(Verdict.HOLDS, "", {}), ctx.settlements)
    assert result.verdict == Verdict.HOLDS
    assert "More seeds, since the verdict was undecided one lattice point away" in result.summary


def test_flips_of_an_earlier_look_do_not_outlive_it():
    """Decided on 3 seeds with a neighbour undecided there, then undecided at the rates on 6
    and 10: the claim ends inconclusive, and the settlement lists no flips of the first look."""

    def judge(outcomes):
        a = outcomes["toy"]["a"]  # chosen at 0.01, the toy's optimum
        return Verdict.HOLDS if a.lr == 0.01 and len(a.runs) == 3 else Verdict.INCONCLUSIVE

    def claim():
        ctx = RunContext("quick", [0, 1, 2], executor=Executor())
        outcomes = ctx.compare(toy(0.5, 0.001), METHODS, 9, Metric("loss"))
        ctx.settle(outcomes, judge)
        return ctx

    (settlement,) = contextvars.copy_context().run(claim).settlements
    assert settlement["seeds"] == 10 and settlement["looks"] == 3
    assert settlement["undecided_neighbours"] == [
        "a on toy at lr 0.00464 on 3 seeds",
        "a on toy at lr 0.0215 on 3 seeds",
    ]
    assert settlement["fragile"] == [] and settlement["unchecked_neighbours"] == 0


def test_a_neighbour_still_undecided_at_the_last_stage_makes_the_verdict_fragile():
    """Decided on 6 seeds, but undecided at A's neighbours on 6 and again on 10, the last
    stage at quick scale: fragile."""
    ctx, _, _, _ = settled(gap=0.05, noise=0.05)
    (settlement,) = ctx.settlements
    assert settlement["seeds"] == 10 and settlement["looks"] == 3
    assert settlement["undecided_neighbours"] == [
        "a on toy at lr 0.00464 on 6 seeds",
        "a on toy at lr 0.0215 on 6 seeds",
    ]
    assert settlement["fragile"] == [
        "a on toy at lr 0.00464: inconclusive",
        "a on toy at lr 0.0215: inconclusive",
    ]
    result = apply_settlements(ClaimResult(Verdict.HOLDS, "", {}), ctx.settlements)
    assert result.verdict == Verdict.INCONCLUSIVE


def test_seeds_stop_at_the_last_stage_when_still_undecided():
    ctx, _, _, _ = settled(gap=0.0, noise=0.05)
    assert ctx.settlements[0]["looks"] == 3 and ctx.settlements[0]["seeds"] == 10
    assert ctx.settlements[0]["fragile"] == []  # inconclusive already: nothing to check


def test_a_decision_at_three_seeds_takes_one_look():
    ctx, _, first_look, _ = settled(gap=0.05, noise=0.001)
    assert first_look == Verdict.HOLDS and ctx.settlements[0]["looks"] == 1


def test_a_verdict_that_flips_one_lattice_point_away_is_fragile():
    """A is 0.05 better at its rate, but one lattice point away its loss grows by (1/3)^2: the
    verdict flips there, so the claim reports inconclusive, and says why."""
    ctx, _, _, _ = settled(gap=0.05, noise=0.001)
    flips = ctx.settlements[0]["fragile"]
    assert flips == [
        "a on toy at lr 0.00464: does not hold",
        "a on toy at lr 0.0215: does not hold",
    ]
    result = apply_settlements(ClaimResult(Verdict.HOLDS, "A beats B.", {}), ctx.settlements)
    assert result.verdict == Verdict.INCONCLUSIVE
    assert "Fragile, so inconclusive (it was holds)" in result.summary
    assert result.numbers["settled"] == ctx.settlements


def test_a_robust_verdict_stands():
    ctx, _, _, _ = settled(gap=0.5, noise=0.001)  # A wins by far more than a lattice step costs
    assert ctx.settlements[0]["fragile"] == []
    result = apply_settlements(ClaimResult(Verdict.HOLDS, "", {}), ctx.settlements)
    assert result.verdict == Verdict.HOLDS and result.numbers["settled"][0]["looks"] == 1


def test_the_level_applies_to_every_later_interval_of_the_claim_and_stays_with_it():
    ctx, _, _, after = settled(gap=0.5, noise=0.001)
    assert after == pytest.approx(ctx.level) and ctx.level > st.LEVEL  # wider intervals
    assert st.paired_interval([1.0, 2.0, 3.5], [0.0] * 3).level == st.LEVEL  # not outside


def test_an_outcome_that_does_not_know_its_runs_cannot_grow():
    from gradkit.experiments import MethodOutcome

    outcome = MethodOutcome.fixed(METHODS[0], 0.01, [])
    with pytest.raises(RuntimeError, match="does not know how its runs were made"):
        outcome.extend(Executor(), [0, 1, 2])


def test_the_seeds_settling_took_become_the_claims_seeds():
    """A claim's summary counts its seeds from the context: after more looks, all of them."""
    ctx, outcomes, _, _ = settled(gap=0.5, noise=0.3)
    assert ctx.seeds == list(range(6)) == list(range(len(outcomes["toy"]["a"].runs)))


def test_a_neighbour_where_the_moved_method_diverges_is_not_a_flip():
    """Above 0.015 every rate diverges on seed 1: the upper neighbours are not usable rates, so
    only the lower ones can make the verdict fragile, and the report names the others."""
    ctx, _, _, _ = settled(gap=0.05, noise=0.001, diverge_above=0.015)
    (settlement,) = ctx.settlements
    assert settlement["fragile"] == ["a on toy at lr 0.00464: does not hold"]
    assert settlement["diverging_neighbours"] == ["a on toy at lr 0.0215"]
    result = apply_settlements(ClaimResult(Verdict.HOLDS, "", {}), ctx.settlements)
    assert "the moved method diverges there: a on toy at lr 0.0215." in result.summary


def test_the_fragility_check_stops_at_the_first_method_with_a_flip():
    """A's moves flip the verdict, so B's two neighbours are not run: they could only add flips
    to a verdict already fragile. The report says how many were left."""
    ctx, _, _, _ = settled(gap=0.05, noise=0.001)
    assert ctx.settlements[0]["unchecked_neighbours"] == 2
    assert all(flip.startswith("a on toy") for flip in ctx.settlements[0]["fragile"])
    result = apply_settlements(ClaimResult(Verdict.HOLDS, "", {}), ctx.settlements)
    assert "2 other neighbours not run, as this already decides" in result.summary


def test_a_robust_verdict_checks_every_neighbour():
    ctx, _, _, _ = settled(gap=0.5, noise=0.001)
    assert ctx.settlements[0]["unchecked_neighbours"] == 0


def test_the_quick_scale_runs_the_judged_comparison_alone():
    """Reported arms run at smoke (tested) and full scale; a quick summary names what it left."""
    from gradkit.claims.base import full_scale_only

    assert [RunContext(s, [0, 1, 2]).reports_extras for s in ("smoke", "quick", "full")] == [
        True,
        False,
        True,
    ]
    assert full_scale_only("EASGD").startswith(" Reported at full scale only")
    assert full_scale_only("EASGD").endswith("EASGD.")
