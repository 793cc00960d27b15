"""Adam's step against sign(m) sqrt(1 / (1 + eta^2)) while it trains, and the mini-batch
noise-to-signal ratio before and after (:func:`adam_sign_run`)."""

from __future__ import annotations

import time

import torch

from gradkit.analysis import gradient_noise_to_signal
from gradkit.experiments.runs import RunRecord, run_kind
from gradkit.tasks import fit, get_task, make_loss, seeded_model

TASK = "mnist1d-mlp"
LR = 1e-3
NOISE_BATCH = 100


@run_kind
def adam_sign_run(seed: int, epochs: int) -> RunRecord:
    """Train the mnist1d MLP (from ``seed``) with torch's Adam at LR for ``epochs`` epochs; after
    every step compare the actual parameter change with -lr sign(m) sqrt(1 / (1 + eta^2)),
    eta^2 = (v - m^2) / m^2, read from Adam's bias-corrected state, on the coordinates with
    sqrt(v) >= 1e-4 (there eps = 1e-8 changes the step by < 1e-4 lr).

    Metrics: ``worst_gap`` (largest |actual - predicted| in units of lr over every step),
    ``steps``, and the noise-to-signal summaries ``init:NAME`` / ``trained:NAME`` (batches of
    NOISE_BATCH, see :func:`gradkit.analysis.gradient_noise_to_signal`). Extra: ``factors``,
    sqrt(1 / (1 + eta^2)) of every reliable coordinate at the last step, and ``log10_ratio``
    ``{"init": [...], "trained": [...]}``, the finite positive eta^2 per coordinate.
    """
    started = time.perf_counter()
    task = get_task(TASK)
    data = task.load(seed)
    model = seeded_model(lambda: task.build_model(data, seed), seed)
    fresh = seeded_model(lambda: task.build_model(data, seed), seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    beta1, beta2 = opt.param_groups[0]["betas"]
    before: list[torch.Tensor] = []
    worst = 0.0
    factors: list[torch.Tensor] = []

    def snapshot(optimizer, args, kwargs):
        before[:] = [p.detach().double().clone() for p in model.parameters()]

    def compare(optimizer, args, kwargs):
        nonlocal worst
        last = []
        for p, old in zip(model.parameters(), before, strict=True):
            state = optimizer.state[p]
            t = state["step"].item()
            m = state["exp_avg"].double() / (1 - beta1**t)
            v = state["exp_avg_sq"].double() / (1 - beta2**t)
            reliable = v.sqrt() >= 1e-4
            eta2 = (v - m.square()) / m.square()
            factor = torch.sqrt(1 / (1 + eta2))
            predicted = -LR * torch.sign(m) * torch.where(m != 0, factor, 0.0)
            gap = ((p.detach().double() - old - predicted).abs() / LR)[reliable]
            if gap.numel():
                worst = max(worst, float(gap.max()))
            last.append(factor[reliable & (m != 0)])
        factors[:] = last

    opt.register_step_pre_hook(snapshot)
    opt.register_step_post_hook(compare)
    result = fit(
        model, data, opt, loss=task.loss, epochs=epochs, batch_size=task.batch_size, seed=seed
    )
    loss_fn = make_loss(task.loss)
    metrics = {"worst_gap": worst, "steps": float(len(result.step_losses))}
    extra: dict = {"factors": torch.cat(factors).tolist(), "log10_ratio": {}}
    for label, net in (("trained", model), ("init", fresh)):
        noise = gradient_noise_to_signal(
            net, loss_fn, data.x_train, data.y_train, NOISE_BATCH,
            generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip
        metrics |= {f"{label}:{k}": float(v) for k, v in noise.summary().items()}
        ratios = noise.flat_ratio()
        ratios = ratios[torch.isfinite(ratios) & (ratios > 0)]
        extra["log10_ratio"][label] = torch.log10(ratios).tolist()
    return RunRecord(metrics, {}, False, time.perf_counter() - started, extra)
