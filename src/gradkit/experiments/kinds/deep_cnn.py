"""Run kinds of vanilla deep tanh CNNs under different initialisations (Xiao et al., ICML 2018):
training from an initialisation, and the body's Jacobian spectrum at it."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from gradkit.analysis import jacobian_spectra_along
from gradkit.checks import InputError
from gradkit.experiments.compare import Executor, Method, SpecFactory, runs_per_seed
from gradkit.experiments.runs import RunRecord, RunSpec, run_kind
from gradkit.init import MeanFieldPoint, critical_point, fixed_point, init_critical_
from gradkit.tasks import VanillaCNN, datasets
from gradkit.tasks.training import fit

Q_STAR = 0.01
"""The fixed point q* of the critical initialisations (the paper's range for tanh: 1e-3 to
1e-1)."""
INITS = {
    "delta-orthogonal": ("orthogonal", None),
    "gaussian": ("gaussian", None),
    "ordered": ("orthogonal", 0.5),
    "chaotic": ("orthogonal", 2.0),
}
"""Initialisation -> (weights, sigma_w^2): None is the critical sigma_w^2 for Q_STAR; every
init uses the critical sigma_b^2. ``ordered`` (chi_1 = 0.5) and ``chaotic`` (chi_1 = 1.11) are
delta-orthogonal off the critical line."""
CHANNELS = 8
BATCH = 64
MOMENTUM = 0.9


def init_point(init: str) -> MeanFieldPoint:
    """The mean-field point of an initialisation of :data:`INITS` (tanh)."""
    if init not in INITS:
        raise InputError(f"unknown init {init!r}; choose from {', '.join(INITS)}")
    critical = critical_point("tanh", Q_STAR)
    sigma_w2 = INITS[init][1]
    return critical if sigma_w2 is None else fixed_point("tanh", sigma_w2, critical.sigma_b2)


def vanilla_cnn(
    init: str, depth: int, seed: int, channels: int = CHANNELS, dtype=torch.float32
) -> VanillaCNN:
    """:class:`gradkit.tasks.VanillaCNN` for 1x8x8 digits, every layer initialised by ``init``
    (:func:`gradkit.init.init_critical_` at :func:`init_point`) from ``seed``."""
    point = init_point(init)
    model = VanillaCNN(depth, channels).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    init_critical_(model, "tanh", weights=INITS[init][0], generator=generator, point=point)
    return model


@run_kind
def deep_cnn_run(
    init: str,
    depth: int,
    seed: int,
    lr: float,
    epochs: int,
    channels: int = CHANNELS,
    evals_per_epoch: int = 1,
) -> RunRecord:
    """Train :func:`vanilla_cnn` (``init``, ``depth``, from ``seed``) on digits images with SGD
    (momentum MOMENTUM, batch BATCH, data order from ``seed``) at ``lr`` for ``epochs`` epochs,
    minimizing cross-entropy. Metrics: ``train_loss`` and ``train_accuracy`` on the whole
    training set, ``test_accuracy``; curves of each, evaluated ``evals_per_epoch`` times per
    epoch (0: at the start and end only)."""
    data = datasets.digits(images=True)
    model = vanilla_cnn(init, depth, seed, channels)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM)
    result = fit(
        model, data, opt, loss="cross_entropy", epochs=epochs, batch_size=BATCH, seed=seed,
        evals_per_epoch=evals_per_epoch,
    )  # fmt: skip
    names = ("train_loss", "train_accuracy", "test_accuracy")
    metrics = {name: float(result.evals[-1][name]) for name in names}
    curves = {name: [[float(e["epoch"]), float(e[name])] for e in result.evals] for name in names}
    return RunRecord(metrics, curves, result.diverged, result.seconds)


SPECTRUM_SAMPLES = 2
SPECTRUM_POINTS = 16


@run_kind
def init_spectrum_run(
    init: str, depth: int, seed: int, samples: int = SPECTRUM_SAMPLES, channels: int = CHANNELS
) -> RunRecord:
    """The spectrum at initialisation of the body's Jacobian (from the stem's output to the
    output after L blocks; channels x 8 x 8 square) of :func:`vanilla_cnn` in float64, on the
    first ``samples`` training images, at SPECTRUM_POINTS depths L up to ``depth``.

    Metrics at L = ``depth``: ``log_spread`` (std of log sigma, 0 at isometry),
    ``log_mean_square`` (log of mean sigma^2: 0 when signals neither grow nor shrink). Curves:
    both against L, and ``log10_sigma`` (every log10 sigma at L = ``depth``, against its rank).
    """
    started = time.perf_counter()
    model = vanilla_cnn(init, depth, seed, channels, torch.float64)
    with torch.no_grad():
        features = model.stem(datasets.digits(images=True).x_train[:samples].double())
    depths = sorted(
        {max(1, round(depth * (i + 1) / SPECTRUM_POINTS)) for i in range(SPECTRUM_POINTS)}
    )
    spectra = jacobian_spectra_along(model.body, features, depths)
    deepest = spectra[depth]
    tiny = torch.finfo(torch.float64).tiny
    metrics = {
        "log_spread": deepest.log_spread(),
        "log_mean_square": math.log(max(deepest.mean_square(), tiny)),
    }
    curves = {
        "log_spread": [[float(L), s.log_spread()] for L, s in spectra.items()],
        "log_mean_square": [
            [float(L), math.log(max(s.mean_square(), tiny))] for L, s in spectra.items()
        ],
        "log10_sigma": [
            [float(rank), float(v)]
            for rank, v in enumerate(deepest.values.clamp_min(tiny).log10().flatten().tolist())
        ],
    }
    return RunRecord(metrics, curves, False, time.perf_counter() - started)


def deep_cnn(depth: int) -> SpecFactory:
    """Runs of :func:`deep_cnn_run`: the vanilla tanh CNN of
    ``depth`` initialised by ``Method.optimizer`` (an init of
    :data:`INITS`), budgets in epochs. The metric is the training
    loss, so tuning runs train on the training set too; scored on their final evaluation
    alone, they evaluate only at their start and end."""

    def make(method: Method, lr: float, epochs: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            deep_cnn_run, init=method.runs, depth=depth, seed=seed, lr=lr, epochs=epochs,
            evals_per_epoch=0 if tuning else 1,
        )  # fmt: skip

    return make


def init_spectra(
    executor: Executor, inits: Sequence[str], depth: int, seeds: Sequence[int]
) -> dict[str, list[RunRecord]]:
    """:func:`init_spectrum_run` of every init at ``depth`` for
    every seed: ``records[init]``, one per seed."""
    return runs_per_seed(
        executor,
        inits,
        seeds,
        lambda i, s: RunSpec.of(init_spectrum_run, init=i, depth=depth, seed=s),
    )
