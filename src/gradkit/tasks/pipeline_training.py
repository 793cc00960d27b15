"""A registered task trained by DDG with one stage per process (under torchrun): the batches of
:func:`gradkit.tasks.training.fit`, each rank stepping its stage, the model gathered on rank 0
and evaluated at the start and at the end."""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

from gradkit.model_parallel import DistributedDDG, balanced_by
from gradkit.optim import build_optimizer
from gradkit.tasks.registry import Task, get_task
from gradkit.tasks.training import (
    StepCallback,
    TrainResult,
    ddg_name,
    evaluation_metrics,
    make_loss,
    seeded_model,
)


def train_pipeline_rank(
    task: Task | str,
    optimizer: str,
    *,
    lr: float | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    variant: str = "stash",
    balance: str = "parameters",
    timeout: float = 20.0,
    on_step: StepCallback | None = None,
) -> TrainResult | None:
    """This rank's part of DDG training ``task``'s model (an ``nn.Sequential``, one stage per
    rank, balanced by parameter count, or by layer times measured on rank 0 on the first batch
    with ``balance="time"``) with ``optimizer`` on every stage. Rank 0 returns the
    result (step losses from the last stage, evaluations of the whole model at the start and
    the end); the other ranks return None."""
    task = get_task(task) if isinstance(task, str) else task
    data = task.load(seed)
    model = seeded_model(lambda: task.build_model(data, seed), seed)
    epochs = task.epochs if epochs is None else epochs
    batch_size = min(task.batch_size if batch_size is None else batch_size, len(data.x_train))
    loss_fn = make_loss(task.loss)
    rank, last = dist.get_rank(), dist.get_world_size() - 1
    steps_per_epoch = len(data.x_train) // batch_size
    points = [balanced_by(model, last + 1, balance, data.x_train[:batch_size]) if rank == 0
              else None]  # fmt: skip
    dist.broadcast_object_list(points, src=0)  # measured times differ between ranks
    result = TrainResult(task.name, ddg_name(optimizer, variant, points[0]), lr, seed, epochs,
                         batch_size)  # fmt: skip
    if rank == 0:
        result.evals.append({"step": 0, "epoch": 0.0, **evaluation_metrics(model, data, loss_fn)})
    ddg = DistributedDDG(model, lambda p: build_optimizer(optimizer, p, lr), loss_fn,
                         split_points=points[0], variant=variant, timeout=timeout)  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    started, losses, step, total = time.perf_counter(), [], 0, epochs * steps_per_epoch
    for _ in range(epochs):
        order = torch.randperm(len(data.x_train), generator=generator)
        for start in range(0, steps_per_epoch * batch_size, batch_size):
            index = order[start : start + batch_size]
            loss = ddg.step(data.x_train[index], data.y_train[index])
            if rank == last:
                losses.append(loss)
            step += 1
            if on_step is not None:
                on_step(step, total)
    ddg.finish()
    stages = [None] * (last + 1)
    dist.all_gather_object(stages, {k: v.cpu() for k, v in ddg.module.state_dict().items()})
    gathered = [None] * (last + 1)
    dist.all_gather_object(gathered, losses)
    dist.barrier()  # no rank leaves (and closes its connections) while another still gathers
    if rank != 0:
        return None
    for part, state in zip(ddg.parts, stages, strict=True):
        part.load_state_dict(state)
    result.step_losses = gathered[last]
    result.evals.append({"step": total, "epoch": float(epochs),
                         **evaluation_metrics(model, data, loss_fn)})  # fmt: skip
    result.seconds = time.perf_counter() - started
    result.model = model
    return result
