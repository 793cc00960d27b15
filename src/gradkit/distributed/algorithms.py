"""Distributed training algorithms as worker programs (see :mod:`gradkit.distributed.ops`).

Each program takes the :class:`~gradkit.distributed.worker.Worker` and keyword hyper-parameters,
and runs unchanged in the simulator and over torch.distributed. ``x_i`` is worker i's model,
``g_i`` a stochastic gradient on its shard, ``n`` the number of workers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch.optim.adam import adam

from gradkit.checks import InputError
from gradkit.distributed import compressed
from gradkit.distributed.compressed import corrupt
from gradkit.distributed.delays import DelayProfile
from gradkit.distributed.hyper import check_hyper
from gradkit.distributed.server import ParameterServer
from gradkit.distributed.topology import Topology, check_bipartite, is_active
from gradkit.distributed.worker import Worker
from gradkit.optim.prox import l1_prox
from gradkit.optim.schedules import Schedule

Program = Callable[..., Generator[Any, Any, None]]
SERVER_RANK = 0
"""In real runs the server state (EASGD's centre) lives on this rank, served by a thread."""
ServerFactory = Callable[[torch.Tensor, dict[str, Any], int], ParameterServer]
"""(start, hyper-parameters, the run's gradient budget) -> the run's parameter server."""


def additive_server(start: torch.Tensor, hyper: dict[str, Any], budget: int) -> ParameterServer:
    """s <- s + t on every push (EASGD's centre); its pushes are not the run's updates."""
    return ParameterServer(start, record=False)


def averaging_server(start: torch.Tensor, hyper: dict[str, Any], budget: int) -> ParameterServer:
    """s <- s + t on every push, each push one update (DAve-PG's x_bar)."""
    return ParameterServer(start)


def allreduce_sgd(
    worker: Worker,
    *,
    lr: float,
    momentum: float = 0.0,
    byzantine: int = 0,
    attack: Literal["invert", "random"] = "invert",
):
    """Synchronous data-parallel SGD: x <- x - lr * (1/n) sum_i g_i(x), all models identical.
    With one worker this is plain (momentum) SGD. ``byzantine`` workers send corrupted
    gradients (see :mod:`gradkit.distributed.compressed`)."""
    for _ in range(worker.steps):
        grad = yield worker.gradient()
        mean = yield worker.all_reduce(corrupt(worker, grad, byzantine, attack), "mean")
        worker.apply(mean, lr, momentum)


def allreduce_adam(
    worker: Worker,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
):
    """Synchronous data-parallel Adam: the mean gradient g = (1/n) sum_i g_i feeds one Adam
    update on every worker, m <- b1 m + (1-b1) g, v <- b2 v + (1-b2) g^2,
    x <- x - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps): torch's Adam, by its
    functional core."""
    m, v = torch.zeros_like(worker.x), torch.zeros_like(worker.x)
    step = torch.zeros((), dtype=torch.float32)
    for _ in range(worker.steps):
        grad = yield worker.gradient()
        mean = yield worker.all_reduce(grad, "mean")
        worker.update(
            lambda mean=mean: adam(
                [worker.x], [mean], [m], [v], [], [step], amsgrad=False, beta1=beta1,
                beta2=beta2, lr=lr, weight_decay=0.0, eps=eps, maximize=False,
            )
        )  # fmt: skip


def d_psgd(worker: Worker, *, lr: float, momentum: float = 0.0):
    """D-PSGD (Lian et al., NIPS 2017): x_i <- sum_j W_ij x_j - lr * g_i(x_i), with W the
    uniform weights over i and its graph neighbours (1/3 each on a ring). The gradient is taken
    at the pre-averaging x_i, so the exchange overlaps the computation."""
    for _ in range(worker.steps):
        grad, received = yield worker.gradient(), worker.exchange(worker.x, worker.neighbors)
        if received:
            total = worker.x.clone()
            for model in received.values():
                total.add_(model)
            worker.replace_model(total.div_(1 + len(received)))
        worker.apply(grad, lr, momentum)


def ad_psgd(worker: Worker, *, lr: float, momentum: float = 0.0):
    """AD-PSGD (Lian et al., ICML 2018): read x_i, compute g on it; meanwhile an active worker
    averages atomically with a random passive neighbour j, x_i, x_j <- (x_i + x_j)/2; then
    x_i <- x_i - lr * g (g may be stale). Passive workers never initiate, so the bipartite
    protocol cannot deadlock; they are averaged into while they compute."""
    while worker.keep_going():
        if worker.active and worker.neighbors:
            grad, _ = yield worker.gradient(), worker.average_with(worker.random_neighbor())
        else:
            grad = yield worker.gradient()
        worker.apply(grad, lr, momentum)


def easgd(
    worker: Worker, *, lr: float, momentum: float = 0.0, alpha: float | None = None, tau: int = 4
):
    """Asynchronous EASGD (Zhang, Choromanska, LeCun, NIPS 2015): local SGD steps, and every
    ``tau`` of them delta = alpha (x_i - c) with the centre c pulled from the server;
    x_i <- x_i - delta and the server applies c <- c + delta. ``alpha`` defaults to 0.9/n."""
    alpha = 0.9 / worker.world_size if alpha is None else alpha
    local_steps = 0
    while worker.keep_going():
        grad = yield worker.gradient()
        worker.apply(grad, lr, momentum)
        local_steps += 1
        if local_steps % tau == 0:
            centre = yield worker.pull()
            delta = (worker.x - centre).mul_(alpha)
            worker.replace_model(worker.x - delta)
            yield worker.push(delta)


def async_sgd(
    worker: Worker,
    *,
    lr: float,
    schedule: str = "constant",
    q: float = 1.0,
    delays: str = "none",
    l1: float = 0.0,
    l2: float = 0.0,
):
    """Asynchronous SGD with a parameter server (Zhou et al., ICML 2018): pull the server's
    model (under imposed ``delays``, the iterate x_(n - d_n) the next update reads), compute a
    gradient on it, push it; the server applies x <- x - alpha_n g at once at its n-th update,
    alpha_n the ``schedule`` (constant, polynomial n^-q, quasilinear) with first step ``lr``.
    The staleness of every applied gradient is in the trace (``server_staleness``). A worker
    holding the share pi_i of the data pushes its gradient times M pi_i (1 on equal shards),
    so that at equal rates the expected step follows the whole objective. With ``l1`` or
    ``l2`` it is the naive asynchronous proximal gradient DAve-PG is compared with: g includes
    l2 x_stale and the server applies x <- prox_(alpha_n l1 ||.||_1)(x - alpha_n g)."""
    while worker.keep_going():
        worker.replace_model((yield worker.pull()))
        grad = yield worker.gradient()
        yield worker.push((grad + l2 * worker.x) * (worker.share * worker.world_size))
        worker.record_update()


def sgd_server(start: torch.Tensor, hyper: dict[str, Any], budget: int) -> ParameterServer:
    """The server of :func:`async_sgd`: x <- prox(x - alpha_n g), imposed delays if asked."""
    steps = Schedule(hyper["schedule"], hyper["lr"], hyper["q"])
    delays = None if hyper["delays"] == "none" else DelayProfile.parse(hyper["delays"])
    l1 = hyper["l1"]
    prox = (lambda v, step: l1_prox(v, step, l1)) if l1 else None
    return ParameterServer(start, "sgd", steps, delays, budget, prox=prox)


def prox_gradient(worker: Worker, *, lr: float, l1: float = 0.0, l2: float = 0.0):
    """Synchronous proximal gradient: x <- prox_(lr l1 ||.||_1)(x - lr sum_i pi_i (g_i(x) +
    l2 x)), pi_i the workers' data shares (all models identical). With whole-shard batches
    and one worker it is full-batch proximal gradient."""
    for _ in range(worker.steps):
        grad = yield worker.gradient()
        total = yield worker.all_reduce((grad + l2 * worker.x) * worker.share, "sum")
        worker.apply(total, lr)
        worker.replace_model(l1_prox(worker.x, lr, l1))


def dave_pg(
    worker: Worker,
    *,
    lr: float,
    l1: float = 0.0,
    l2: float = 0.0,
    rounds: int = 1,
    prox: Callable[[torch.Tensor, float], torch.Tensor] | None = None,
    smoothness: float | None = None,
):
    """DAve-PG, and DAve-RPG for ``rounds`` > 1 (Mishchenko, Iutzeler, Malick & Amini, ICML
    2018): min sum_i pi_i f_i(x) + r(x), r = ``l1`` ||x||_1, f_i the worker's loss plus
    (``l2``/2)||x||^2, step gamma = ``lr``. Every x_i starts at x_bar = x^0. A worker holding
    x_bar repeats ``rounds`` times: z = prox_(gamma r)(x~), x_i+ = z - gamma grad f_i(z),
    x~ <- x~ + pi_i (x_i+ - x_i), x_i <- x_i+ (x~ starts at x_bar); then it pushes
    x~ - x_bar. The server adds every push on arrival, so x_bar = sum_i pi_i x_i after every
    message, and replies x_bar to that worker only. The run reports prox_(gamma r)(x_bar).
    ``grad f_i`` is the gradient on the worker's next mini-batch: a batch as large as the
    shard gives the full local gradient of the paper. ``prox(v, gamma)`` replaces the l1 prox
    by the user's regulariser (from Python). Given the smoothness L of the f_i, a step above
    2/(mu + L), mu = ``l2``, draws a warning: the guarantee holds up to it."""
    if worker.rank == 0 and smoothness is not None and lr > 2 / (l2 + smoothness):
        warnings.warn(
            f"dave-pg: lr {lr:g} is above 2/(mu + L) = {2 / (l2 + smoothness):g} (mu = l2 = "
            f"{l2:g}, L = {smoothness:g}); linear convergence is guaranteed only up to it",
            stacklevel=2,
        )
    x_bar = worker.x.clone()
    worker.iterate = x_bar.clone()
    while worker.keep_going():
        x_tilde = x_bar.clone()
        for round_ in range(rounds):
            if round_ and not worker.keep_going():
                break
            z = prox(x_tilde, lr) if prox is not None else l1_prox(x_tilde, lr, l1)
            worker.replace_model(z)
            grad = yield worker.gradient()
            updated = z - lr * (grad + l2 * z)
            x_tilde.add_(updated - worker.iterate, alpha=worker.share)
            worker.iterate = updated
        x_bar = yield worker.push(x_tilde - x_bar, reply=True)
        worker.record_update()


def prox_output(judged: torch.Tensor, hyper: dict[str, Any]) -> torch.Tensor:
    """prox_(gamma r)(x_bar): DAve-PG's output."""
    if hyper.get("prox") is not None:
        return hyper["prox"](judged, hyper["lr"])
    return l1_prox(judged, hyper["lr"], hyper["l1"])


@dataclass(frozen=True)
class Algorithm:
    """A registered program. ``synchronous`` programs take ``worker.steps`` steps; the others
    share a global budget. ``evaluates`` names the model judged: the mean of the workers' models
    or the server's state (EASGD's centre). ``needs_bipartite``: the graph must be bipartite.
    ``serves(rank)``: whether that rank answers requests from other ranks (passive averaging,
    the server) while it computes; real runs give such ranks a service thread. ``server``
    builds the run's parameter server (its push rule) from the start and the hyper-parameters;
    ``output`` maps the judged state to the reported model (DAve-PG: its prox)."""

    name: str
    program: Program
    description: str
    synchronous: bool
    evaluates: Literal["mean", "server"] = "mean"
    needs_bipartite: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    serves: Callable[[int], bool] = lambda rank: False
    server: ServerFactory = additive_server
    output: Callable[[torch.Tensor, dict[str, Any]], torch.Tensor] = lambda judged, hyper: judged

    def check(self, world_size: int, topology: Topology) -> None:
        if self.needs_bipartite and world_size > 1:
            check_bipartite(world_size, topology)


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm("allreduce", allreduce_sgd, "AllReduce SGD (synchronous data parallel)", True),
        Algorithm("allreduce-adam", allreduce_adam, "Adam on all-reduced gradients", True),
        Algorithm("dpsgd", d_psgd, "D-PSGD (synchronous gossip averaging)", True),
        Algorithm(
            "prox-grad",
            prox_gradient,
            "synchronous proximal gradient (l1 prox, share-weighted gradients)",
            True,
            defaults={"l1": 0.0, "l2": 0.0},
        ),
        Algorithm(
            "signum-vote",
            compressed.signum_majority_vote,
            "Signum with majority vote (1-bit signs each way)",
            True,
            defaults={"lr": 0.003},  # a sign step: ~100x below SGD's rates
        ),
        Algorithm("qsgd", compressed.qsgd_sgd, "QSGD-compressed SGD (no error feedback)", True),
        Algorithm("ecq", compressed.ecq_sgd, "ECQ-SGD (error-compensated quantization)", True),
        Algorithm("topk", compressed.topk_sgd, "top-k sparsified SGD with error feedback", True),
        Algorithm("dgc", compressed.dgc_sgd, "Deep Gradient Compression", True),
        Algorithm(
            "adpsgd",
            ad_psgd,
            "AD-PSGD (asynchronous pairwise gossip)",
            False,
            needs_bipartite=True,
            serves=lambda rank: not is_active(rank),
        ),
        Algorithm(
            "easgd",
            easgd,
            "asynchronous EASGD (elastic averaging with a centre)",
            False,
            "server",
            serves=lambda rank: rank == SERVER_RANK,
        ),
        Algorithm(
            "async-sgd",
            async_sgd,
            "asynchronous SGD with a parameter server (stale gradients, step schedules)",
            False,
            "server",
            defaults={"schedule": "constant", "q": 1.0, "delays": "none", "l1": 0.0, "l2": 0.0},
            serves=lambda rank: rank == SERVER_RANK,
            server=sgd_server,
        ),
        Algorithm(
            "dave-pg",
            dave_pg,
            "DAve-PG / DAve-RPG (the server averages iterates, not gradients)",
            False,
            "server",
            defaults={"l1": 0.0, "l2": 0.0, "rounds": 1, "prox": None, "smoothness": None},
            serves=lambda rank: rank == SERVER_RANK,
            server=averaging_server,
            output=prox_output,
        ),
    ]
}


def default_lr(algorithm: str | Algorithm) -> float:
    """The learning rate a run of ``algorithm`` uses when none is given: its own default
    (sign methods step in other units) or 0.1."""
    algorithm = get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
    return algorithm.defaults.get("lr", 0.1)


def get_algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise InputError(f"unknown algorithm {name!r}; choose from {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]


def resolve(algorithm: str | Algorithm, hyper: dict[str, Any]) -> tuple[Algorithm, dict[str, Any]]:
    """The algorithm and its hyper-parameters (its defaults overridden by ``hyper``), each
    checked (:func:`~gradkit.distributed.hyper.check_hyper`); the learning rate ``lr`` is
    required."""
    algorithm = get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
    if "lr" not in hyper and "lr" not in algorithm.defaults:
        raise InputError("the learning rate lr is required")
    resolved = {**algorithm.defaults, **hyper}
    check_hyper(algorithm.name, algorithm.program, resolved)
    return algorithm, resolved
