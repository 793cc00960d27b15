"""Training runs of a registered task: one seed (:func:`train_task`), or several seeds as one
batched model (:func:`train_task_seeds`); :func:`training` builds the claims' specs of both.

Batched seeds (``torch.func`` + ``vmap``): K models of the same architecture (initialised from K
seeds) are stacked parameter by parameter into tensors of shape ``(K, ...)``; one ``vmap`` of
``functional_call`` gives the K mini-batch losses, each model on its own mini-batch (drawn from
its own seed's order, exactly as :func:`gradkit.tasks.fit` draws it). An elementwise optimizer
applied to the stacked tensors is the K optimizers side by side, so the K trajectories are those
of K separate runs up to float rounding (batched matrix products sum in another order). It saves
the per-step Python and optimizer overhead K - 1 times, which dominates for the small models of
the claims.

Only elementwise optimizers qualify (their update of an entry depends on that entry alone):
Shampoo, GGT and full-matrix AdaGrad couple entries and are refused. A model torch.func cannot
batch (``nn.GRU`` has no batching rule) trains seed by seed instead, with the same records.

Measured on the 2-core CPU (one thread, 3 seeds x 3 epochs): 1.08x faster than three separate
runs for the mnist1d MLP, 1.13x for the digits CNN, so the claims leave it off
(``training(task, batch_seeds=False)``, the default); on a GPU the K models fill one kernel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
from torch.func import functional_call

from gradkit.checks import InputError
from gradkit.experiments.compare import BatchedRuns, Method
from gradkit.experiments.runs import RunRecord, RunSpec, run_kind
from gradkit.optim import OPTIMIZERS, build_optimizer, optimizer_spec
from gradkit.tasks import get_task, make_loss, seeded_model, train
from gradkit.tasks.training import evaluation_metrics

VALIDATION_FRACTION = 0.2


@run_kind
def train_task(
    task: str,
    optimizer: str,
    lr: float | None,
    seed: int,
    epochs: int,
    validation: bool = False,
    evals_per_epoch: int = 1,
    pipeline: int | None = None,
    variant: str = "stash",
) -> RunRecord:
    """Train a registered task with a registered optimizer at ``lr`` (None for one without a
    learning rate, PBQN) from ``seed``, on ``pipeline`` stages if given (by DDG in ``variant``,
    or by local losses with ``variant="local"``). An optimizer's
    per-iteration history (PBQN's batch and step sizes) becomes curves against the iteration.

    With ``validation`` the task's training set is split (``VALIDATION_FRACTION`` held out,
    split drawn from ``seed``) and the held-out part is what the record calls ``test_*``: the
    tuning runs never see the test set.
    """
    spec = get_task(task)
    data = spec.load(seed)
    if validation:
        data = data.validation_split(VALIDATION_FRACTION, seed)
    result = train(
        spec,
        optimizer,
        lr=lr,
        epochs=epochs,
        seed=seed,
        data=data,
        evals_per_epoch=evals_per_epoch,
        pipeline=pipeline,
        variant=variant,
    )
    final = result.evals[-1]
    metrics = {k: float(v) for k, v in final.items() if k not in ("epoch", "step")}
    curves = {name: [[float(e["epoch"]), float(e[name])] for e in result.evals] for name in metrics}
    for name in ("batch_size", "step_size"):
        if name in result.history:
            curves[name] = [[float(i), v] for i, v in enumerate(result.history[name], 1)]
    return RunRecord(metrics, curves, result.diverged, result.seconds)


@run_kind
def train_task_seeds(
    task: str,
    optimizer: str,
    lr: float,
    seeds: list[int],
    epochs: int,
    validation: bool = False,
    evals_per_epoch: int = 1,
) -> RunRecord:
    """:func:`train_task` for every seed of ``seeds`` at once.

    Returns one record whose ``extra["runs"]`` holds the per-seed records (as JSON), in order.
    """
    if not optimizer_spec(optimizer).elementwise:
        elementwise = ", ".join(name for name, o in OPTIMIZERS.items() if o.elementwise)
        raise InputError(
            f"batched seeds need an elementwise optimizer ({elementwise}), got {optimizer!r}"
        )
    started = time.perf_counter()
    spec = get_task(task)
    datasets = []
    for seed in seeds:
        data = spec.load(seed)
        datasets.append(data.validation_split(VALIDATION_FRACTION, seed) if validation else data)
    models = [
        seeded_model(lambda d=d, s=s: spec.build_model(d, s), s)
        for d, s in zip(datasets, seeds, strict=True)
    ]
    base = models[0]
    names = [name for name, _ in base.named_parameters()]
    stacked = {
        name: torch.nn.Parameter(
            torch.stack([dict(m.named_parameters())[name].detach() for m in models])
        )
        for name in names
    }
    buffers = {
        name: torch.stack([dict(m.named_buffers())[name] for m in models])
        for name, _ in base.named_buffers()
    }
    opt = build_optimizer(optimizer, list(stacked.values()), lr)
    if "check_finite" in opt.defaults:
        for group in opt.param_groups:
            group["check_finite"] = False  # one diverging seed must not stop the others
    loss_fn = make_loss(spec.loss)

    def one_loss(params, bufs, x, y):
        return loss_fn(functional_call(base, (params, bufs), (x,)), y)

    batched_loss = torch.vmap(one_loss)
    if not _vmappable(batched_loss, stacked, buffers, datasets, spec.batch_size):
        runs = [
            train_task(task, optimizer, lr, seed, epochs, validation, evals_per_epoch).to_json()
            for seed in seeds
        ]
        return RunRecord({}, seconds=time.perf_counter() - started, extra={"runs": runs})
    n = len(datasets[0].x_train)
    batch_size = min(spec.batch_size, n)
    steps_per_epoch = n // batch_size
    total = epochs * steps_per_epoch
    eval_interval = max(1, steps_per_epoch // evals_per_epoch)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    evals: list[list[dict[str, float]]] = [[] for _ in seeds]
    diverged = [False] * len(seeds)

    def evaluate(step: int) -> None:
        with torch.no_grad():
            for k, (model, data) in enumerate(zip(models, datasets, strict=True)):
                for name, p in model.named_parameters():
                    p.copy_(stacked[name][k])
                point = {"step": step, "epoch": step / steps_per_epoch}
                point.update(evaluation_metrics(model, data, loss_fn))
                if diverged[k]:
                    point.update({m: math.inf for m in point if m.endswith("loss")})
                    point.update({m: math.nan for m in point if m.endswith("accuracy")})
                evals[k].append(point)

    evaluate(0)
    step = 0
    while step < total:
        orders = [torch.randperm(n, generator=g) for g in generators]
        for start in range(0, steps_per_epoch * batch_size, batch_size):
            index = [order[start : start + batch_size] for order in orders]
            x = torch.stack([d.x_train[i] for d, i in zip(datasets, index, strict=True)])
            y = torch.stack([d.y_train[i] for d, i in zip(datasets, index, strict=True)])
            opt.zero_grad(set_to_none=True)
            losses = batched_loss(stacked, buffers, x, y)
            finite = torch.isfinite(losses)
            for k in torch.nonzero(~finite).flatten().tolist():
                diverged[k] = True
            torch.where(finite, losses, torch.zeros_like(losses)).sum().backward()
            with torch.no_grad():
                for p in stacked.values():  # a diverged seed stays where it diverged
                    p.grad[~finite] = 0
            opt.step()
            step += 1
            if step % eval_interval == 0 or step == total:
                evaluate(step)
            if step >= total:
                break
    seconds = time.perf_counter() - started
    runs = []
    for k in range(len(seeds)):
        final = evals[k][-1]
        metrics = {m: float(v) for m, v in final.items() if m not in ("epoch", "step")}
        curves = {m: [[float(e["epoch"]), float(e[m])] for e in evals[k]] for m in metrics}
        runs.append(RunRecord(metrics, curves, diverged[k], seconds / len(seeds)).to_json())
    return RunRecord({}, diverged=all(diverged), seconds=seconds, extra={"runs": runs})


def _vmappable(batched_loss, stacked, buffers, datasets, batch_size: int) -> bool:
    """Whether torch.func can batch the model (it cannot batch ``nn.GRU``, for one)."""
    x = torch.stack([d.x_train[:batch_size] for d in datasets])
    y = torch.stack([d.y_train[:batch_size] for d in datasets])
    try:
        with torch.no_grad():
            batched_loss(stacked, buffers, x, y)
    except RuntimeError as error:
        if "atching rule" in str(error):
            return False
        raise
    return True


def training(task: str, evals_per_epoch: int = 1, batch_seeds: bool = False) -> BatchedRuns:
    """Runs of the registered training ``task``: tuning runs use a validation split and, scored
    on their final evaluation alone, evaluate only at their start and end;
    ``Method.hyper`` adds the kind's options (``pipeline``, ``variant``). With ``batch_seeds``
    (off by default: see the module's docstring for why), the evaluation seeds of a method with
    an elementwise optimizer train as one batched model, one run for all seeds."""

    def each(method: Method, lr: float, epochs: int, seed: int, tuning: bool) -> RunSpec:
        return RunSpec.of(
            train_task, task=task, optimizer=method.runs, lr=lr, seed=seed, epochs=epochs,
            validation=tuning, evals_per_epoch=0 if tuning else evals_per_epoch,
            **dict(method.hyper),
        )  # fmt: skip

    def batched(method: Method, lr: float, epochs: int, seeds: Sequence[int]) -> RunSpec | None:
        if not batch_seeds or not optimizer_spec(method.runs).elementwise or len(seeds) < 2:
            return None
        return RunSpec.of(
            train_task_seeds, task=task, optimizer=method.runs, lr=lr, seeds=list(seeds),
            epochs=epochs, evals_per_epoch=evals_per_epoch,
        )  # fmt: skip

    return BatchedRuns(each, batched)
