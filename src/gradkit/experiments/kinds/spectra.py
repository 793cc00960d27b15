"""Gradient-window spectra recorded while a task trains: a measurement run that claims share."""

from __future__ import annotations

import functools
import time

import torch

from gradkit.analysis import GradientWindow, WindowSpectrum
from gradkit.experiments.runs import RunRecord, RunSpec, run_kind
from gradkit.optim import build_optimizer
from gradkit.tasks import get_task
from gradkit.tasks.training import fit, seeded_model


@functools.cache
def window_spectra(
    task: str, optimizer: str, lr: float, seed: int, size: int, windows: int
) -> list[WindowSpectrum]:
    """Train ``task`` with ``optimizer`` for ``windows`` x ``size`` steps and return the spectrum
    of each consecutive window of ``size`` mini-batch gradients (of all parameters together)."""
    spec = get_task(task)
    data = spec.load(seed)
    model = seeded_model(lambda: spec.build_model(data, seed), seed)
    recorder = GradientWindow(model.parameters(), size)
    spectra: list[WindowSpectrum] = []

    def on_step(step: int, total: int) -> None:
        recorder.record()  # the gradients of this step are still in .grad
        if step % size == 0:
            spectra.append(recorder.spectrum())
            recorder.clear()

    steps = windows * size
    opt = build_optimizer(optimizer, model.parameters(), lr)
    epochs = -(-steps * spec.batch_size // len(data.x_train))
    fit(
        model,
        data,
        opt,
        loss=spec.loss,
        epochs=max(1, epochs),
        batch_size=spec.batch_size,
        seed=seed,
        max_steps=steps,
        on_step=on_step,
    )
    return spectra


@run_kind
def window_spectra_run(
    task: str, optimizer: str, lr: float, seed: int, size: int, windows: int
) -> RunRecord:
    """:func:`window_spectra` as a run (cached, executed by the worker processes): curve
    ``singular_values:W`` holds window W's singular values against their index, metric
    ``gradients:W`` how many gradients it held."""
    started = time.perf_counter()
    spectra = window_spectra(task, optimizer, lr, seed, size, windows)
    curves = {
        f"singular_values:{w}": [[float(i), float(v)] for i, v in enumerate(s.singular_values)]
        for w, s in enumerate(spectra)
    }
    metrics = {"windows": float(len(spectra))}
    metrics |= {f"gradients:{w}": float(s.gradients) for w, s in enumerate(spectra)}
    return RunRecord(metrics, curves, False, time.perf_counter() - started)


def window_spectra_spec(
    task: str, optimizer: str, lr: float, seed: int, size: int, windows: int
) -> RunSpec:
    return RunSpec.of(
        window_spectra_run,
        task=task, optimizer=optimizer, lr=lr, seed=seed, size=size, windows=windows,
    )  # fmt: skip


def spectra_of(record: RunRecord) -> list[WindowSpectrum]:
    """The spectra a :func:`window_spectra_run` recorded."""
    return [
        WindowSpectrum(
            torch.tensor(record.curve(f"singular_values:{w}")[1], dtype=torch.float64),
            int(record.metrics[f"gradients:{w}"]),
        )
        for w in range(int(record.metrics["windows"]))
    ]
