"""Every migrated claim's decision function on made-up per-seed outcomes: holds, does not
hold, inconclusive, and the edge cases (one seed, diverged runs, spread wider than the gap)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from gradkit.claims import (
    Verdict,
    adam_sign_variance,
    adpsgd_matches_allreduce,
    adpsgd_slow_worker,
    averaging_iterates,
    batch_growth,
    compressibility,
    ddg_accuracy,
    ddg_speed,
    decentralized_accuracy,
    depth_acceleration,
    dgc_compression,
    ecq_quantization,
    ggt_conditioning,
    ggt_recurrent,
    gradient_window,
    local_rounds,
    majority_vote,
    msvag_vs_adam,
    noise_stability,
    orthogonal_init,
    pbqn_network,
    pbqn_work,
    saddle_escape,
    shampoo_cnn,
    shampoo_convex,
    sign_geometry,
    signum_matches_adam,
    unbounded_delays,
)
from gradkit.claims.base import judged, unreached, verdict_from
from gradkit.experiments import LrRange, Method, MethodOutcome, RunRecord
from gradkit.experiments import stats as st

HOLDS, FAILS, UNSURE = Verdict.HOLDS, Verdict.DOES_NOT_HOLD, Verdict.INCONCLUSIVE


PATTERNS = ([-1.0, 0.5, 0.33], [0.6, -0.9, 0.2], [0.1, 0.7, -1.0], [-0.4, -0.3, 0.9])


def seeds(center, spread=0.002, n=3, pattern=0):
    """``n`` per-seed values around ``center``; different patterns give methods different
    per-seed noise, so their paired differences have a spread too."""
    return [center + spread * z for z in PATTERNS[pattern][:n]]


# ---- signum-matches-adam: no worse than Adam by 2 points (non-inferiority) -------------------


def signum_case(gap_mlp, gap_cnn, spread=0.002, n=3):
    return {
        "mnist1d-mlp": {"signum": seeds(0.70 + gap_mlp, spread, n), "adam": seeds(0.70, 0, n)},
        "digits-cnn": {"signum": seeds(0.95 + gap_cnn, spread, n), "adam": seeds(0.95, 0, n)},
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (signum_case(0.004, -0.003), HOLDS),
        (signum_case(0.08, 0.05), HOLDS),  # better than Adam is not a loss
        (signum_case(0.004, -0.08), FAILS),  # 8 points behind on one problem
        (signum_case(0.004, 0.015, spread=0.03), UNSURE),  # spread wider than the tolerance
        (signum_case(0.0, 0.0, n=1), UNSURE),  # one seed decides nothing
    ],
)
def test_signum_matches_adam_decision(case, expected):
    assert signum_matches_adam.decide(case)[0] == expected


def test_signum_diverged_on_every_seed_does_not_match():
    case = signum_case(0.0, 0.0)
    case["digits-cnn"]["signum"] = [0.0, 0.0, 0.0]  # diverged runs count as accuracy 0
    assert signum_matches_adam.decide(case)[0] == FAILS


# ---- shampoo-trains-without-batchnorm ---------------------------------------------------------


def shampoo_case(shampoo_accuracy, spread=0.002, with_bn=0.9):
    """Test accuracy per seed: Shampoo without batch norm against momentum SGD with it."""
    problem = {
        "shampoo": seeds(shampoo_accuracy, spread, pattern=1),
        "msgd-bn": seeds(with_bn, spread),
        "adam": seeds(0.88),
        "msgd": seeds(0.85),
    }
    return {p: dict(problem) for p in ("a", "b")}


@pytest.mark.parametrize(
    ("shampoo", "spread", "expected"),
    [
        (0.895, 0.002, HOLDS),  # half a point behind the batch-norm network
        (0.93, 0.002, HOLDS),  # better than it is no loss
        (0.80, 0.002, FAILS),  # 10 points behind: batch norm not done away with
        (0.885, 0.05, UNSURE),  # a 1.5-point gap inside a 5-point spread
    ],
)
def test_shampoo_decision(shampoo, spread, expected):
    """Judged against the batch-norm network (the notes: 'do away with batch-norm layers'),
    not against the other optimizers without batch norm."""
    assert shampoo_cnn.decide(shampoo_case(shampoo, spread))[0] == expected


def test_shampoo_diverged_runs_lose():
    accuracy = shampoo_case(0.895)
    for p in accuracy:
        accuracy[p] = {**accuracy[p], "shampoo": [0.0] * 3}  # a diverged run's accuracy
    assert shampoo_cnn.decide(accuracy)[0] == FAILS


# ---- msvag-vs-adam -----------------------------------------------------------------------------


def msvag_problem(msgd, signum, msvag, adam, spread=0.01):
    values = {"msgd": msgd, "signum": signum, "msvag": msvag, "adam": adam}
    return {m: seeds(v, spread * v, pattern=i) for i, (m, v) in enumerate(values.items())}


def test_msvag_holds_when_it_beats_adam_on_some_problem():
    loss = {
        "p1": msvag_problem(0.5, 0.3, 0.45, 0.32),  # Adam better
        "p2": msvag_problem(0.3, 0.5, 0.28, 0.55),  # M-SVAG better: it helps here
        "p3": msvag_problem(0.4, 0.4, 0.4, 0.4, spread=0.2),
    }
    verdict, details = msvag_vs_adam.decide(loss)
    assert verdict == HOLDS
    assert details["msvag_beats_adam"] == {"p1": "no", "p2": "yes", "p3": "undecided"}
    # reported, not judged: the sign wins on p1 and loses on p2
    assert details["sign_based_best"] == {"p1": "yes", "p2": "no", "p3": "undecided"}


def test_msvag_fails_when_adam_is_decidedly_better_everywhere():
    loss = {p: msvag_problem(0.5, 0.3, 0.45, 0.32) for p in ("p1", "p2", "p3")}
    assert msvag_vs_adam.decide(loss)[0] == FAILS


def test_msvag_harming_against_msgd_is_reported_not_judged():
    """The notes do not say M-SVAG matches M-SGD: harm against M-SGD does not fail the claim
    where M-SVAG still beats Adam."""
    loss = {
        "p1": msvag_problem(0.2, 0.3, 0.28, 0.5),  # M-SVAG 1.4x M-SGD, but beats Adam
        "p2": msvag_problem(0.2, 0.5, 0.3, 0.55),
        "p3": msvag_problem(0.4, 0.4, 0.4, 0.4, spread=0.2),
    }
    verdict, details = msvag_vs_adam.decide(loss)
    assert verdict == HOLDS and details["msvag_no_worse_than_msgd"]["p1"] == "no"


def test_msvag_is_inconclusive_when_the_spread_hides_everything():
    loss = {p: msvag_problem(0.4, 0.4, 0.4, 0.4, spread=0.3) for p in ("p1", "p2", "p3")}
    assert msvag_vs_adam.decide(loss)[0] == UNSURE


def test_msvag_judges_without_the_reported_methods():
    """At quick scale M-SGD and M-SSD do not run: the verdict is the same, the reported parts
    are left out."""
    full = {
        "p1": msvag_problem(0.5, 0.3, 0.45, 0.32),
        "p2": msvag_problem(0.3, 0.5, 0.28, 0.55),
    }
    judged_only = {p: {m: per[m] for m in msvag_vs_adam.JUDGED} for p, per in full.items()}
    verdict, details = msvag_vs_adam.decide(judged_only)
    assert verdict == msvag_vs_adam.decide(full)[0] == HOLDS
    assert details == {"msvag_beats_adam": {"p1": "no", "p2": "yes"}}


# ---- ggt-helps-recurrent-more ------------------------------------------------------------------


def ggt_case(rnn_gain, cnn_gain, spread=0.01):
    return {
        "mnist1d-rnn": {"adam": seeds(1.0, 0), "ggt-flat": seeds(1.0 / rnn_gain, spread)},
        "mnist1d-cnn": {"adam": seeds(1.0, 0), "ggt-flat": seeds(1.0 / cnn_gain, spread)},
    }


@pytest.mark.parametrize(
    ("rnn_gain", "cnn_gain", "spread", "expected"),
    [
        (2.0, 1.1, 0.01, HOLDS),
        (1.1, 2.0, 0.01, FAILS),
        (0.8, 0.5, 0.01, FAILS),  # more gain on the GRU, but GGT decidedly does not help it
        (1.005, 0.5, 0.05, UNSURE),  # more gain on the GRU; whether GGT helps it is undecided
        (1.2, 1.15, 0.3, UNSURE),
    ],
)
def test_ggt_recurrent_decision(rnn_gain, cnn_gain, spread, expected):
    assert ggt_recurrent.decide(ggt_case(rnn_gain, cnn_gain, spread))[0] == expected


# ---- shampoo-beats-diagonal-on-convex ----------------------------------------------------------


def convex_problem(shampoo, adagrad, adam, spread=0.02):
    values = {"shampoo-eps0.01": shampoo, "adagrad": adagrad, "adam": adam}
    return {m: seeds(v, spread * v, pattern=i) for i, (m, v) in enumerate(values.items())}


@pytest.mark.parametrize(
    ("shampoo", "expected"),
    [(50, HOLDS), (200, FAILS), (98, UNSURE)],
)
def test_shampoo_convex_decision(shampoo, expected):
    iterations = {p: convex_problem(shampoo, 100, 120) for p in ("a", "b")}
    chosen = {p: "shampoo-eps0.01" for p in iterations}
    assert shampoo_convex.decide(iterations, chosen, budget=300)[0] == expected


def test_shampoo_convex_is_inconclusive_when_no_method_reaches_the_target():
    iterations = {"a": convex_problem(50, 100, 120), "b": convex_problem(301, 301, 301, 0.0)}
    chosen = {p: "shampoo-eps0.01" for p in iterations}
    assert shampoo_convex.decide(iterations, chosen, budget=300)[0] == UNSURE


# ---- ggt-helps-when-ill-conditioned ------------------------------------------------------------


def conditioning_case(ggt_rotated, ggt_aligned, spread=0.02):
    def problem(ggt):
        values = {"ggt": ggt, "adagrad": 200, "adam": 150, "full-adagrad": 40}
        return {m: seeds(v, spread * v, pattern=i) for i, (m, v) in enumerate(values.items())}

    return {"rotated": problem(ggt_rotated), "axis-aligned": problem(ggt_aligned)}


@pytest.mark.parametrize(
    ("rotated", "aligned", "spread", "expected", "from_rotation"),
    [
        (50, 140, 0.02, HOLDS, "yes"),  # 3x faster when rotated, about even when axis-aligned
        (50, 50, 0.02, HOLDS, "no"),  # not from the rotation: reported, not judged
        (160, 140, 0.02, FAILS, "no"),  # slower than Adam when rotated
        (200, 50, 0.02, FAILS, "no"),  # slower than Adam, level with AdaGrad, when rotated
        (140, 145, 0.3, UNSURE, "yes"),  # the twins share each seed's noise, which cancels
    ],
)
def test_ggt_conditioning_decision(rotated, aligned, spread, expected, from_rotation):
    case = conditioning_case(rotated, aligned, spread)
    verdict, details = ggt_conditioning.decide(case, budget=300)
    assert verdict == expected
    assert details["advantage_larger_when_rotated_reported"] == from_rotation


def test_ggt_conditioning_judges_the_rotated_problem_alone():
    case = conditioning_case(50, 140)
    assert ggt_conditioning.decide({"rotated": case["rotated"]}, budget=300)[0] == HOLDS


def test_ggt_conditioning_is_inconclusive_when_no_method_reaches_the_target_rotated():
    case = conditioning_case(50, 140)
    case["rotated"] = {m: [301.0] * 3 for m in case["rotated"]}
    assert ggt_conditioning.decide(case, budget=300)[0] == UNSURE


def test_ggt_conditioning_unreached_twin_leaves_only_the_report_undecided():
    case = conditioning_case(50, 140)
    case["axis-aligned"] = {m: [301.0] * 3 for m in case["axis-aligned"]}
    verdict, details = ggt_conditioning.decide(case, budget=300)
    assert verdict == HOLDS
    assert details["advantage_larger_when_rotated_reported"] == "undecided"


# ---- distributed claims ------------------------------------------------------------------------


def methods(values: dict[str, float], spread=0.01):
    return {m: seeds(v, spread * abs(v), pattern=i) for i, (m, v) in enumerate(values.items())}


# ---- adpsgd-matches-allreduce: accuracy similar to AllReduce's, +/-2 points (equivalence) ----


@pytest.mark.parametrize(
    ("adpsgd_acc", "spread", "expected"),
    [
        (0.70, 0.002, HOLDS),  # the same accuracy
        (0.715, 0.002, HOLDS),  # 1.5 points above, tight
        (0.685, 0.002, HOLDS),  # 1.5 points below, tight
        (0.75, 0.002, FAILS),  # 5 points more accurate: not similar either
        (0.60, 0.002, FAILS),  # 10 points less accurate
        (0.72, 0.002, UNSURE),  # exactly at the margin: the interval straddles it
        (0.70, 0.05, UNSURE),  # the seed spread hides everything
    ],
)
def test_adpsgd_matches_allreduce_decision(adpsgd_acc, spread, expected):
    accuracy = methods({"allreduce": 0.70, "adpsgd": adpsgd_acc}, spread)
    assert adpsgd_matches_allreduce.decide(accuracy)[0] == expected


def test_adpsgd_matches_allreduce_does_not_judge_loss_or_easgd():
    """The train loss ratio and EASGD are reported: a 60% higher loss and a tie with EASGD
    leave a similar accuracy holding."""
    accuracy = methods({"allreduce": 0.70, "adpsgd": 0.70, "easgd": 0.70})
    loss = methods({"allreduce": 0.5, "adpsgd": 0.8, "easgd": 0.55})
    assert adpsgd_matches_allreduce.decide(accuracy)[0] == HOLDS
    extra = adpsgd_matches_allreduce.reported(loss, accuracy)
    assert math.exp(extra["log_loss_ratio_adpsgd_over_allreduce"].mean) > 1.5


def test_adpsgd_matches_allreduce_reports_without_easgd():
    """At quick scale EASGD does not run: the loss ratio is still reported, the EASGD gap not."""
    accuracy = methods({"allreduce": 0.70, "adpsgd": 0.70})
    extra = adpsgd_matches_allreduce.reported(methods({"allreduce": 0.5, "adpsgd": 0.8}), accuracy)
    assert list(extra) == ["log_loss_ratio_adpsgd_over_allreduce"]


@pytest.mark.parametrize(
    ("adpsgd", "spread", "expected"),
    [(0.75, 0.01, HOLDS), (0.65, 0.01, FAILS), (0.705, 0.1, UNSURE)],
)
def test_decentralized_accuracy_decision(adpsgd, spread, expected):
    accuracy = methods({"allreduce": 0.7, "dpsgd": 0.7, "adpsgd": adpsgd}, spread)
    assert decentralized_accuracy.decide(accuracy)[0] == expected


# ---- adpsgd-tolerates-slow-worker / -slow-network: decidedly >= 2x faster to the target -------


@pytest.mark.parametrize(
    ("adpsgd_time", "spread", "expected"),
    [
        (100.0, 0.01, HOLDS),  # 5x faster than AllReduce, the better baseline
        (400.0, 0.01, FAILS),  # 1.25x
        (250.0, 0.01, UNSURE),  # exactly 2x: the interval straddles log 2
        (150.0, 0.5, UNSURE),  # 3.3x, but the seeds spread too widely
    ],
)
def test_slow_worker_decision(adpsgd_time, spread, expected):
    times = methods({"allreduce": 500.0, "dpsgd": 600.0, "adpsgd": adpsgd_time}, spread)
    assert adpsgd_slow_worker.decide(times)[0] == expected


def test_slow_worker_baseline_is_the_faster_of_allreduce_and_dpsgd():
    times = methods({"allreduce": 5000.0, "dpsgd": 300.0, "adpsgd": 100.0})
    verdict, details = adpsgd_slow_worker.decide(times)
    assert (verdict, details["baseline"]) == (HOLDS, "dpsgd")  # 3x D-PSGD, not 50x AllReduce


def test_slow_worker_fails_when_only_adpsgd_never_reaches_the_target():
    times = methods({"allreduce": 500.0, "dpsgd": 600.0}) | {"adpsgd": [math.inf] * 3}
    assert adpsgd_slow_worker.decide(times)[0] == FAILS


def test_slow_worker_is_inconclusive_when_nobody_reaches_the_target():
    times = {m: [math.inf] * 3 for m in ("allreduce", "dpsgd", "adpsgd")}
    assert adpsgd_slow_worker.decide(times)[0] == UNSURE


def loss_runs(epoch_time: float, final: float, start: float = 2.3, evals: int = 10):
    """A method's outcome: three seeds whose training loss falls linearly from ``start`` to
    about ``final`` over ``evals`` evaluations, ``epoch_time`` simulated time apart."""

    def record(end: float) -> RunRecord:
        points = [[i * epoch_time, start + (end - start) * i / evals] for i in range(evals + 1)]
        return RunRecord({"train_loss": end}, {"train_loss": points, "train_loss@time": points})

    method = Method("m", "M", LrRange(0.1, 1.0))
    return MethodOutcome.fixed(method, 0.1, [record(final * f) for f in (0.98, 1.0, 1.02)])


def test_slow_worker_target_is_the_judged_scenarios_own():
    """The target is 1.1 x the highest median final loss in the judged scenario (here
    AD-PSGD's, 1.2): AD-PSGD ends higher per epoch but runs 10x faster per evaluation, so it
    reaches the target first; every median run reaches it."""
    per = {
        "allreduce": loss_runs(100.0, 0.9),
        "dpsgd": loss_runs(100.0, 1.0),
        "adpsgd": loss_runs(10.0, 1.2),
    }
    target, times = adpsgd_slow_worker.times_to_target(per)
    assert target == pytest.approx(1.32)
    assert all(math.isfinite(t) for values in times.values() for t in values)
    verdict, details = adpsgd_slow_worker.judge(per)
    assert (verdict, details["baseline"]) == (HOLDS, "allreduce")


def test_slow_worker_is_inconclusive_when_the_target_is_not_below_the_initial_loss():
    per = {
        "allreduce": loss_runs(100.0, 0.9, start=1.0),
        "dpsgd": loss_runs(100.0, 1.0, start=1.0),
        "adpsgd": loss_runs(10.0, 1.2, start=1.0),
    }
    assert adpsgd_slow_worker.judge(per)[0] == UNSURE


@pytest.mark.parametrize(("vote", "expected"), [(0.685, HOLDS), (0.75, HOLDS), (0.60, FAILS)])
def test_majority_vote_decision(vote, expected):
    """Judged against Adam (the notes' baseline), not momentum SGD: 0.685 is within 2 points of
    Adam's 0.69 but not of SGD's 0.72; better than Adam is no loss."""
    accuracy = methods({"vote": vote, "sgd": 0.72, "adam": 0.69}, spread=0.002)
    assert majority_vote.decide_vote(accuracy)[0] == expected


@pytest.mark.parametrize(("attacked", "expected"), [(0.68, HOLDS), (0.40, FAILS)])
def test_byzantine_decision(attacked, expected):
    assert (
        majority_vote.decide_byzantine(seeds(0.7, 0.01), seeds(attacked, 0.01, pattern=1))[0]
        == expected
    )


# ---- compression claims ------------------------------------------------------------------------


def ecq_case(ecq, plain, floor_ecq=1e-6, floor_plain=1e-4):
    """MLP train losses (SGD 0.30) and least-squares floors (SGD 1e-12)."""
    return {
        ecq_quantization.MLP: methods({"sgd": 0.30, "ecq-a1-b0.9": ecq, "plain": plain}),
        ecq_quantization.FLOOR: methods(
            {"sgd": 1e-12, "ecq-a1-b0.9": floor_ecq, "plain": floor_plain}
        ),
    }


@pytest.mark.parametrize(
    ("ecq", "plain", "floors", "expected"),
    [
        (0.31, 0.45, (1e-6, 1e-4), HOLDS),
        (0.31, 0.335, (1e-6, 1.05e-6), HOLDS),  # no margin: decidedly better by any amount
        (0.50, 0.60, (1e-6, 1e-4), HOLDS),  # ECQ far from SGD: tracking is reported, not judged
        (0.31, 0.30, (1e-6, 1e-4), FAILS),  # uncompensated decidedly better on the MLP
        (0.31, 0.45, (1e-4, 1e-6), FAILS),  # the uncompensated floor is the lower one
        (0.31, 0.311, (1e-6, 1e-4), UNSURE),  # MLP gap within the seed spread
        (0.31, 0.45, (1e-6, 1.001e-6), UNSURE),  # floors too close to decide
    ],
)
def test_ecq_decision(ecq, plain, floors, expected):
    values = ecq_case(ecq, plain, *floors)
    chosen = dict.fromkeys(values, "ecq-a1-b0.9")
    assert ecq_quantization.decide(values, chosen)[0] == expected


def test_ecq_equal_to_uncompensated_is_no_better():
    """The boundary: the same per-seed values with and without compensation, interval [0, 0],
    is compensation decidedly no better."""
    values = ecq_case(0.31, 0.31, 1e-6, 1e-4)
    for per in values.values():
        per["plain"] = list(per["ecq-a1-b0.9"])
    values[ecq_quantization.FLOOR]["plain"] = seeds(1e-4, 1e-6, pattern=2)
    chosen = dict.fromkeys(values, "ecq-a1-b0.9")
    verdict, decisions = ecq_quantization.decide(values, chosen)
    assert verdict == FAILS
    assert decisions == {ecq_quantization.MLP: "no", ecq_quantization.FLOOR: "yes"}


def test_ecq_decision_reads_only_the_two_quantizers():
    """What the settling judge passes: no 32-bit SGD values."""
    values = {
        p: {m: v for m, v in per.items() if m != "sgd"} for p, per in ecq_case(0.31, 0.45).items()
    }
    chosen = dict.fromkeys(values, "ecq-a1-b0.9")
    assert ecq_quantization.decide(values, chosen)[0] == HOLDS


@pytest.mark.parametrize(
    ("dgc", "topk", "ratio", "expected"),
    [
        (0.698, 0.60, 457, HOLDS),
        (0.698, 0.75, 457, HOLDS),  # top-k better: reported, not judged
        (0.705, 0.60, 270, HOLDS),  # better than dense, at the paper's lowest ratio
        (0.650, 0.60, 457, FAILS),  # 5 points below dense
        (0.698, 0.60, 269, FAILS),  # compresses less than the paper's 270x
        (0.690, 0.60, 457, UNSURE),  # 1 point below: the slack's boundary, undecided
    ],
)
def test_dgc_decision(dgc, topk, ratio, expected):
    accuracy = methods({"dense": 0.70, "dgc": dgc, "topk": topk}, spread=0.002)
    assert dgc_compression.decide(accuracy, ratio)[0] == expected


def test_dgc_decision_reads_only_dense_and_dgc():
    accuracy = methods({"dense": 0.70, "dgc": 0.698}, spread=0.002)
    verdict, details = dgc_compression.decide(accuracy, 457)
    assert verdict == HOLDS
    assert details == {"no_accuracy_loss": "yes", "ratio_at_least": "yes"}


def test_dgc_budget_is_rounds_over_density_after_the_warm_up():
    """The judged budget: the warm-up, then ROUNDS[scale] / density steps per worker (31.25 an
    epoch), more than the 1 / density steps a coordinate waits between sends at either scale;
    the sweep's points are whole epochs inside it."""
    steps_per_epoch = dgc_compression.SAMPLES / (dgc_compression.WORKERS * dgc_compression.BATCH)
    for scale in ("quick", "full"):
        budget, rounds = dgc_compression.BUDGET.at(scale), dgc_compression.ROUNDS[scale]
        after = (budget - dgc_compression.WARMUP_EPOCHS) * steps_per_epoch
        assert after == pytest.approx(rounds / dgc_compression.DENSITY) and rounds > 1
        assert dgc_compression.rounds_in(budget) == pytest.approx(rounds)
    assert dgc_compression.rounds_in(dgc_compression.BUDGET.smoke) == 0  # inside the warm-up
    epochs = [dgc_compression.epochs_for(r) for r in dgc_compression.SWEEP]
    assert epochs == [18, 34, 66, 98, 130]


def test_dgc_counts_both_ratios_from_the_payload_bits():
    """83 entries per worker-step (one at least per tensor) of 78858 coordinates: 458x in bits
    (64 bits an entry, 32 a message header), 950x in entries."""
    steps, entries = 100, 83
    bits = steps * (entries * 64 + dgc_compression.TENSORS * 32)
    run = SimpleNamespace(
        metrics={"parameters": 78858, "worker_steps": steps, "counter:payload_bits": bits}
    )
    ratio, entries_ratio = dgc_compression.compression_ratios(run)
    assert ratio == pytest.approx(32 * 78858 / (entries * 64 + 6 * 32))
    assert entries_ratio == pytest.approx(78858 / entries)


def test_dgc_sweep_reads_the_curves_at_each_round():
    def record(values):
        points = [[e / 2, values(e / 2)] for e in range(1, 2 * 130 + 1)]
        return SimpleNamespace(curve=lambda name: ([p[0] for p in points], [p[1] for p in points]))

    per = {
        "dense": SimpleNamespace(runs=[record(lambda e, k=k: 0.70 + k / 1000) for k in range(3)]),
        "dgc": SimpleNamespace(
            runs=[record(lambda e, k=k: 0.70 + k / 1000 - (0.1 if e < 50 else 0)) for k in range(3)]
        ),
    }
    gaps = dgc_compression.sweep(per, 130)
    assert [round(v.mean, 6) for v in gaps.values()] == [0.1, 0.1, 0.0, 0.0, 0.0]
    assert list(dgc_compression.sweep(per, 40)) == [
        "0.5 rounds (18 epochs)",
        "1 rounds (34 epochs)",
    ]


# ---- sign-depends-on-geometry ------------------------------------------------------------------


def geometry_case(axis_sign, rotated_sign, plain=0.01, spread=0.02, at=None):
    """Tail losses f/f(x0): the sign methods at ``axis_sign`` / ``rotated_sign``, their twins at
    ``plain``, at every noise level (or only at noise ``at``; the others as in a holding case)."""
    tail = {}
    for noise in sign_geometry.NOISES:
        signs = (axis_sign, rotated_sign) if at in (None, noise) else (0.003, 0.03)
        for geometry, sign in zip(("axis-aligned", "rotated"), signs, strict=True):
            tail[f"{geometry}, noise {noise:g}"] = methods(
                {"signsgd": sign, "sgd": plain, "signum": sign, "msgd": plain}, spread
            )
    return tail


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (geometry_case(0.003, 0.03), HOLDS),  # gains axis-aligned, loses it rotated
        (geometry_case(0.003, 0.003), FAILS),  # the same gain in both geometries
        (geometry_case(0.003, 0.0029, at=5.0), FAILS),  # no shrink at one noise level only
        (geometry_case(0.02, 0.04), UNSURE),  # shrinks, but the sign never gains
        (geometry_case(0.003, 0.03, spread=0.9), UNSURE),  # the spread hides everything
    ],
)
def test_sign_geometry_decision(case, expected):
    assert sign_geometry.decide(case)[0] == expected


def test_sign_geometry_compares_a_quantity_defined_at_every_noise_level():
    """The tail loss is finite whether or not any run reached the reported target; a diverged
    sign run (inf) on the rotated problem counts as a loss of the gain there."""
    case = geometry_case(0.003, 0.03)
    case["rotated, noise 5"]["signsgd"] = [math.inf] * 3
    assert sign_geometry.decide(case)[0] == HOLDS


def test_unreached_names_the_cells_that_never_reach_the_target():
    budget = 2000

    class Outcome:
        def __init__(self, values):
            self._values = values

        def values(self, metric):
            return self._values

    outcomes = {
        "noise 0.2": {"a": Outcome([10.0, 2001.0]), "b": Outcome([20.0, 30.0])},
        "noise 5": {"a": Outcome([2001.0] * 2), "b": Outcome([2001.0] * 2)},
        "noise 1": {"a": Outcome([2001.0] * 2), "b": Outcome([5.0, 2001.0])},
    }
    note = unreached(outcomes, "steps", budget, {"a": "A", "b": "B"})
    assert (
        note == " Target not reached within 2000 on any seed by: noise 5: every method; noise 1: A."
    )
    assert unreached({"p": {"a": Outcome([1.0])}}, "steps", budget, {"a": "A"}) == ""


# ---- measurements: adam-is-sign-times-variance, gradient-window-is-low-rank ------------------


@pytest.mark.parametrize(
    ("gap", "errors", "rho", "expected"),
    [
        (2e-4, {0.1: 0.01, 1.0: 0.02, 10.0: 0.03}, 0.0526316, HOLDS),
        (5e-3, {0.1: 0.01, 1.0: 0.02, 10.0: 0.03}, 0.0526316, FAILS),  # step off the identity
        (2e-4, {0.1: 0.01, 1.0: 0.02, 10.0: 0.08}, 0.0526316, HOLDS),  # reported, not judged
        (2e-4, {0.1: 0.01, 1.0: 0.02, 10.0: 0.03}, 0.06, HOLDS),  # reported, not judged
        (1e-3, {0.1: 0.05}, 0.0526316, HOLDS),  # both tolerances are inclusive
    ],
)
def test_adam_sign_variance_decision(gap, errors, rho, expected):
    verdict, checks = adam_sign_variance.decide(gap, errors, rho, 0.1 / 1.9)
    assert verdict == expected
    assert set(checks) == {"identity", "estimator", "rho"}
    assert checks["estimator"] == all(e <= 0.05 for e in errors.values())
    assert checks["rho"] == (abs(rho - 0.1 / 1.9) <= 1e-6)


@pytest.mark.parametrize(
    ("mass", "expected"),
    [
        ([0.74, 0.64, 0.58], HOLDS),
        ([0.74, 0.64, 0.47], UNSURE),  # the share falls below the criterion in a later window
        ([0.40, 0.30], FAILS),
        ([0.50], HOLDS),  # the threshold itself counts
    ],
)
def test_gradient_window_decision(mass, expected):
    assert gradient_window.decide(mass) == expected


def test_gradient_window_decision_needs_a_window():
    with pytest.raises(ValueError, match="at least one window"):
        gradient_window.decide([])


# ---- progressive-batching-saves-work -----------------------------------------------------------


def work_problem(pbqn_epochs, lbfgs_epochs):
    return {
        "pbqn": seeds(pbqn_epochs, 0.3, pattern=0),
        "lbfgs": seeds(lbfgs_epochs, 0.3, pattern=1),
    }


@pytest.mark.parametrize(
    ("problems", "expected"),
    [
        ([(6, 9)] * 3, HOLDS),
        ([(6, 9)] * 2 + [(12, 9)], UNSURE),  # loses one of three
        ([(12, 9)] * 2 + [(6, 9)], FAILS),  # loses two of three
        ([(6, 9)] * 2 + [(31, 31)], UNSURE),  # neither reaches the target on a problem
        ([(31, 9)] * 2 + [(6, 9)], FAILS),  # only L-BFGS reaches it: a loss
        ([(9, 9)] * 3, UNSURE),  # ties decide nothing
    ],
)
def test_pbqn_work_decision(problems, expected):
    epochs = {f"p{i}": work_problem(*values) for i, values in enumerate(problems)}
    assert pbqn_work.decide(epochs, budget=30)[0] == expected


def test_pbqn_beating_sgd_is_reported_not_judged():
    """PBQN's gap far above SGD's at equal work changes no verdict; it is reported as "no"."""
    epochs = {"p": work_problem(6, 9)}
    gaps = {"p": {"pbqn": seeds(1e-3, 5e-5, pattern=2), "sgd": seeds(1e-4, 0, pattern=3)}}
    assert pbqn_work.decide(epochs, budget=30)[0] == HOLDS
    assert pbqn_work.beats_sgd(gaps) == {"p": "no"}
    gaps["p"]["pbqn"] = [0.0, 1e-20, 0.0]  # gaps at machine precision count as 1e-16
    assert pbqn_work.beats_sgd(gaps) == {"p": "yes"}


# ---- batch-grows-with-noise --------------------------------------------------------------------


def growth_problem(grown_gap, fixed_gap, last_batches):
    gaps = {
        "growing": seeds(grown_gap, 0.05 * grown_gap, pattern=0),
        "fixed-16": seeds(fixed_gap, 0.05 * fixed_gap, pattern=1),
        "fixed-128": seeds(fixed_gap, 0.05 * fixed_gap, pattern=2),
    }
    return gaps, {"growing": last_batches}


@pytest.mark.parametrize(
    ("problems", "expected"),
    [
        ([(1e-4, 1e-3, [100, 90, 120])] * 2, HOLDS),
        ([(1e-4, 1e-3, [100, 90, 120]), (1e-2, 1e-3, [100, 90, 120])], UNSURE),
        ([(1e-2, 1e-3, [100, 90, 120])] * 2, FAILS),
        ([(1e-4, 1e-3, [16, 20, 30])] * 2, FAILS),  # lower, but the batch never grew
        ([(1e-4, 1e-3, [16, 64, 80])] * 2, UNSURE),  # grew on some seeds only; 64 = 4 x 16 counts
    ],
)
def test_batch_growth_decision(problems, expected):
    cases = {f"p{i}": growth_problem(*values) for i, values in enumerate(problems)}
    gaps = {p: g for p, (g, _) in cases.items()}
    batches = {p: b for p, (_, b) in cases.items()}
    assert batch_growth.decide(gaps, batches)[0] == expected


# ---- pbqn-on-a-small-network -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "spread", "expected"),
    [(1.2, 0.05, HOLDS), (5.0, 0.05, FAILS), (2.0, 0.5, UNSURE), (0.5, 0.05, HOLDS)],
)
def test_pbqn_network_decision(ratio, spread, expected):
    adam = seeds(0.01, 0.001, pattern=0)
    pbqn = [a * ratio * math.exp(spread * z) for a, z in zip(adam, PATTERNS[1], strict=False)]
    assert pbqn_network.decide({"pbqn": pbqn, "adam": adam})[0] == expected


# ---- perturbation-escapes-saddles --------------------------------------------------------------


@pytest.mark.parametrize(
    ("gd", "pgd", "expected"),
    [
        ({10: [1001], 10000: [1001]}, {10: [35, 40], 10000: [50, 55]}, HOLDS),
        ({10: [1001], 10000: [1001]}, {10: [35, 40], 10000: [80, 90]}, HOLDS),  # growth reported
        ({10: [1001], 10000: [12]}, {10: [35, 40], 10000: [50, 55]}, FAILS),  # GD escaped
        ({10: [1001], 10000: [1001]}, {10: [35, 40], 10000: [50, 1001]}, UNSURE),  # one stayed
        ({10: [1001], 10000: [1001]}, {10: [35, 40], 10000: [1000, 1000]}, HOLDS),  # at budget
    ],
)
def test_saddle_escape_decision(gd, pgd, expected):
    assert saddle_escape.decide(gd, pgd, budget=1000)[0] == expected


def test_saddle_escape_growth_is_reported_not_judged():
    assert "grew 2.00x from d=10 to d=10000" in saddle_escape.growth({10: [30], 10000: [60]}, 1000)
    assert "no growth ratio" in saddle_escape.growth({10: [30], 10000: [1001]}, 1000)


# ---- depth-accelerates-l4-not-l2 ---------------------------------------------------------------


def depth_case(l4, l2):
    """``l4``: (depth1, depth2, depth3, adagrad) iterations; ``l2``: (depth1, depth2)."""
    names = ("depth1", "depth2", "depth3", "adagrad")
    return {
        "l4 regression": {
            m: seeds(v, 0.05 * v, pattern=i) for i, (m, v) in enumerate(zip(names, l4, strict=True))
        },
        "l2 regression": {
            m: seeds(v, 0.05 * v, pattern=i)
            for i, (m, v) in enumerate(zip(names, l2, strict=False))
        },
    }


@pytest.mark.parametrize(
    ("l4", "l2", "expected"),
    [
        ((100, 30, 40, 80), (30, 50), HOLDS),
        ((100, 30, 40, 20), (30, 50), HOLDS),  # AdaGrad faster still: reported, not judged
        ((100, 30, 250, 80), (30, 50), FAILS),  # depth 3 slower on l4
        ((100, 30, 40, 80), (60, 20), FAILS),  # depth 2 accelerates l2 too
        ((100, 30, 40, 80), (30, 24), UNSURE),  # right at the 0.8 margin
        ((100, 30, 40, 80), (30, 18), FAILS),  # a 1.67x speed-up on l2 helps
        ((100, 30, 40, 80), (30, 90), HOLDS),  # slower on l2 does not help either
        ((5001, 5001, 5001, 80), (30, 50), UNSURE),  # no GD reaches the target: unknown
    ],
)
def test_depth_acceleration_decision(l4, l2, expected):
    assert depth_acceleration.decide(depth_case(l4, l2), budget=5000)[0] == expected


def test_depth_acceleration_reports_adagrad():
    paper = depth_acceleration.reported(depth_case((100, 30, 40, 20), (30, 50)), budget=5000)
    assert set(paper) == {f"l4: log(GD, depth {n} / AdaGrad)" for n in (2, 3)}
    assert all(v.endswith("faster: no") for v in paper.values())


# ---- trained-nets-are-noise-stable and noise-stability-means-compressible ----------------------


def stability_case(true, random, init):
    return {
        "true": seeds(true, 0.05 * true, pattern=0),
        "random": seeds(random, 0.05 * random, pattern=1),
        "init": seeds(init, 0.05 * init, pattern=2),
    }


def fits(true=1.0, random=1.0):
    return {"true": [true] * 3, "random": [random] * 3, "init": [0.1] * 3}


@pytest.mark.parametrize(
    ("true", "random", "init", "accuracy", "expected"),
    [
        (0.05, 0.15, 0.09, fits(), HOLDS),
        (0.05, 0.04, 0.09, fits(), HOLDS),  # the random-label net attenuates more: reported
        (0.05, 0.15, 0.09, fits(random=0.9), HOLDS),  # the random-label net did not fit
        (0.05, 0.15, 0.04, fits(), FAILS),  # the untrained net attenuates more
        (0.12, 0.15, 0.2, fits(), FAILS),  # the trained net amplifies the noise (> 0.1)
        (0.1, 0.15, 0.2, fits(), UNSURE),  # attenuation right at the injected size
        (0.05, 0.15, 0.09, fits(true=0.9), UNSURE),  # the true-label net did not fit
    ],
)
def test_noise_stability_decision(true, random, init, accuracy, expected):
    attenuation = stability_case(true, random, init)
    assert noise_stability.decide(attenuation, accuracy)[0] == expected


def test_noise_stability_reports_random_labels():
    case = stability_case(0.05, 0.15, 0.09)
    assert noise_stability.reported(case, fits()).endswith(", yes")
    assert noise_stability.reported(case, fits(random=0.9)).startswith("not compared")


FULL = 216586


@pytest.mark.parametrize(
    ("true", "accuracy", "expected"),
    [
        ([63000, 63000, 63000], fits(), HOLDS),  # rank 32 on every seed: 29% kept
        ([63000, 63000, 118000], fits(), UNSURE),  # one seed needs rank 64 (54%)
        ([118000, 118000, 118000], fits(), FAILS),  # 54% kept: not half thrown out
        ([FULL, FULL, FULL], fits(), FAILS),  # no rank keeps the accuracy
        ([FULL / 2] * 3, fits(), FAILS),  # exactly half kept is not below the bound
        ([63000, 63000, 63000], fits(random=0.5), HOLDS),  # the random-label net is reported
        ([63000, 63000, 63000], fits(true=0.9), UNSURE),  # the true-label net did not fit
    ],
)
def test_compressibility_decision(true, accuracy, expected):
    parameters = {"true": true, "random": [FULL] * 3}
    assert compressibility.decide(parameters, FULL, accuracy)[0] == expected


def test_compressibility_reports_random_labels():
    parameters = {"true": seeds(5e4, 2.5e3, pattern=0), "random": seeds(2e5, 0, pattern=1)}
    assert compressibility.reported(parameters, fits()).endswith(", yes")
    assert compressibility.reported(parameters, fits(random=0.5)).startswith("not compared")
    settled = {**parameters, "true": parameters["true"] * 2}  # settling gave it more seeds
    assert "(3 seeds)" in compressibility.reported(settled, fits())


# ---- orthogonal-init-trains-very-deep-tanh -----------------------------------------------------


def init_case(shallow, deep):
    """(delta-orthogonal, gaussian, ordered, chaotic) median losses at depths 8 and 48."""
    names = ("delta-orthogonal", "gaussian", "ordered", "chaotic")
    return {
        depth: {
            m: seeds(v, 0.05 * v, pattern=i) if math.isfinite(v) else [v] * 3
            for i, (m, v) in enumerate(zip(names, per, strict=True))
        }
        for depth, per in ((8, shallow), (48, deep))
    }


ISOMETRIC = {"delta-orthogonal": seeds(0.7, 0.05, pattern=0), "gaussian": seeds(11, 0.5, pattern=1)}


@pytest.mark.parametrize(
    ("shallow", "deep", "spread", "expected"),
    [
        ((0.05, 0.04, 2.3, 0.3), (0.17, 0.5, 2.3, 2.3), ISOMETRIC, HOLDS),
        ((0.05, 0.04, 2.3, 0.3), (0.17, 0.5, 2.3, math.inf), ISOMETRIC, HOLDS),  # chaotic diverged
        ((0.05, 0.04, 2.3, 0.3), (0.5, 0.17, 2.3, 2.3), ISOMETRIC, FAILS),  # Gaussian faster
        ((0.05, 0.04, 2.3, 0.3), (0.17, 0.5, 2.3, 0.1), ISOMETRIC, HOLDS),  # chaotic: reported
        ((0.02, 0.08, 2.3, 0.3), (0.17, 0.5, 2.3, 2.3), ISOMETRIC, HOLDS),  # growth: reported
        ((0.05, 0.04, 2.3, 0.3), (0.17, 0.175, 2.3, 2.3), ISOMETRIC, UNSURE),  # within the spread
        (
            (0.05, 0.04, 2.3, 0.3),
            (0.17, 0.5, 2.3, 2.3),
            {"delta-orthogonal": [0.7, 12, 0.7], "gaussian": [11, 0.5, 11]},
            UNSURE,  # the spectra disagree across seeds
        ),
        (
            (0.05, 0.04, 2.3, 0.3),
            (0.17, 0.5, 2.3, 2.3),
            {"delta-orthogonal": [11, 12, 11.5], "gaussian": seeds(0.7, 0.05)},
            FAILS,  # the Gaussian body is the isometric one
        ),
    ],
)
def test_orthogonal_init_decision(shallow, deep, spread, expected):
    assert orthogonal_init.decide(init_case(shallow, deep)[48], spread)[0] == expected


def test_orthogonal_init_reports_the_papers_parts():
    paper = orthogonal_init.reported(init_case((0.05, 0.04, 2.3, 0.3), (0.17, 0.5, 2.3, 0.1)))
    assert paper["off-critical trains worse at depth 48"] == "no"  # chaotic trains
    assert paper["advantage grows with depth"].endswith(", yes")
    shrinks = orthogonal_init.reported(init_case((0.02, 0.08, 2.3, 0.3), (0.17, 0.5, 2.3, 2.3)))
    assert shrinks["advantage grows with depth"].endswith(", no")


def test_orthogonal_init_reports_on_the_seeds_both_sides_ran():
    case = init_case((0.05, 0.04, 2.3, 0.3), (0.17, 0.5, 2.3, 2.3))
    for init in orthogonal_init.JUDGED:  # settling gave the judged cells three more seeds
        case[48][init] = case[48][init] + case[48][init]
    paper = orthogonal_init.reported(case)
    assert "(3 seeds)" in paper["advantage grows with depth"]
    assert paper["off-critical trains worse at depth 48"] == "yes"


# ---- async-sgd-survives-unbounded-delays --------------------------------------------------------


def delay_case(changed=None, ratio=1.5, quasi_seed_ratio=None):
    """Every cell and schedule converging (distance 1e-3, decade ratio 0.4 per seed), except
    the (cell, schedule) ``changed`` whose decade ratios lie around ``ratio``;
    ``quasi_seed_ratio`` sets the quasilinear decade ratio of one seed under linear delays on
    the quadratic."""
    distances, decades = {}, {}
    for name in unbounded_delays.CELLS:
        distances[name] = {s: seeds(1e-3, 1e-4, pattern=i)
                           for i, s in enumerate(unbounded_delays.SCHEDULES)}  # fmt: skip
        decades[name] = {s: seeds(0.4, 0.05, pattern=i)
                         for i, s in enumerate(unbounded_delays.SCHEDULES)}  # fmt: skip
    if changed is not None:
        decades[changed[0]][changed[1]] = seeds(ratio, 0.05)
    if quasi_seed_ratio is not None:
        decades["quadratic, d_n = n/2"]["quasilinear"][1] = quasi_seed_ratio
    return distances, decades


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (delay_case(), HOLDS),
        (delay_case(("quadratic, d_n = n/2", "constant")), HOLDS),  # not covered
        (delay_case(("nonconvex, d_n = n^0.8", "poly0.95")), HOLDS),  # non-convex: reported
        (delay_case(("nonconvex, d_n = n/2", "quasilinear")), HOLDS),  # non-convex: reported
        (delay_case(("quadratic, d_n = n^0.8", "poly0.95")), HOLDS),  # n^-q: reported
        (delay_case(("quadratic, d_n = n/2", "quasilinear")), FAILS),
        (delay_case(("quadratic, d_n = n^0.5", "quasilinear")), FAILS),  # any degree
        (delay_case(quasi_seed_ratio=1.02), FAILS),  # one seed stops approaching x*
        (delay_case(("quadratic, d_n = 10", "quasilinear"), ratio=0.97), UNSURE),  # straddles 1
    ],
)
def test_unbounded_delays_decision(case, expected):
    assert unbounded_delays.decide(*case)[0] == expected


def test_unbounded_delays_reports_the_cells_it_does_not_judge():
    distances, decades = delay_case(("nonconvex, d_n = n^0.8", "poly0.95"))
    others = unbounded_delays.reported(distances, decades)
    assert others["nonconvex, d_n = n^0.8: n^-0.95"] == "no"
    assert "quadratic, d_n = n/2: quasilinear" not in others  # judged, not reported
    assert "quadratic, d_n = n/2: constant" not in others  # not covered by the conditions


# ---- averaging-iterates-beats-averaging-gradients ----------------------------------------------


def averaging_case(late=20.0, naive_own=5e-4, naive_same=(50.0, 60.0, 70.0)):
    """DAve-PG at every straggler factor reaching 1e-2, 1e-5 and 1e-8 at times 5, 15 and
    15 + ``late`` (x the factor); the naive method's final gaps at x100."""
    dave = {f: [(5.0 * f, 15.0 * f, (15.0 + late) * f)] * 3 for f in averaging_iterates.FACTORS}
    naive = {"own": seeds(naive_own, naive_own / 10), "same": list(naive_same)}
    return dave, naive


def sync_times(dave, sync):
    """Synchronous prox-grad ``sync`` times slower than DAve-PG (per-seed noise)."""
    return {f: [d[2] * sync * (1 + 0.05 * z) for d, z in zip(dave[f], PATTERNS[0], strict=True)]
            for f in dave}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (averaging_case(), HOLDS),
        (averaging_case(naive_same=(math.inf, math.inf, math.inf)), HOLDS),  # diverged
        (averaging_case(late=50.0), FAILS),  # the last decades 5x slower: not linear
        (averaging_case(late=math.inf), FAILS),  # never reaches 1e-8
        (averaging_case(naive_same=(1e-9, 5.0, 5.0)), FAILS),  # a naive seed converges
        (averaging_case(naive_own=1e-7), UNSURE),  # between the target and the stall line
    ],
)
def test_averaging_iterates_decision(case, expected):
    assert averaging_iterates.decide(*case)[0] == expected


@pytest.mark.parametrize(("sync", "expected"), [(2.0, "yes"), (0.8, "no"), (1.0, "undecided")])
def test_averaging_iterates_reports_the_comparison_with_sync(sync, expected):
    dave, _ = averaging_case()
    decisions = averaging_iterates.faster_than_sync(dave, sync_times(dave, sync))
    assert set(decisions) == {"x10", "x100"}  # with a straggler only
    assert {d.value for d in decisions.values()} == {expected}
    assert averaging_iterates.decide(*averaging_case())[0] == HOLDS  # whatever sync does


# ---- local-rounds-pay-when-communication-is-slow ------------------------------------------------


def rounds_case(ratio, spread=0.02, elsewhere=1 / 3):
    """Per-seed times to 1e-8 in every cell; at the deciding cell (8 workers, the slow end)
    p = 1 takes ``ratio`` x as long as p = 4 (with per-seed noise); elsewhere ``elsewhere`` x."""
    times = {}
    for cluster, latencies in local_rounds.SWEPT.items():
        for latency in latencies:
            times[local_rounds.problem_name(cluster, latency)] = {
                "p1": seeds(100.0 * elsewhere, 1.0),
                "p4": seeds(100.0, 3.0, pattern=1),
            }
    deciding = local_rounds.problem_name(local_rounds.DECIDING, local_rounds.SLOW)
    times[deciding] = {"p1": seeds(100.0 * ratio, 100.0 * ratio * spread), "p4": seeds(100.0, 0)}
    return times


@pytest.mark.parametrize(
    ("ratio", "spread", "expected"),
    [(1.4, 0.02, HOLDS), (0.98, 0.005, FAILS), (1.0, 0.02, UNSURE), (1.05, 0.2, UNSURE)],
)
def test_local_rounds_decision(ratio, spread, expected):
    assert local_rounds.decide(rounds_case(ratio, spread))[0] == expected


def test_local_rounds_judges_only_the_slow_end():
    assert local_rounds.decide(rounds_case(1.4, elsewhere=0.5))[0] == HOLDS  # others reported
    assert local_rounds.decide(rounds_case(0.98, 0.005, elsewhere=2.0))[0] == FAILS


def test_local_rounds_break_even():
    yes, no, unsure = st.Decision.YES, st.Decision.NO, st.Decision.UNDECIDED
    sweep = dict(zip(local_rounds.LATENCIES, [no, no, unsure, yes, yes, yes], strict=True))
    assert local_rounds.break_even(sweep) == 10.0
    sweep[100.0] = unsure  # p = 4 must be decidedly faster at every slower latency
    assert local_rounds.break_even(sweep) == 1000.0
    sweep[1000.0] = no
    assert local_rounds.break_even(sweep) is None
    times = rounds_case(1.4)
    for latency in local_rounds.LATENCIES[-3:]:
        times[local_rounds.problem_name(local_rounds.DECIDING, latency)] = rounds_case(1.4)[
            local_rounds.problem_name(local_rounds.DECIDING, local_rounds.SLOW)
        ]
    assert local_rounds.break_even(local_rounds.sweep(times)) == 10.0


# ---- ddg-matches-backprop-accuracy -------------------------------------------------------------


@pytest.mark.parametrize(
    ("k2", "k4", "expected"),
    [
        (0.70, 0.70, HOLDS),  # both within 2 points
        (0.69, 0.60, FAILS),  # K = 4 loses 10 points
        (0.69, 0.675, UNSURE),  # K = 4's 2.5-point gap straddles the tolerance
    ],
)
def test_ddg_accuracy_decision(k2, k4, expected):
    accuracy = {"k1": seeds(0.70, 0.003), "k2": seeds(k2, 0.003, pattern=1),
                "k4": seeds(k4, 0.003, pattern=2)}  # fmt: skip
    assert ddg_accuracy.decide(accuracy)[0] == expected


# ---- ddg-speeds-up-with-more-stages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("ddg", "sim4", "expected"),
    [
        ([0.70, 0.72, 0.69], 3.4, HOLDS),
        ([0.70, 0.72, 0.69], 2.8, FAILS),  # 1.47x from 2 to 4 stages
        ([0.85, 0.84, 0.86], 3.4, FAILS),  # DDG slower than backprop in every round
        ([0.70, 0.95, 0.80], 3.4, UNSURE),  # rounds disagree
    ],
)
def test_ddg_speed_decision(ddg, sim4, expected):
    bp1 = [0.80, 0.81, 0.79]
    assert ddg_speed.decide(bp1, ddg, {2: 1.9, 4: sim4, 8: 5.5})[0] == expected


YES, NO, UNDECIDED = st.Decision.YES, st.Decision.NO, st.Decision.UNDECIDED


@pytest.mark.parametrize(
    "decisions, fails_when, fails_on, expected",
    [
        ([YES, YES], "any", None, HOLDS),
        ([YES, NO], "any", None, FAILS),
        ([YES, NO], "all", None, UNSURE),
        ([NO, NO], "all", None, FAILS),
        ([NO, NO, YES], "most", None, FAILS),
        ([NO, UNDECIDED, YES], "most", None, UNSURE),
        ([YES, NO], "any", [YES], UNSURE),  # only the first decision can fail the claim
        ([NO, YES], "any", [NO], FAILS),
    ],
)
def test_verdict_from(decisions, fails_when, fails_on, expected):
    assert verdict_from(decisions, fails_when, fails_on) == expected


def test_judged_names_the_decisions_that_can_fail_the_claim():
    decisions = {"faster": YES, "cheaper": NO}
    assert judged(decisions) == (FAILS, {"faster": "yes", "cheaper": "no"})
    assert judged(decisions, fails_on=["faster"])[0] == UNSURE
