"""The kinds of run claims declare, as functions of JSON parameters returning a RunRecord."""

from __future__ import annotations

import bisect
import dataclasses
import math
import statistics
import time

import torch
from torch.nn.utils import parameters_to_vector

from gradkit.analysis import layer_statistics, noise_stability, smallest_compression
from gradkit.distributed.compressed import (
    codec_seed,
    decode_mean,
    ecq_codec,
    encode,
    qsgd_codec,
)
from gradkit.experiments.runs import RunRecord
from gradkit.optim import (
    GGT,
    BatchSizeController,
    EndToEndGD,
    FullMatrixAdaGrad,
    PerturbedGD,
    ProgressiveBatchLBFGS,
    ProgressiveSampler,
    Shampoo,
    balanced_regressor,
    build_optimizer,
    per_sample_gradients,
)
from gradkit.sim import Cluster, ComputeModel, NetworkModel, simulate
from gradkit.tasks import convex, datasets, get_task, train
from gradkit.tasks.distributed import task_problem, with_suboptimality
from gradkit.tasks.logistic import logistic_problem
from gradkit.tasks.logistic import loss as logistic_loss
from gradkit.tasks.models import MLP
from gradkit.tasks.synthetic import NoisyQuadratic, lp_regression, quadratic_hessian
from gradkit.tasks.training import fit

VALIDATION_FRACTION = 0.2


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


CONVEX_OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adagrad": torch.optim.Adagrad,
    "shampoo": Shampoo,
    "ggt": GGT,
    "full-adagrad": FullMatrixAdaGrad,
}
CURVE_POINTS = 200


def convex_run(
    problem: str,
    seed: int,
    optimizer: str,
    lr: float,
    iterations: int,
    target_gap: float,
    options: dict | None = None,
    hyper: dict | None = None,
) -> RunRecord:
    """Minimise a convex problem of :data:`gradkit.tasks.convex.PROBLEMS` (built from ``seed``
    and ``options``) with ``iterations`` full-batch steps of ``optimizer`` (keyword arguments
    ``hyper``).

    Metrics: ``iterations_to_target`` (first t with f(x_t) <= f* + target_gap (f(x_0) - f*);
    iterations + 1 if never) and ``final_gap`` = (f(x_T) - f*) / (f(x_0) - f*). Curve:
    ``suboptimality`` f(x_t) - f* at up to 200 iterations.
    """
    instance = convex.PROBLEMS[problem](seed, **(options or {}))
    opt = CONVEX_OPTIMIZERS[optimizer](instance.params, lr=lr, **(hyper or {}))
    started = time.perf_counter()
    values = convex.full_batch_losses(instance, opt, iterations)
    seconds = time.perf_counter() - started
    initial_gap = values[0] - instance.optimum
    stride = max(1, len(values) // CURVE_POINTS)
    points = [*range(0, len(values), stride), len(values) - 1]
    curve = [[t, max(values[t] - instance.optimum, 0.0)] for t in sorted(set(points))]
    final = values[-1]
    return RunRecord(
        metrics={
            "iterations_to_target": float(
                convex.iterations_to_target(values, instance.optimum, target_gap)
            ),
            "final_gap": (final - instance.optimum) / initial_gap,
        },
        curves={"suboptimality": [c for c in curve if math.isfinite(c[1])]},
        diverged=not math.isfinite(final),
        seconds=seconds,
    )


def simulate_run(
    algorithm: str,
    task: str,
    workers: int,
    seed: int,
    lr: float,
    epochs: float,
    validation: bool = False,
    batch_size: int | None = None,
    evals_per_epoch: int = 2,
    slowdown: dict | None = None,
    jitter: float = 0.0,
    transfer_cost: float | None = None,
    sampling: str = "shards",
    suboptimality: bool = False,
    hyper: dict | None = None,
) -> RunRecord:
    """Simulate ``algorithm`` on ``workers`` workers training ``task`` (see
    :func:`gradkit.sim.simulate`).

    ``slowdown`` maps a worker (as a string or int) to its compute slowdown; ``transfer_cost``
    makes moving one model over a link cost that many gradient computations (the bandwidth is
    set from the model's size); ``sampling="whole"`` lets every worker draw from the whole
    training set; ``suboptimality`` adds the metric f(x) - f* of a convex task (see
    :func:`~gradkit.tasks.distributed.with_suboptimality`). Metrics: the final evaluation's
    (``train_loss``, ``test_accuracy``, ``consensus``, ...), ``duration`` (simulated time),
    ``total_bytes``, ``mean_staleness``, ``worker_steps``, ``parameters`` and the summed worker
    counters (``counter:NAME``). Curves: each metric against epochs, and ``NAME@time`` against
    simulated time.
    """
    held_out = VALIDATION_FRACTION if validation else None
    problem = task_problem(task, seed, batch_size, held_out, sampling)
    if suboptimality:
        problem = with_suboptimality(problem)
    compute = ComputeModel(
        jitter=jitter, slowdown={int(k): float(v) for k, v in (slowdown or {}).items()}
    )
    network = NetworkModel()
    if transfer_cost is not None:
        flat = problem.engine(0).flat
        network = NetworkModel(bandwidth=flat.numel() * flat.element_size() / transfer_cost)
    trace = simulate(
        algorithm,
        problem,
        Cluster(workers, compute, network),
        epochs=epochs,
        seed=seed,
        evals_per_epoch=evals_per_epoch,
        lr=lr,
        **(hyper or {}),
    )
    final = trace.evals[-1]
    names = [k for k in final if k not in ("time", "epoch")]
    metrics = {k: float(final[k]) for k in names}
    metrics.update(
        duration=float(trace.duration),
        total_bytes=float(trace.total_bytes),
        mean_staleness=float(trace.mean_staleness()),
        worker_steps=float(len(trace.steps)),
        parameters=float(trace.settings["parameters"]),
    )
    for counter in {name for c in trace.counters for name in c}:
        metrics[f"counter:{counter}"] = float(trace.counter(counter))
    curves = {k: [[float(e["epoch"]), float(e[k])] for e in trace.evals] for k in names}
    curves |= {f"{k}@time": [[float(e["time"]), float(e[k])] for e in trace.evals] for k in names}
    return RunRecord(metrics, curves, trace.diverged, trace.wall_seconds)


def quadratic_run(
    rotated: bool,
    noise: float,
    seed: int,
    optimizer: str,
    lr: float,
    steps: int,
    target_fraction: float,
    dim: int = 100,
    evals: int = 100,
) -> RunRecord:
    """Minimise the noisy quadratic f(x) = x'Hx/2 (Hessian eigenvalues log-spaced over
    [0.1, 10], axis-aligned or rotated, from ``seed``) with batch-1 stochastic gradients
    Hx + noise * xi, from x_0 ~ N(0, I) (drawn with ``seed``), for ``steps`` steps of a registered
    optimizer.

    Metrics: ``steps_to_target`` (first evaluated step with f(x) <= target_fraction * f(x_0);
    steps + 1 if never) and ``final_fraction`` = f(x_T) / f(x_0). Curve: ``objective`` f(x) at
    ``evals`` evenly spaced steps.
    """
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(dim, generator=generator)
    model = NoisyQuadratic(quadratic_hessian(dim, (0.1, 10.0), rotated, seed), noise, x0)
    opt = build_optimizer(optimizer, model.parameters(), lr)
    exact = torch.zeros(1, dim)

    def objective() -> float:
        with torch.no_grad():
            return float(model(exact))

    started = time.perf_counter()
    f0 = objective()
    curve, reached, every = [[0.0, f0]], steps + 1, max(1, steps // evals)
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        model(torch.randn(1, dim, generator=generator)).sum().backward()
        opt.step()
        if step % every == 0 or step == steps:
            value = objective()
            curve.append([float(step), value])
            if not math.isfinite(value):
                break
            if value <= target_fraction * f0 and reached > steps:
                reached = step
    final = curve[-1][1]
    return RunRecord(
        metrics={"steps_to_target": float(reached), "final_fraction": final / f0},
        curves={"objective": [c for c in curve if math.isfinite(c[1])]},
        diverged=not math.isfinite(final),
        seconds=time.perf_counter() - started,
    )


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


SGD_RECORDS_PER_EPOCH = 8
LOGISTIC_METHODS = ("pbqn", "lbfgs", "sgd", "sgd-growing")


def logistic_work_run(
    problem: str,
    seed: int,
    method: str,
    lr: float,
    epochs: int,
    target_gap: float,
    theta: float = 0.9,
    batch: int = 32,
) -> RunRecord:
    """Minimise an l2-regularised logistic regression of :mod:`gradkit.tasks.logistic` with
    ``method`` until it has evaluated ``epochs`` times n per-sample gradients:

    - ``pbqn``: first sample 1% of n (at least 16), ``theta``, memory 10, 25% overlap; no
      learning rate (``lr`` is ignored);
    - ``lbfgs``: the same on the full data with overlap 1, i.e. L-BFGS with Armijo backtracking;
    - ``sgd``: batches of ``batch`` at ``lr``, shuffled from ``seed``;
    - ``sgd-growing``: SGD at ``lr`` on fresh samples whose size a
      :class:`~gradkit.optim.BatchSizeController` (inner-product test along the gradient,
      ``theta``) grows from ``batch``.

    Metrics: ``final_gap`` = (F - F*) / (F0 - F*) at the budget, ``epochs_to_target`` (per-sample
    gradients / n until the gap is <= ``target_gap``; epochs + 1 if never), ``final_batch``.
    Curves: ``suboptimality`` F - F* against epochs of per-sample gradients; ``batch_size``
    (and for PBQN ``step_size``) per iteration.
    """
    if method not in LOGISTIC_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(LOGISTIC_METHODS)}")
    spec = logistic_problem(problem, seed)
    n = spec.samples
    model = spec.model()
    initial_gap = spec.objective(model) - spec.optimum
    points = [[0.0, initial_gap]]
    reached = float(epochs + 1)
    started = time.perf_counter()

    def record(done: int) -> float:
        nonlocal reached
        gap = spec.objective(model) - spec.optimum
        points.append([done / n, max(gap, 0.0)])
        if reached > epochs and gap <= target_gap * initial_gap:
            reached = done / n
        return gap

    if method in ("pbqn", "lbfgs"):
        gap, curves = _lbfgs_family(spec, model, method == "lbfgs", theta, seed, epochs, record)
    else:
        gap, curves = _sgd(spec, model, lr, batch, method == "sgd-growing", theta, seed, epochs,
                           record)  # fmt: skip
    curves["suboptimality"] = on_grid(points, epochs)
    metrics = {
        "final_gap": max(gap, 0.0) / initial_gap,
        "epochs_to_target": reached,
        "final_batch": curves["batch_size"][-1][1],
    }
    return RunRecord(metrics, curves, not math.isfinite(gap), time.perf_counter() - started)


def on_grid(points: list[list[float]], end: float) -> list[list[float]]:
    """A step curve (x ascending) sampled at CURVE_POINTS + 1 even points of [0, end] (the last
    value at or before each), so runs of different step counts align point by point."""
    xs = [x for x, _ in points]
    grid = [end * k / CURVE_POINTS for k in range(CURVE_POINTS + 1)]
    return [[x, points[max(0, bisect.bisect_right(xs, x) - 1)][1]] for x in grid]


def _lbfgs_family(spec, model, full: bool, theta: float, seed: int, epochs: int, record):
    n = spec.samples
    opt = ProgressiveBatchLBFGS(
        model, logistic_loss, spec.inputs, spec.targets,
        initial_batch=n if full else min(n, max(16, math.ceil(0.01 * n))), theta=theta,
        overlap=1.0 if full else 0.25, weight_decay=spec.l2, seed=seed,
    )  # fmt: skip
    gap = 1.0
    while opt.gradient_evaluations < epochs * n and math.isfinite(gap):
        opt.step()
        gap = record(opt.gradient_evaluations)
    curves = {
        "batch_size": [[i, float(b)] for i, b in enumerate(opt.batch_sizes, 1)],
        "step_size": [[i, a] for i, a in enumerate(opt.step_sizes, 1)],
    }
    return gap, curves


def _sgd(spec, model, lr: float, batch: int, growing: bool, theta, seed: int, epochs: int, record):
    """Plain SGD on batches of ``batch`` (a shuffled pass per epoch) or, ``growing``, on fresh
    samples of the controller's size: per-sample gradients of F (loss + l2), the test along
    their mean, a step along it."""
    n = spec.samples
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=lr, weight_decay=0.0 if growing else spec.l2)
    generator = torch.Generator().manual_seed(seed)
    controller = BatchSizeController(min(batch, n), n, theta=theta)
    sampler = ProgressiveSampler(n, overlap=0.0, generator=generator)

    def samples():
        while True:
            if growing:
                yield sampler.next(controller.size)
                continue
            order = torch.randperm(n, generator=generator)
            yield from (order[s : s + batch] for s in range(0, n - batch + 1, batch))

    every = max(1, n // (batch * SGD_RECORDS_PER_EPOCH))
    sizes: list[list[float]] = []
    done = steps = 0
    gap = 1.0
    for index in samples():
        opt.zero_grad(set_to_none=True)
        if growing:
            rows = per_sample_gradients(model, logistic_loss, spec.inputs[index],
                                        spec.targets[index])  # fmt: skip
            rows.add_(parameters_to_vector(params).detach(), alpha=spec.l2)
            controller.update(rows)
            for p, g in zip(params, rows.mean(0).split([p.numel() for p in params]), strict=True):
                p.grad = g.view_as(p)
        else:
            logistic_loss(model(spec.inputs[index]), spec.targets[index]).backward()
        opt.step()
        done, steps = done + len(index), steps + 1
        if growing or steps == 1:
            sizes.append([steps, float(len(index))])
        if steps % every == 0 or done >= epochs * n:
            gap = record(done)
        if done >= epochs * n or not math.isfinite(gap):
            break
    if not growing:
        sizes.append([steps, float(batch)])
    return gap, {"batch_size": sizes}


def saddle_escape_run(
    dimension: int,
    seed: int,
    method: str,
    lr: float,
    iterations: int,
    radius: float = 1e-3,
    threshold: float = 1e-3,
    interval: int = 10,
    drop: float = 0.1,
) -> RunRecord:
    """Gradient descent (``method`` "gd") or :class:`~gradkit.optim.PerturbedGD` ("pgd",
    perturbations drawn from ``seed``) started exactly at the strict saddle x = 0 of
    f(x) = 1/2 sum_i lambda_i x_i^2 + x_1^4 / 4 (lambda_1 = -1, lambda_i = 1 otherwise; minima
    at x_1 = +-1, f = -1/4), in float64.

    Metrics: ``escape_iteration``, the first iteration with f <= f(0) - ``drop`` (iterations + 1
    if never), and ``final_value``. Curve: ``objective`` f at up to CURVE_POINTS iterations.
    """
    if method not in ("gd", "pgd"):
        raise ValueError(f"unknown method {method!r}; choose from gd, pgd")
    x = torch.nn.Parameter(torch.zeros(dimension, dtype=torch.float64))
    curvature = torch.ones(dimension, dtype=torch.float64)
    curvature[0] = -1.0
    if method == "pgd":
        opt = PerturbedGD([x], lr, radius, threshold, interval, seed=seed)
    else:
        opt = torch.optim.SGD([x], lr=lr)

    def objective() -> torch.Tensor:
        return 0.5 * (curvature * x * x).sum() + 0.25 * x[0] ** 4

    started = time.perf_counter()
    escaped, every = iterations + 1, max(1, iterations // CURVE_POINTS)
    curve = [[0.0, 0.0]]
    for t in range(1, iterations + 1):
        opt.zero_grad(set_to_none=True)
        objective().backward()
        opt.step()
        value = float(objective().detach())
        if escaped > iterations and value <= -drop:
            escaped = t
        if t % every == 0 or t == iterations:
            curve.append([float(t), value])
    metrics = {"escape_iteration": float(escaped), "final_value": value}
    return RunRecord(metrics, {"objective": curve}, False, time.perf_counter() - started)


DEEP_LINEAR_METHODS = ("depth1", "depth2", "depth3", "e2e2", "e2e3", "adagrad")


def regression_data(problem: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) in float64 with the target standardized (so that one learning rate means the
    same on every instance): ``synthetic`` is :func:`gradkit.tasks.synthetic.lp_regression`
    (n 1000 with both splits, d 20, eigenvalues over [0.1, 10] in a random basis, noise 0.01,
    drawn from ``seed``), ``diabetes`` scikit-learn's (features standardized)."""
    if problem == "synthetic":
        data = lp_regression(1000, seed=seed)
        x = torch.cat([data.x_train, data.x_test]).double()
        y = torch.cat([data.y_train, data.y_test]).double()
    elif problem == "diabetes":
        from sklearn.datasets import load_diabetes

        features, target = load_diabetes(return_X_y=True)
        x, y = torch.from_numpy(features), torch.from_numpy(target)
        x = (x - x.mean(0)) / x.std(0)
    else:
        raise ValueError(f"unknown problem {problem!r}; choose from synthetic, diabetes")
    return x, (y - y.mean()) / y.std()


def deep_linear_run(
    problem: str,
    power: int,
    seed: int,
    method: str,
    lr: float,
    iterations: int,
    target_fraction: float = 1e-3,
) -> RunRecord:
    """Full-batch l_p regression L(w) = mean((x^T w - y)^p) / p from a near-zero balanced
    initialisation (w_1 ~ N(0, 1e-6 I) from ``seed``): gradient descent on a depth-N linear
    regressor (``depthN``, N - 1 extra scalars equal to ||w_1||), the end-to-end rule on its
    product (``e2eN``) or AdaGrad on w (``adagrad``), all at ``lr``.

    The run stops at the target. Metrics: ``iterations_to_target`` (first iteration with L <=
    target_fraction L(0); iterations + 1 if never) and ``final_fraction`` L / L(0) where it
    stopped. Curve: ``loss_fraction``.
    """
    if method not in DEEP_LINEAR_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(DEEP_LINEAR_METHODS)}")
    x, y = regression_data(problem, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    w1 = 1e-3 * torch.randn(x.shape[1], generator=generator, dtype=torch.float64)
    depth = int(method[-1]) if method != "adagrad" else 1
    if method.startswith("depth"):
        net = balanced_regressor(w1, depth)
        params, predict = list(net.parameters()), lambda: net(x).squeeze(-1)
        opt = torch.optim.SGD(params, lr=lr)
    else:
        w = torch.nn.Parameter(w1.clone() * float(w1.norm()) ** (depth - 1))
        params, predict = [w], lambda: x @ w
        opt = (
            EndToEndGD(params, lr, depth)
            if method.startswith("e2e")
            else torch.optim.Adagrad(params, lr=lr)
        )

    def loss() -> torch.Tensor:
        return (predict() - y).pow(power).mean() / power

    started = time.perf_counter()
    reached, every, curve, initial = iterations + 1, max(1, iterations // CURVE_POINTS), [], None
    for t in range(iterations + 1):  # the loss at iterate t, then the step to t + 1
        opt.zero_grad(set_to_none=True)
        current = loss()
        value = float(current.detach())
        initial = value if initial is None else initial
        if not math.isfinite(value):
            break
        if t % every == 0 or t == iterations:
            curve.append([float(t), value / initial])
        if value <= target_fraction * initial:
            reached = t
            curve.append([float(t), value / initial])
            break
        if t < iterations:
            current.backward()
            opt.step()
    diverged = not math.isfinite(value)
    metrics = {"iterations_to_target": float(reached), "final_fraction": value / initial}
    return RunRecord(metrics, {"loss_fraction": curve}, diverged, time.perf_counter() - started)


STABILITY_LABELS = ("true", "random", "init")
STABILITY_WIDTHS = (256, 256, 256, 256)
RANDOM_LABEL_SAMPLES = 500


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
        raise ValueError(f"unknown labels {labels!r}; choose from {', '.join(STABILITY_LABELS)}")
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
