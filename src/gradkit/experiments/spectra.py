"""Gradient-window spectra recorded while a task trains: a measurement run that claims share."""

from __future__ import annotations

import functools

from gradkit.analysis import GradientWindow, WindowSpectrum
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
