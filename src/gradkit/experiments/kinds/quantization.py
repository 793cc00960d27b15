"""A quantizer's accumulated error measured on one worker's stream of gradients
(:func:`quantization_error_run`)."""

from __future__ import annotations

import time

import torch

from gradkit.distributed.compressed import (
    codec_seed,
    decode_mean,
    ecq_codec,
    encode,
    qsgd_codec,
)
from gradkit.experiments.runs import RunRecord, run_kind
from gradkit.tasks.distributed import task_problem


@run_kind
def quantization_error_run(
    task: str,
    seed: int,
    lr: float,
    steps: int,
    batch_size: int,
    levels: int = 1,
    bucket_size: int = 512,
    ecq: dict[str, list[float]] | None = None,
    points: int = 50,
) -> RunRecord:
    r"""The quantizer's accumulated error, measured directly on one stream of gradients.

    One worker runs plain SGD (``lr``, mini-batches of ``batch_size`` from the whole training
    set, model from ``seed``) for ``steps`` steps. Each gradient g_t, per parameter tensor as the
    compressed programs cut it, goes through the max-norm quantizer without compensation
    (``plain``) and through ECQ with each ``ecq[name] = (alpha, beta)``; each keeps
    E_t = sum_{s <= t} (\hat g_s - g_s), the displacement (in units of lr) its messages would
    add to SGD's iterate after t steps. Without compensation E_t is a random walk (growing like
    sqrt t); with alpha = beta = 1, E_t = -h_t, bounded by one step's quantization error.

    Metrics: ``error:NAME`` = ||E_T|| and ``relative_error:NAME`` = ||E_T|| / ||sum_s g_s||.
    Curves: ``error:NAME`` and ``gradient_sum`` (||sum_{s <= t} g_s||) against t.
    """
    problem = task_problem(task, seed, batch_size)
    engine = problem.engine(seed)
    shard = problem.shard(torch.arange(problem.num_samples), 0, seed)
    sizes = engine.param_sizes
    codecs = {"plain": qsgd_codec(levels, bucket_size, "max")}
    codecs |= {name: ecq_codec(levels, bucket_size, a, b) for name, (a, b) in (ecq or {}).items()}
    quantizers = {
        name: [make(codec_seed(seed, 0, i)) for i in range(len(sizes))]
        for name, make in codecs.items()
    }
    errors = {name: torch.zeros(engine.numel, dtype=torch.float64) for name in codecs}
    gradient_sum = torch.zeros(engine.numel, dtype=torch.float64)
    curves: dict[str, list[list[float]]] = {f"error:{n}": [] for n in codecs} | {"gradient_sum": []}
    every = max(1, steps // points)
    started = time.perf_counter()
    x = engine.flat.clone()
    for step in range(1, steps + 1):
        grad, _ = engine.gradient(x, *shard.next_batch())
        wide = grad.double()
        gradient_sum += wide
        for name, per_tensor in quantizers.items():
            sent = [  # what the receivers decode from this worker's messages
                decode_mean(q, [encode(q, part)])
                for q, part in zip(per_tensor, torch.split(grad, sizes), strict=True)
            ]
            errors[name] += torch.cat(sent).double() - wide
        x.sub_(grad, alpha=lr)
        if step % every == 0 or step == steps:
            for name, error in errors.items():
                curves[f"error:{name}"].append([float(step), float(error.norm())])
            curves["gradient_sum"].append([float(step), float(gradient_sum.norm())])
    total = float(gradient_sum.norm())
    metrics = {f"error:{n}": float(e.norm()) for n, e in errors.items()}
    metrics |= {f"relative_error:{n}": float(e.norm()) / total for n, e in errors.items()}
    return RunRecord(metrics, curves, False, time.perf_counter() - started)
