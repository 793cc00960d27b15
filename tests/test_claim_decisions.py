"""Every migrated claim's decision function on made-up per-seed outcomes: holds, does not
hold, inconclusive, and the edge cases (one seed, diverged runs, spread wider than the gap)."""

from __future__ import annotations

import math

import pytest

from gradkit.claims import Verdict, ggt_recurrent, msvag_vs_adam, shampoo_cnn, signum_matches_adam

HOLDS, FAILS, UNSURE = Verdict.HOLDS, Verdict.DOES_NOT_HOLD, Verdict.INCONCLUSIVE


PATTERNS = ([-1.0, 0.5, 0.33], [0.6, -0.9, 0.2], [0.1, 0.7, -1.0], [-0.4, -0.3, 0.9])


def seeds(center, spread=0.002, n=3, pattern=0):
    """``n`` per-seed values around ``center``; different patterns give methods different
    per-seed noise, so their paired differences have a spread too."""
    return [center + spread * z for z in PATTERNS[pattern][:n]]


# ---- signum-matches-adam: equivalence within 2 points ----------------------------------------


def signum_case(gap_mlp, gap_cnn, spread=0.002, n=3):
    return {
        "mnist1d-mlp": {"signum": seeds(0.70 + gap_mlp, spread, n), "adam": seeds(0.70, 0, n)},
        "digits-cnn": {"signum": seeds(0.95 + gap_cnn, spread, n), "adam": seeds(0.95, 0, n)},
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (signum_case(0.004, -0.003), HOLDS),
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


def shampoo_case(shampoo_loss, shampoo_accuracy, spread=0.01):
    problem = {
        "shampoo": seeds(shampoo_loss, spread * shampoo_loss),
        "adam": seeds(0.5, 0.01 * 0.5),
        "msgd": seeds(0.6, 0.01 * 0.6),
    }
    accuracy = {"shampoo": seeds(shampoo_accuracy), "adam": seeds(0.9), "msgd": seeds(0.88)}
    return {p: dict(problem) for p in ("a", "b")}, {p: dict(accuracy) for p in ("a", "b")}


@pytest.mark.parametrize(
    ("loss", "accuracy", "spread", "expected"),
    [
        (0.3, 0.895, 0.01, HOLDS),
        (0.8, 0.895, 0.01, FAILS),  # higher loss than both on both problems
        (0.3, 0.80, 0.01, FAILS),  # lower loss but 10 points less accurate
        (0.49, 0.895, 0.5, UNSURE),  # a 2% loss gap inside a 50% spread
    ],
)
def test_shampoo_decision(loss, accuracy, spread, expected):
    assert shampoo_cnn.decide(*shampoo_case(loss, accuracy, spread))[0] == expected


def test_shampoo_diverged_runs_lose():
    loss, accuracy = shampoo_case(0.3, 0.895)
    for p in loss:
        loss[p] = {**loss[p], "shampoo": [math.inf] * 3}
        accuracy[p] = {**accuracy[p], "shampoo": [0.0] * 3}
    assert shampoo_cnn.decide(loss, accuracy)[0] == FAILS


# ---- msvag-vs-adam -----------------------------------------------------------------------------


def msvag_problem(msgd, signum, msvag, adam, spread=0.01):
    values = {"msgd": msgd, "signum": signum, "msvag": msvag, "adam": adam}
    return {m: seeds(v, spread * v, pattern=i) for i, (m, v) in enumerate(values.items())}


def test_msvag_holds_when_variance_adaptation_does_no_harm_and_the_sign_depends_on_the_problem():
    loss = {
        "p1": msvag_problem(0.5, 0.3, 0.45, 0.32),  # sign wins
        "p2": msvag_problem(0.3, 0.5, 0.28, 0.55),  # sign loses
        "p3": msvag_problem(0.4, 0.4, 0.4, 0.4, spread=0.2),
    }
    verdict, details = msvag_vs_adam.decide(loss)
    assert verdict == HOLDS
    assert details["sign_based_best"] == {"p1": "yes", "p2": "no", "p3": "undecided"}


def test_msvag_fails_when_the_sign_wins_everywhere():
    loss = {p: msvag_problem(0.5, 0.3, 0.45, 0.32) for p in ("p1", "p2", "p3")}
    assert msvag_vs_adam.decide(loss)[0] == FAILS


def test_msvag_fails_when_it_harms_on_two_problems():
    loss = {
        "p1": msvag_problem(0.5, 0.3, 0.9, 0.32),
        "p2": msvag_problem(0.3, 0.5, 0.6, 0.55),
        "p3": msvag_problem(0.4, 0.4, 0.4, 0.4, spread=0.2),
    }
    assert msvag_vs_adam.decide(loss)[0] == FAILS


def test_msvag_is_inconclusive_when_the_spread_hides_everything():
    loss = {p: msvag_problem(0.4, 0.4, 0.4, 0.4, spread=0.3) for p in ("p1", "p2", "p3")}
    assert msvag_vs_adam.decide(loss)[0] == UNSURE


# ---- ggt-helps-recurrent-more ------------------------------------------------------------------


def ggt_case(rnn_gain, cnn_gain, spread=0.01):
    return {
        "mnist1d-rnn": {"adam": seeds(1.0, 0), "ggt": seeds(1.0 / rnn_gain, spread)},
        "mnist1d-cnn": {"adam": seeds(1.0, 0), "ggt": seeds(1.0 / cnn_gain, spread)},
    }


@pytest.mark.parametrize(
    ("rnn_gain", "cnn_gain", "spread", "expected"),
    [
        (2.0, 1.1, 0.01, HOLDS),
        (1.1, 2.0, 0.01, FAILS),
        (0.8, 0.5, 0.01, UNSURE),  # more gain on the GRU, but GGT does not help it
        (1.2, 1.15, 0.3, UNSURE),
    ],
)
def test_ggt_recurrent_decision(rnn_gain, cnn_gain, spread, expected):
    assert ggt_recurrent.decide(ggt_case(rnn_gain, cnn_gain, spread))[0] == expected
