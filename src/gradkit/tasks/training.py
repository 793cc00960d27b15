"""The one training loop used by ``gradkit train`` and by every claim.

Full-batch tensors in memory, a per-run ``torch.Generator`` for shuffling, evaluation of the whole
train and test sets at fixed step intervals, and divergence detection (a non-finite loss or
gradient ends the run and marks it diverged instead of raising).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from gradkit.checks import InputError
from gradkit.model_parallel import DDG, VARIANTS, LocalLosses, balanced_by
from gradkit.optim import NonFiniteGradientError, ProgressiveBatchLBFGS, build_optimizer
from gradkit.tasks.datasets import Dataset

OptimizerFactory = Callable[[list[nn.Parameter]], Optimizer]
PBQN = "pbqn"
"""The name ``train`` gives :class:`~gradkit.optim.ProgressiveBatchLBFGS`: it is handed the
training set (it draws its own samples, starting from the task's batch size) and runs for the
task's epochs counted in per-sample gradient evaluations."""
StepCallback = Callable[[int, int], None]


def lp_loss(p: float) -> Callable[[Tensor, Tensor], Tensor]:
    """The l_p regression loss (1/p) mean |prediction - y|^p."""
    return lambda out, y: (out.squeeze(-1) - y).abs().pow(p).mean() / p


def make_loss(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """Loss by name: ``cross_entropy``, ``mse``, ``l<p>`` such as ``l4`` (see :func:`lp_loss`),
    or ``objective`` (the model's output already is the per-sample loss)."""
    if name == "cross_entropy":
        return F.cross_entropy
    if name == "mse":
        return lambda out, y: F.mse_loss(out.squeeze(-1), y)
    if name == "objective":
        return lambda out, y: out.mean()
    if name.startswith("l") and name[1:].isdigit() and int(name[1:]) >= 1:
        return lp_loss(int(name[1:]))
    raise InputError(
        f"unknown loss {name!r}; choose from cross_entropy, mse, l<p> (p >= 1), objective"
    )


@dataclass
class TrainResult:
    """What one training run produced: per-step mini-batch losses and periodic evaluations."""

    task: str
    optimizer: str
    lr: float | None
    seed: int
    epochs: int
    batch_size: int
    step_losses: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    diverged: bool = False
    seconds: float = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)  # per step, if the optimizer has
    model: nn.Module | None = field(default=None, repr=False, compare=False)  # the trained model

    def final(self, metric: str) -> float:
        """The metric at the last evaluation (``inf`` loss / ``nan`` accuracy if diverged)."""
        return self.evals[-1][metric]

    def series(self, metric: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of ``metric`` over the evaluations."""
        return [e["epoch"] for e in self.evals], [e[metric] for e in self.evals]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model, as plain data."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.evals[0]))
            writer.writeheader()
            writer.writerows(self.evals)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: Tensor, y: Tensor, loss_fn, classification: bool, chunk: int = 2048
) -> tuple[float, float]:
    """(mean loss, accuracy) over a whole set; accuracy is NaN for non-classification tasks."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), chunk):
        out = model(x[start : start + chunk])
        target = y[start : start + chunk]
        total_loss += loss_fn(out, target).item() * len(target)
        if classification:
            correct += int((out.argmax(-1) == target).sum())
    model.train(was_training)
    loss = total_loss / len(x)
    return (loss if math.isfinite(loss) else math.inf), (
        correct / len(x) if classification else math.nan
    )


def evaluation_metrics(model: nn.Module, data: Dataset, loss_fn) -> dict[str, float]:
    """``train_loss`` and ``test_loss``, plus ``train_accuracy`` and ``test_accuracy`` for
    classification, over the whole sets."""
    classification = data.kind == "classification"
    train_loss, train_acc = evaluate(model, data.x_train, data.y_train, loss_fn, classification)
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test, loss_fn, classification)
    point = {"train_loss": train_loss, "test_loss": test_loss}
    if classification:
        point.update(train_accuracy=train_acc, test_accuracy=test_acc)
    return point


def _eval_point(model, data: Dataset, loss_fn, step: int, steps_per_epoch: int) -> dict[str, float]:
    return {
        "step": step,
        "epoch": step / steps_per_epoch,
        **evaluation_metrics(model, data, loss_fn),
    }


def fit(
    model: nn.Module,
    data: Dataset,
    optimizer: Optimizer,
    *,
    loss: str,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    evals_per_epoch: int = 1,
    max_steps: int | None = None,
    on_step: StepCallback | None = None,
    label: tuple[str, str, float | None] = ("model", "optimizer", None),
) -> TrainResult:
    """Train ``model`` on ``data`` with ``optimizer`` for ``epochs`` epochs (or ``max_steps``).

    Mini-batches are drawn without replacement from a permutation made by a generator seeded with
    ``seed`` (the last partial batch of an epoch is dropped). The train and test sets are
    evaluated at step 0, ``evals_per_epoch`` times per epoch (0: none in between) and at the
    end. ``on_step(step, total)`` is called after each step.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(evals_per_epoch, int) or evals_per_epoch < 0:
        raise InputError(f"evals_per_epoch must be an integer >= 0, got {evals_per_epoch!r}")
    n = len(data.x_train)
    batch_size = min(batch_size, n)
    steps_per_epoch = n // batch_size
    total = epochs * steps_per_epoch if max_steps is None else max_steps
    eval_interval = max(1, steps_per_epoch // evals_per_epoch) if evals_per_epoch else total + 1
    loss_fn = make_loss(loss)
    generator = torch.Generator().manual_seed(seed)
    result = TrainResult(label[0], label[1], label[2], seed, epochs, batch_size)
    started = time.perf_counter()
    result.evals.append(_eval_point(model, data, loss_fn, 0, steps_per_epoch))
    model.train()
    if isinstance(optimizer, ProgressiveBatchLBFGS):
        step, epoch = _fit_sampling_itself(
            model, data, optimizer, loss_fn, epochs, eval_interval, on_step, result
        )
    else:
        step = _fit_minibatches(
            model, data, optimizer, loss_fn, generator, batch_size, total, eval_interval,
            steps_per_epoch, on_step, result,
        )  # fmt: skip
        epoch = step / steps_per_epoch
    if result.diverged:
        point = {"step": step, "epoch": epoch, **evaluation_metrics(model, data, loss_fn)}
        point.update({k: math.inf for k in point if k.endswith("loss")})
        point.update({k: math.nan for k in point if k.endswith("accuracy")})
        result.evals.append(point)
    result.seconds = time.perf_counter() - started
    result.model = model
    return result


def _backprop_step(model, optimizer: Optimizer, loss_fn) -> Callable[[Tensor, Tensor], float]:
    """One optimizer step on a batch, returning its loss (not stepping on a non-finite one)."""

    def step(x: Tensor, y: Tensor) -> float:
        optimizer.zero_grad(set_to_none=True)
        batch_loss = loss_fn(model(x), y)
        value = batch_loss.item()
        if math.isfinite(value):
            batch_loss.backward()
            optimizer.step()
        return value

    return step


def _fit_minibatches(
    model, data, optimizer, loss_fn, generator, batch_size, total, eval_interval,
    steps_per_epoch, on_step, result,
) -> int:  # fmt: skip
    n = len(data.x_train)
    step = 0
    # DDG and local losses run their own forward and backward passes, stage by stage
    step_on = (
        optimizer.step
        if isinstance(optimizer, DDG | LocalLosses)
        else _backprop_step(model, optimizer, loss_fn)
    )
    while step < total and not result.diverged:
        order = torch.randperm(n, generator=generator)
        for start in range(0, steps_per_epoch * batch_size, batch_size):
            index = order[start : start + batch_size]
            try:
                value = step_on(data.x_train[index], data.y_train[index])
            except NonFiniteGradientError:
                result.diverged = True
                break
            if not math.isfinite(value):
                result.diverged = True
                break
            step += 1
            result.step_losses.append(value)
            if step % eval_interval == 0 or step == total:
                result.evals.append(_eval_point(model, data, loss_fn, step, steps_per_epoch))
            if on_step is not None:
                on_step(step, total)
            if step >= total:
                break
    return step


def _fit_sampling_itself(
    model, data, optimizer: ProgressiveBatchLBFGS, loss_fn, epochs, eval_interval, on_step, result
) -> tuple[int, float]:
    """An optimizer that draws its own samples (PBQN) runs until it has evaluated ``epochs``
    times n per-sample gradients; an evaluation every n / evals_per_epoch of them, its
    ``epoch`` being the gradient evaluations over n. Returns (iterations, epochs done)."""
    n = len(data.x_train)
    budget = epochs * n
    every = min(max(1, eval_interval * result.batch_size), budget)  # n / evals_per_epoch
    next_eval, step = every, 0
    while optimizer.gradient_evaluations < budget:
        try:
            value = optimizer.step()
        except NonFiniteGradientError:
            result.diverged = True
            break
        step += 1
        result.step_losses.append(value)
        done = optimizer.gradient_evaluations
        if done >= next_eval or done >= budget:
            point = {"step": step, "epoch": done / n, **evaluation_metrics(model, data, loss_fn)}
            result.evals.append(point)
            while next_eval <= done:
                next_eval += every
        if on_step is not None:
            on_step(min(done, budget), budget)
    result.history = {
        "batch_size": [float(b) for b in optimizer.batch_sizes],
        "step_size": list(optimizer.step_sizes),
        "gradient_evaluations": [float(optimizer.gradient_evaluations)],
    }
    return step, optimizer.gradient_evaluations / n


PBQN_OPTIONS = (
    "theta", "orthogonality", "nu", "overlap", "history", "curvature_eps", "damping", "c1",
    "shrink", "max_backtracks", "weight_decay", "per_sample",
)  # fmt: skip
"""The PBQN hyper-parameters ``train`` passes on (its sample, seed and data come from the task)."""


def check_pbqn_options(options: dict) -> dict:
    """``options`` if every key is a PBQN hyper-parameter and every value one it accepts:
    :class:`~gradkit.optim.ProgressiveBatchLBFGS` checks them on a two-sample probe problem, so
    a bad value fails before anything runs or is written."""
    unknown = sorted(set(options) - set(PBQN_OPTIONS))
    if unknown:
        raise InputError(
            f"pbqn has no hyper-parameter {unknown[0]!r}; choose from {', '.join(PBQN_OPTIONS)}"
        )
    probe = nn.Linear(1, 1)
    ProgressiveBatchLBFGS(probe, F.mse_loss, torch.zeros(2, 1), torch.zeros(2, 1), **options)
    return options


def seeded_model(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with torch's default initialisers seeded by ``seed``, leaving the global RNG
    as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


PIPELINE_VARIANTS = (*VARIANTS, "local")
"""How ``train(..., pipeline=K)`` trains the stages: DDG's variants, or local losses."""


def ddg_name(optimizer: str, variant: str, split_points: list[int]) -> str:
    """How a pipeline run is named in results: its optimizer, stages, variant and cuts."""
    cuts = f", cut before layers {', '.join(map(str, split_points))}" if split_points else ""
    stages = len(split_points) + 1
    method = f"local losses K={stages}" if variant == "local" else f"DDG K={stages} ({variant})"
    return f"{optimizer}, {method}{cuts}"


def train(
    task,
    optimizer: str | OptimizerFactory,
    *,
    lr: float | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    data: Dataset | None = None,
    evals_per_epoch: int = 1,
    max_steps: int | None = None,
    on_step: StepCallback | None = None,
    options: dict | None = None,
    pipeline: int | None = None,
    variant: str = "stash",
    balance: str = "parameters",
) -> TrainResult:
    """Train a registered task (a :class:`~gradkit.tasks.Task` or its name) with an optimizer.

    ``optimizer`` is a name from :data:`gradkit.optim.OPTIMIZERS` (built with ``lr``, or its
    default lr), ``"pbqn"`` (no lr; ``options`` sets its hyper-parameters, see
    :data:`PBQN_OPTIONS`) or a factory ``params -> Optimizer``. ``data`` overrides the task's
    dataset, e.g. with a validation split for tuning. The model is initialised from ``seed``.
    ``pipeline`` = K trains the model (an ``nn.Sequential``) by DDG on K stages, one optimizer
    per stage, in ``variant`` (see :class:`gradkit.model_parallel.DDG`), or with ``variant="local"``
    by local losses (:class:`gradkit.model_parallel.LocalLosses`, default heads sized on the first
    batch and initialised from ``seed``); the stages are balanced by parameter count or by the
    time each layer takes on the first batch (``balance="time"``).
    """
    if variant not in PIPELINE_VARIANTS:
        raise InputError(f"unknown variant {variant!r}; choose from {', '.join(PIPELINE_VARIANTS)}")
    from gradkit.tasks.registry import get_task

    task = get_task(task) if isinstance(task, str) else task
    data = task.load(seed) if data is None else data
    model = seeded_model(lambda: task.build_model(data, seed), seed)
    epochs = task.epochs if epochs is None else epochs
    batch_size = task.batch_size if batch_size is None else batch_size
    if options and optimizer != PBQN:
        raise InputError(f"options are PBQN's hyper-parameters; {optimizer!r} takes only lr")
    if optimizer == PBQN:
        if pipeline is not None:
            raise InputError("pbqn cannot train a pipeline: DDG steps each stage on its own")
        if lr is not None:
            raise InputError("pbqn takes no learning rate: its steps come from its line search")
        name = PBQN
        opt = ProgressiveBatchLBFGS(
            model,
            make_loss(task.loss),
            data.x_train,
            data.y_train,
            initial_batch=max(2, min(batch_size, len(data.x_train))),
            seed=seed,
            **check_pbqn_options(options or {}),
        )
    else:
        if isinstance(optimizer, str):
            name, factory = optimizer, lambda params: build_optimizer(optimizer, params, lr)
        else:
            name, factory = getattr(optimizer, "__name__", type(optimizer).__name__), optimizer
        if pipeline is None:
            opt = factory(list(model.parameters()))
        else:
            example = data.x_train[:batch_size]
            points = balanced_by(model, pipeline, balance, example)
            if variant == "local":  # the default heads are initialised from the seed too
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    opt = LocalLosses(model, lambda p: factory(list(p)), make_loss(task.loss),
                                      split_points=points, example=example)  # fmt: skip
            else:
                opt = DDG(model, lambda p: factory(list(p)), make_loss(task.loss),
                          split_points=points, variant=variant)  # fmt: skip
            name = ddg_name(name, variant, points)
    return fit(
        model,
        data,
        opt,
        loss=task.loss,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        evals_per_epoch=evals_per_epoch,
        max_steps=max_steps,
        on_step=on_step,
        label=(task.name, name, None if name == PBQN else _first_lr(opt)),
    )


def _first_lr(optimizer: Optimizer | DDG | LocalLosses) -> float:
    if isinstance(optimizer, DDG):
        first = optimizer.stages[0].optimizer
    elif isinstance(optimizer, LocalLosses):
        first = optimizer.optimizers[0]
    else:
        first = optimizer
    return first.param_groups[0]["lr"]
