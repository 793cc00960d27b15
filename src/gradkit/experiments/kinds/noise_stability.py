"""Noise stability, cushions and compressibility of the digits MLP trained on true or random
labels, or untrained (:func:`noise_stability_run`), and those runs for every seed as outcomes
that can run more seeds (:func:`stability_outcomes`)."""

from __future__ import annotations

import dataclasses
import functools
import statistics
import time
from collections.abc import Sequence

import torch

from gradkit.analysis import layer_statistics, noise_stability, smallest_compression
from gradkit.checks import InputError
from gradkit.experiments.compare import Executor, Method, MethodOutcome
from gradkit.experiments.runs import RunRecord, RunSpec, run_kind
from gradkit.experiments.search import LrRange
from gradkit.tasks import datasets
from gradkit.tasks.models import MLP
from gradkit.tasks.training import fit

STABILITY_LABELS = ("true", "random", "init")


STABILITY_WIDTHS = (256, 256, 256, 256)


RANDOM_LABEL_SAMPLES = 500


STABILITY_LR = 1e-3
"""Adam's rate for every trained net (fixed, not searched: each net only has to fit its labels)."""


STABILITY_EPOCHS = {"true": (30, 60), "random": (150, 300), "init": (1, 1)}
"""(quick, full) epochs of each net of :func:`stability_outcomes`: enough for both trained nets
to fit their labels (smoke: 2)."""


@run_kind
def noise_stability_run(
    labels: str,
    seed: int,
    epochs: int,
    lr: float = 1e-3,
    relative: float = 0.1,
    tolerance: float = 0.01,
) -> RunRecord:
    """The digits MLP 64-256-256-256-256-10 (ReLU, He-normal weights, zero biases, from
    ``seed``) trained with Adam at ``lr`` for ``epochs`` epochs (batch 64) on the true labels
    (``true``), on the first RANDOM_LABEL_SAMPLES training samples with labels permuted from
    ``seed`` (``random``), or not trained (``init``); then probed on the held-out inputs.

    Metrics: ``train_accuracy`` (on the samples it trained on), ``attenuation`` (median r at the
    logits of noise ``relative`` x ||x|| injected at the first layer), ``svd_parameters`` (the
    effective parameter count of the smallest common SVD rank keeping train accuracy within
    ``tolerance``; if none does, the full count ``parameters``), ``cushion`` (mean over layers
    of the median layer cushion) and ``stable_rank`` (mean over hidden layers). Curves:
    ``attenuation`` (median r per layer), ``stable_rank`` per layer and ``compression``
    (effective parameters, train accuracy) over the ranks tried.
    """
    if labels not in STABILITY_LABELS:
        raise InputError(f"unknown labels {labels!r}; choose from {', '.join(STABILITY_LABELS)}")
    started = time.perf_counter()
    data = datasets.digits(images=False)
    if labels == "random":
        generator = torch.Generator().manual_seed(seed)
        keep = slice(0, RANDOM_LABEL_SAMPLES)
        shuffled = data.y_train[keep][torch.randperm(RANDOM_LABEL_SAMPLES, generator=generator)]
        data = dataclasses.replace(data, x_train=data.x_train[keep], y_train=shuffled)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MLP(64, STABILITY_WIDTHS, 10)
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                torch.nn.init.zeros_(layer.bias)
    if labels != "init":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        fit(model, data, opt, loss="cross_entropy", epochs=epochs, batch_size=64, seed=seed)
    model.eval()
    x_train, y_train = data.x_train, data.y_train

    def accuracy(m) -> float:
        with torch.no_grad():
            return float((m(x_train).argmax(1) == y_train).float().mean())

    probe = data.x_test
    noise = noise_stability(model, probe, at=0, relative=relative,
                            generator=torch.Generator().manual_seed(seed))  # fmt: skip
    medians = noise.median()
    stats = layer_statistics(model, probe)
    compressed = smallest_compression(model, accuracy, "svd", [2**i for i in range(9)], tolerance)
    parameters = compressed.effective_parameters or compressed.parameters
    metrics = {
        "train_accuracy": compressed.baseline,
        "attenuation": list(medians.values())[-1],
        "svd_parameters": float(parameters),
        "parameters": float(compressed.parameters),
        "cushion": statistics.fmean(statistics.median(s.cushion) for s in stats),
        "stable_rank": statistics.fmean(s.stable_rank for s in stats[:-1]),
    }
    curves = {
        "attenuation": [[float(i), r] for i, r in enumerate(medians.values())],
        "stable_rank": [[float(i), s.stable_rank] for i, s in enumerate(stats)],
        "compression": [[float(count), value] for _, count, value in compressed.curve],
    }
    return RunRecord(metrics, curves, False, time.perf_counter() - started)


def stability_epochs(net: str, scale: str) -> int:
    """Training epochs of net ("true", "random", "init") at ``scale``."""
    quick, full = STABILITY_EPOCHS[net]
    return {"smoke": min(2, quick), "quick": quick, "full": full}[scale]


def stability_spec(
    relative: float, method: Method, lr: float, budget: int, seed: int, tuning: bool = False
) -> RunSpec:
    """:func:`noise_stability_run` of the net ``method.name`` ("true", "random", "init") at
    ``lr`` for ``budget`` epochs, noise ``relative`` (a spec factory once ``relative`` is bound;
    ``tuning`` is unused: these nets are not tuned)."""
    return RunSpec.of(
        noise_stability_run,
        labels=method.name,
        seed=seed,
        epochs=budget,
        lr=lr,
        relative=relative,
    )


def stability_outcomes(
    executor: Executor,
    nets: dict[str, str],
    seeds: Sequence[int],
    scale: str,
    relative: float,
) -> dict[str, MethodOutcome]:
    """Each net of ``nets`` (name -> label) run with every seed at Adam's STABILITY_LR for its
    :func:`stability_epochs` at ``scale``, as an outcome at that fixed rate that can run more
    seeds (``RunContext.settle``). Claims probing the same nets with the same ``relative``
    share the (cached) runs."""
    make = functools.partial(stability_spec, relative)
    methods = [Method(n, label, LrRange(STABILITY_LR, STABILITY_LR)) for n, label in nets.items()]
    budgets = {m.name: stability_epochs(m.name, scale) for m in methods}
    specs = [make(m, STABILITY_LR, budgets[m.name], s) for m in methods for s in seeds]
    records = iter(executor.run(specs))  # every net's seeds in one batch, in parallel
    return {
        m.name: MethodOutcome.fixed(
            m, STABILITY_LR, [next(records) for _ in seeds], make, budgets[m.name]
        )
        for m in methods
    }
