"""The experiment protocol: runs as data, the cache, the executor, the lr search and the
seed-paired statistics, on made-up outcomes where the right answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiment_helpers import failing_run, toy_count_run, toy_run
from gradkit.experiments import (
    Decision,
    Executor,
    LrRange,
    Method,
    Metric,
    RunCache,
    RunFailedError,
    RunRecord,
    RunSpec,
    audit_searches,
    compare_on_problems,
    halving_budgets,
    paired_interval,
    search_lr,
)
from gradkit.experiments import stats as st
from gradkit.experiments.search import lattice_value

# ---- runs as data -------------------------------------------------------------------------


def test_run_spec_key_depends_on_every_parameter_and_not_on_their_order():
    a = RunSpec.of(toy_run, lr=0.1, budget=3)
    assert a == RunSpec.of(toy_run, budget=3, lr=0.1)
    assert a.key() == RunSpec.of(toy_run, budget=3, lr=0.1).key()
    assert a.key() != RunSpec.of(toy_run, lr=0.1, budget=4).key()
    assert a.key() != RunSpec.of(failing_run, lr=0.1, budget=3).key()
    assert RunSpec.of(toy_run, shape=[1, 2], opts={"b": 1}).kwargs == {
        "opts": {"b": 1},
        "shape": [1, 2],
    }


@pytest.mark.parametrize("bad", [math.nan, math.inf, object()])
def test_run_spec_refuses_parameters_that_are_not_finite_json(bad):
    with pytest.raises((ValueError, TypeError), match="run parameters"):
        RunSpec.of(toy_run, lr=bad)


def test_cache_round_trips_records_and_keeps_runs_apart(tmp_path):
    cache = RunCache(tmp_path / "runs")
    spec, other = RunSpec.of(toy_run, lr=0.1, budget=3), RunSpec.of(toy_run, lr=0.2, budget=3)
    assert cache.get(spec) is None
    record = spec.execute()
    cache.put(spec, record)
    assert cache.get(spec) == record
    assert cache.get(other) is None
    assert not list((tmp_path / "runs").rglob("*.tmp"))


def test_a_corrupt_cache_entry_is_a_miss(tmp_path):
    cache = RunCache(tmp_path)
    spec = RunSpec.of(toy_run, lr=0.1, budget=3)
    cache.put(spec, spec.execute())
    next(tmp_path.rglob("*.json")).write_text("{not json")
    assert cache.get(spec) is None


# ---- the executor ---------------------------------------------------------------------------


def test_executor_reuses_cached_runs_and_counts_them(tmp_path):
    specs = [RunSpec.of(toy_run, lr=lr, budget=2) for lr in (0.01, 0.1, 1.0)]
    done = []
    first = Executor(RunCache(tmp_path), workers=1, on_done=done.append)
    records = first.run([*specs, specs[0]])
    assert (first.executed, first.cached, len(done)) == (3, 0, 3)
    assert records[0] == records[3]
    second = Executor(RunCache(tmp_path), workers=1)
    assert second.run(specs) == records[:3]
    assert (second.executed, second.cached) == (0, 3)


def test_executor_runs_missing_runs_on_two_processes(tmp_path):
    specs = [RunSpec.of(toy_run, lr=lr, budget=2) for lr in (0.01, 0.03, 0.1, 0.3)]
    with Executor(RunCache(tmp_path), workers=2) as parallel:
        records = parallel.run(specs)
    serial = Executor(None, workers=1).run(specs)
    assert [r.metrics["loss"] for r in records] == [r.metrics["loss"] for r in serial]
    assert all(r.metrics["pid"] != serial[0].metrics["pid"] for r in records)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_run_raises_naming_it_and_keeps_the_finished_ones(tmp_path, workers):
    good = RunSpec.of(toy_run, lr=0.1, budget=2)
    bad = RunSpec.of(failing_run, message="boom")
    expected = r"failing_run\(message='boom'\) failed: boom"
    with (
        Executor(RunCache(tmp_path), workers=workers) as executor,
        pytest.raises(RunFailedError, match=expected),
    ):
        executor.run([good, bad])
    assert RunCache(tmp_path).get(good) is not None


# ---- the learning-rate search ---------------------------------------------------------------


def toy_search(lr_range, budgets=(1, 3, 9), seeds=(0,), **toy):
    specs_seen = []

    def make_spec(lr, budget, seed):
        return RunSpec.of(toy_run, lr=lr, budget=budget, seed=seed, **toy)

    def run(specs):
        specs_seen.extend(specs)
        return [s.execute() for s in specs]

    def score(record):
        return math.inf if record.diverged else record.metrics["loss"]

    return search_lr(lr_range, budgets, make_spec, score, run, seeds), specs_seen


def test_lattice_has_three_points_per_decade_shared_by_every_range():
    assert LrRange(1e-3, 1e-2).values() == [0.001, 0.00215, 0.00464, 0.01]
    assert set(LrRange(1e-2, 1.0).values()) & set(LrRange(1e-3, 1e-1).values()) == {
        0.01, 0.0215, 0.0464, 0.1
    }  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [dict(low=1e-2, high=1e-3), dict(low=0.0, high=1.0), dict(low=1e-3, high=1e-2, floor=1e-2)],
)
def test_lr_range_refuses_inconsistent_bounds(bad):
    with pytest.raises(ValueError, match="learning-rate range"):
        LrRange(**bad)


def test_search_finds_an_optimum_inside_the_range_with_halving():
    result, seen = toy_search(LrRange(1e-4, 1.0), optimum=0.0215)
    assert result.best == 0.0215 and not result.at_bound and not result.widened
    full_budget = {s.kwargs["lr"] for s in seen if s.kwargs["budget"] == 9}
    # 13 points -> 5 -> 2 finalists at the full budget, then the best's missing neighbour
    assert full_budget == {0.01, 0.0215, 0.0464}
    assert len(seen) == 13 + 5 + 3


def test_the_full_budget_confirms_the_choice_a_short_screen_would_miss():
    """Short budgets favour large rates (here by a decade per unit of budget): the screen keeps
    rates far above the full budget's best, and the final rung walks down the lattice at the
    full budget until the chosen rate is a local optimum there, which is the grid's best."""
    toy = dict(optimum=0.01, favour_large=3.0)
    result, _ = toy_search(LrRange(1e-4, 1.0), **toy)
    grid = LrRange(1e-4, 1.0).values()
    full_budget_best = min(grid, key=lambda lr: toy_run(lr, 9, **toy).metrics["loss"])
    assert full_budget_best not in result.scores[1]  # dropped by the screen...
    assert result.best == full_budget_best == 0.0215  # ...and chosen at the full budget


@pytest.mark.parametrize("counts", [True, False])
def test_a_rung_no_rate_reaches_the_target_on_cannot_drop_rates(counts):
    """Only rates near 0.5 reach the target, and only at the full budget (0.464 after ~807
    iterations); on the shorter rungs no rate reaches it, and ranking by the tie-break (the
    final gap, smallest for the smallest rates) would drop them all (the depth-3 miss of the
    audit). Treated as counts, every rate goes on from such a rung."""
    metric = Metric("count", tie_break="gap")
    result = search_lr(
        LrRange(1e-3, 1.0),
        [222, 667, 2000],
        lambda lr, budget, seed: RunSpec.of(toy_count_run, lr=lr, budget=budget),
        metric.score,
        lambda specs: [s.execute() for s in specs],
        counts=counts,
    )
    assert (result.best == 0.464) == counts


def test_on_a_plateau_the_choice_stays_instead_of_walking_to_a_bound():
    """Every rate scores the same (none reaches a target, say): ties must not walk the choice
    down the lattice to the hard bound, one full-budget run after another (the audit caught
    the search choosing 1e-7 for depth 3 on l2 regression this way)."""
    result, seen = toy_search(LrRange(1e-3, 1e-1), plateau_below=1.0)
    assert 1e-3 <= result.best <= 1e-1 and not result.at_bound
    # the finalist, its two neighbours and, since they tie it, one point beyond each
    assert len([s for s in seen if s.kwargs["budget"] == 9]) <= 5


def test_past_a_neighbour_that_ties_the_best_the_next_point_runs():
    """Signum's case in the search audit: at the full budget 0.01 and 0.00464 score the same
    and 0.00215 better; the screen kept 0.01 only. A tie is not a slope: the walk runs the
    point beyond the tied neighbour and moves there."""
    full = {0.001: 3.0, 0.00215: 0.5, 0.00464: 1.0, 0.01: 1.0, 0.0215: 2.0}

    def run(specs):
        return [
            RunRecord({"loss": full.get(s.kwargs["lr"], 9.0) if s.kwargs["budget"] == 9
                       else (0.0 if s.kwargs["lr"] == 0.01 else 1.0)})
            for s in specs
        ]  # fmt: skip

    result = search_lr(
        LrRange(1e-3, 1e-1),
        [1, 3, 9],
        lambda lr, budget, seed: RunSpec.of(toy_run, lr=lr, budget=budget, seed=seed),
        lambda record: record.metrics["loss"],
        run,
    )
    assert result.best == 0.00215 and result.final_scores()[0.01] == 1.0


def test_the_screen_runs_one_seed_and_the_full_budget_every_seed():
    """0.0464 wins on seed 0 but diverges on seed 1 (an edge-of-stability rate): the one-seed
    screen keeps it, the full budget, which compares rates on both seeds, rejects it and the
    choice walks down to 0.0215."""
    result, seen = toy_search(
        LrRange(1e-3, 1e-1), seeds=(0, 1), optimum=0.0464, diverge_above=0.03, diverging_seed=1
    )
    assert result.best == 0.0215
    assert {s.kwargs["seed"] for s in seen if s.kwargs["budget"] in (1, 3)} == {0}
    assert math.isinf(result.scores[2][0.0464])
    full_budget = [(s.kwargs["lr"], s.kwargs["seed"]) for s in seen if s.kwargs["budget"] == 9]
    assert {seed for _, seed in full_budget} == {0, 1}  # the choice too is on every seed
    assert all((lr, 1) in full_budget for lr, _ in full_budget)


def test_widening_at_the_full_budget_compares_on_every_seed():
    result, seen = toy_search(LrRange(1e-4, 1e-2), seeds=(0, 1), optimum=0.3)
    full = {(s.kwargs["lr"], s.kwargs["seed"]) for s in seen if s.kwargs["budget"] == 9}
    assert result.widened and {seed for _, seed in full} == {0, 1}
    assert all((lr, 1) in full for lr, _ in full)


def test_a_search_whose_every_rate_diverges_on_a_seed_says_so():
    result, _ = toy_search(LrRange(1e-3, 1e-1), seeds=(0, 1), diverge_above=1e-4, diverging_seed=1)
    assert result.best == 0.001  # the bottom of the range, reached by descending
    assert "diverged on a tuning seed" in result.note()


def test_search_widens_past_an_edge_until_the_optimum_is_inside():
    result, _ = toy_search(LrRange(1e-4, 1e-2), optimum=0.3)
    assert result.best == lattice_value(round(3 * math.log10(0.3)), 3)
    assert max(result.searched()) > result.best  # the optimum is inside what was searched
    assert result.widened and not result.at_bound


def test_search_stops_at_the_hard_bound_and_says_so():
    result, _ = toy_search(LrRange(1e-3, 1e-2, ceiling=0.1), optimum=10.0)
    assert result.best == 0.1 and result.at_bound
    assert "hard bound" in result.note()


def test_search_does_not_widen_towards_diverging_rates():
    result, _ = toy_search(LrRange(1e-3, 1e-1), optimum=10.0, diverge_above=0.05)
    assert result.best == 0.0464
    assert not result.at_bound


def toy_factory(**toy):
    """A spec factory over toy runs (the protocol's shape: method, lr, budget, seed, tuning)."""
    return lambda method, lr, budget, seed, tuning: RunSpec.of(
        toy_run, lr=lr, budget=budget, seed=seed, **toy
    )


def test_the_search_audit_puts_each_choice_beside_the_full_grids_best():
    toy = dict(optimum=0.01, favour_large=3.0)
    problems = {"toy": toy_factory(**toy)}
    method = Method("m", "M", LrRange(1e-4, 1.0))
    executor = Executor()
    outcomes = compare_on_problems(executor, problems, [method], 9, Metric("loss"), [0])
    (audit,) = audit_searches(executor, problems, outcomes, 9, Metric("loss"))
    loss = {lr: toy_run(lr, 9, **toy).metrics["loss"] for lr in LrRange(1e-4, 1.0).values()}
    assert (audit.problem, audit.method, audit.best) == ("toy", "m", min(loss, key=loss.get))
    assert audit.chosen == audit.best and audit.agrees
    assert audit.chosen_score == pytest.approx(loss[audit.chosen])
    # a search that had chosen a worse rate is shown as one
    outcomes["toy"]["m"].search.best = 0.1
    (worse,) = audit_searches(executor, problems, outcomes, 9, Metric("loss"))
    assert worse.chosen == 0.1 and not worse.agrees and worse.chosen_score > worse.best_score


def test_halving_budgets():
    assert halving_budgets(27) == [3, 9, 27]
    assert halving_budgets(4) == [1, 4]
    assert halving_budgets(1) == [1]


# ---- seed-paired statistics -----------------------------------------------------------------


def test_paired_interval_is_the_student_t_interval_of_the_differences():
    a, b = [0.50, 0.52, 0.47, 0.55], [0.40, 0.45, 0.41, 0.42]
    d = np.subtract(a, b)
    half = scipy_stats.t.ppf(0.95, 3) * d.std(ddof=1) / 2
    interval = paired_interval(a, b)
    assert interval.mean == pytest.approx(d.mean())
    assert (interval.low, interval.high) == pytest.approx((d.mean() - half, d.mean() + half))


def test_a_margin_smaller_than_the_seed_spread_decides_nothing():
    """A 0.005 mean gap with a 0.035 spread: neither better nor worse."""
    a, b = [0.90, 0.93, 0.87], [0.90, 0.90, 0.885]
    assert st.greater(paired_interval(a, b)) == Decision.UNDECIDED
    assert st.less(paired_interval(a, b)) == Decision.UNDECIDED


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0.9, 0.91, 0.92], [0.8, 0.82, 0.81], Decision.YES),
        ([0.8, 0.82, 0.81], [0.9, 0.91, 0.92], Decision.NO),
        ([0.9], [0.1], Decision.UNDECIDED),  # one seed never decides
        ([math.inf] * 3, [1.0] * 3, Decision.YES),  # a diverged on every seed
        ([math.inf, 1.0, 1.1], [math.inf, 1.0, 1.0], Decision.UNDECIDED),
    ],
)
def test_greater(a, b, expected):
    assert st.greater(paired_interval(a, b)) == expected


@pytest.mark.parametrize(
    ("a", "b", "tolerance", "expected"),
    [
        ([0.900, 0.910, 0.905], [0.901, 0.909, 0.906], 0.01, Decision.YES),
        ([0.80, 0.81, 0.82], [0.90, 0.91, 0.92], 0.01, Decision.NO),
        ([0.90, 0.95, 0.85], [0.90, 0.90, 0.90], 0.01, Decision.UNDECIDED),
    ],
)
def test_within(a, b, tolerance, expected):
    assert st.within(paired_interval(a, b), tolerance) == expected


def test_combining_decisions():
    yes, no, und = Decision.YES, Decision.NO, Decision.UNDECIDED
    assert st.all_of([yes, yes]) == yes and st.all_of([yes, no, und]) == no
    assert st.all_of([yes, und]) == und
    assert st.any_of([no, yes]) == yes and st.any_of([no, no]) == no
    assert st.any_of([no, und]) == und


def test_paired_interval_refuses_unpaired_inputs():
    with pytest.raises(ValueError, match="as many values"):
        paired_interval([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least one seed"):
        paired_interval([], [])


# ---- the protocol on real runs ----------------------------------------------------------------


def test_tuned_runs_search_on_a_validation_split_then_run_every_seed(tmp_path):
    from gradkit.experiments import TUNING_SEEDS, Method, Metric, training, tuned_runs
    from gradkit.experiments.kinds.training import train_task

    executor = Executor(RunCache(tmp_path), workers=1)
    method = Method("sgd", "SGD", LrRange(1e-2, 1.0))
    outcome = tuned_runs(executor, training("digits-mlp"), method, 3, Metric("test_loss"), [0, 1])
    searched = outcome.search.searched()
    assert len(searched) >= 7 and outcome.lr in searched
    final = outcome.search.final_scores()
    assert final[outcome.lr] == min(final.values())
    assert len(outcome.runs) == 2 and outcome.runs[0] != outcome.runs[1]
    tuning = RunSpec.of(
        train_task, task="digits-mlp", optimizer="sgd",
        lr=outcome.lr, seed=TUNING_SEEDS[1], epochs=3, validation=True, evals_per_epoch=0,
    )  # fmt: skip
    assert RunCache(tmp_path).get(tuning) is not None  # the chosen rate's full budget, 2nd seed


def test_train_task_tunes_on_a_held_out_part_of_the_training_set():
    from gradkit.experiments.kinds.training import train_task
    from gradkit.tasks import get_task, train

    tuning = train_task("digits-mlp", "sgd", 0.1, seed=3, epochs=1, validation=True)
    real = train_task("digits-mlp", "sgd", 0.1, seed=3, epochs=1)
    data = get_task("digits-mlp").load(3)
    assert tuning.metrics != real.metrics
    assert {"train_loss", "test_loss", "test_accuracy"} <= set(real.metrics)
    held_out = train(
        "digits-mlp", "sgd", lr=0.1, epochs=1, seed=3, data=data.validation_split(0.2, 3)
    )
    assert tuning.metrics["test_loss"] == held_out.final("test_loss")


def test_convex_run_counts_iterations_to_the_target():
    from gradkit.experiments.kinds.convex import convex_run

    record = convex_run("linear-regression", 0, "adam", 0.05, 200, 1e-3, options={"rotated": False})
    curve = record.curves["suboptimality"]
    gap0 = curve[0][1]
    reached = record.metrics["iterations_to_target"]
    assert reached <= 200 and all(v > 1e-3 * gap0 for t, v in curve if t < reached)
    assert record.metrics["final_gap"] < 1e-3


def test_simulate_run_records_time_curves_and_counters():
    from gradkit.experiments.kinds.simulated import simulate_run

    slow = simulate_run("allreduce", "digits-mlp", 4, 0, 0.1, 1, slowdown={"0": 5.0})
    fast = simulate_run("allreduce", "digits-mlp", 4, 0, 0.1, 1)
    assert slow.metrics["train_loss"] == fast.metrics["train_loss"]  # same iterates
    assert slow.metrics["duration"] > 3 * fast.metrics["duration"]  # compute 5x, links not
    times, losses = slow.curve("train_loss@time")
    assert times[0] == 0 and len(losses) == len(slow.curve("train_loss")[1])
    whole = simulate_run("signum-vote", "digits-mlp", 4, 0, 1e-3, 1, sampling="whole")
    assert (
        whole.metrics["counter:payload_bits"]
        == whole.metrics["worker_steps"] * whole.metrics["parameters"]
    )  # one bit per coordinate per worker-step


@pytest.mark.parametrize("algorithm", ["dpsgd", "adpsgd", "ecq"])
def test_simulated_tuning_runs_evaluate_at_the_ends_only_with_the_same_result(algorithm):
    """Evaluations only read the model: a tuning run (``evals_per_epoch=0``) ends where a run
    evaluated twice an epoch ends, bit for bit, with two evaluations instead of five."""
    from gradkit.experiments.compare import Method
    from gradkit.experiments.kinds.simulated import simulate_run, simulated

    tuning = simulated("digits-mlp", 4)(
        Method(algorithm, algorithm, LrRange(0.1, 0.1)), 0.1, 2, 0, True
    )
    assert tuning.kwargs["evals_per_epoch"] == 0
    ends = tuning.execute()
    often = simulate_run(**{**tuning.kwargs, "evals_per_epoch": 2})
    assert ends.metrics == often.metrics
    assert len(ends.curve("train_loss")[0]) == 2 < len(often.curve("train_loss")[0])


@pytest.mark.parametrize(
    ("task", "optimizer", "lr"),
    [("digits-mlp", "msgd", 0.1), ("breast-cancer-logreg", "pbqn", None)],
)
def test_training_tuning_runs_evaluate_at_the_ends_only_with_the_same_result(task, optimizer, lr):
    from gradkit.experiments import TUNING_SEEDS, Method, training
    from gradkit.experiments.kinds.training import train_task

    method = Method(optimizer, optimizer, LrRange(0.1, 0.1))
    tuning = training(task).each(method, lr, 2, TUNING_SEEDS[0], True)
    assert tuning.kwargs["evals_per_epoch"] == 0
    ends = tuning.execute()
    often = train_task(**{**tuning.kwargs, "evals_per_epoch": 2})
    assert ends.metrics == often.metrics
    assert len(ends.curve("train_loss")[0]) == 2 < len(often.curve("train_loss")[0])


def test_quadratic_run_reaches_its_target_with_a_good_rate():
    from gradkit.experiments.kinds.quadratic import quadratic_run

    good = quadratic_run(False, 0.2, 0, "sgd", 0.1, 500, 0.01)
    tiny = quadratic_run(False, 0.2, 0, "sgd", 1e-5, 500, 0.01)
    assert good.metrics["steps_to_target"] <= 500 < tiny.metrics["steps_to_target"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "signum", "msvag"])
def test_batched_seeds_follow_the_separate_runs(optimizer):
    """Seeds trained as one vmapped model equal separate runs up to float rounding."""
    from gradkit.experiments.kinds.training import train_task, train_task_seeds

    lr = {"sgd": 0.1, "adam": 1e-3, "signum": 1e-3, "msvag": 0.3}[optimizer]
    batched = train_task_seeds("digits-mlp", optimizer, lr, [0, 5], 2, evals_per_epoch=2)
    for seed, run in zip([0, 5], batched.extra["runs"], strict=True):
        alone = train_task("digits-mlp", optimizer, lr, seed, 2, evals_per_epoch=2)
        for name, curve in alone.curves.items():
            np.testing.assert_allclose(run["curves"][name], curve, rtol=2e-4, atol=1e-5)


def test_batched_seeds_refuse_optimizers_that_couple_entries():
    from gradkit.experiments.kinds.training import train_task_seeds

    with pytest.raises(ValueError, match="elementwise optimizer"):
        train_task_seeds("digits-mlp", "shampoo", 0.1, [0, 1], 1)


def test_one_diverging_seed_does_not_stop_the_others():
    from gradkit.experiments.kinds.training import train_task, train_task_seeds

    batched = train_task_seeds("digits-mlp", "sgd", 1e3, [0, 1], 1)  # lr far too large
    runs = [RunRecord.from_json(r) for r in batched.extra["runs"]]
    alone = [train_task("digits-mlp", "sgd", 1e3, seed, 1) for seed in (0, 1)]
    assert [r.diverged for r in runs] == [r.diverged for r in alone]
    assert all(math.isinf(r.metric("train_loss")) for r in runs if r.diverged)


def test_batched_seeds_fall_back_to_separate_runs_for_a_gru():
    from gradkit.experiments.kinds.training import train_task, train_task_seeds

    batched = train_task_seeds("mnist1d-rnn", "adam", 1e-3, [0, 1], 1)
    assert batched.extra["runs"][1] == train_task("mnist1d-rnn", "adam", 1e-3, 1, 1).to_json() | {
        "seconds": batched.extra["runs"][1]["seconds"]
    }


def test_runs_at_uses_one_batched_run_for_every_seed_when_asked(tmp_path):
    from gradkit.experiments import Method, runs_at, training

    executor = Executor(RunCache(tmp_path), workers=1)
    method = Method("sgd", "SGD", LrRange(0.1, 0.1))
    records = runs_at(executor, training("digits-mlp", batch_seeds=True), method, 0.1, 1, [0, 1])
    assert len(records) == 2 and executor.executed == 1
    separate = runs_at(executor, training("digits-mlp"), method, 0.1, 1, [0, 1])
    assert executor.executed == 3
    for a, b in zip(records, separate, strict=True):
        np.testing.assert_allclose(a.metrics["train_loss"], b.metrics["train_loss"], rtol=1e-4)


def test_time_to_target_is_the_first_time_below_it_and_censored_past_the_budget():
    from gradkit.experiments.kinds.delay_tolerant import TARGET, first_time, time_to_target

    times, gaps = [0.0, 5.0, 10.0], [1.0, 1e-9, 1e-12]
    assert time_to_target(times, gaps, 20.0) == 5.0 == first_time(times, gaps, TARGET)
    stalled = [1.0, 1e-4, 1e-6]
    assert time_to_target(times, stalled, 20.0) == pytest.approx(20.0 * 3)  # 2 decades short
    assert time_to_target(times, [1.0, 1e-4, 1e-7], 20.0) < time_to_target(times, stalled, 20.0)
    assert time_to_target(times, [1.0, 1.0, math.inf], 20.0) == math.inf
    assert first_time(times, stalled, 1e-8) == math.inf


def test_a_proximal_run_reports_its_gap_on_a_common_time_grid():
    from gradkit.experiments.kinds.delay_tolerant import CURVE_POINTS, proximal_run

    record = proximal_run("dave-pg", "breast-cancer", 1e-2, 0.1, seed=0, lr=1.0, until=40.0)
    times, gaps = record.curve("suboptimality@time")
    assert len(times) == CURVE_POINTS + 1 and times[0] == 0 and times[-1] == 40.0
    assert gaps[-1] < 1e-3 * gaps[0] and record.metrics["duration"] == 40.0
    assert record.metrics["reached_1e-02"] < record.metrics["reached_1e-05"]
