"""Compressed data-parallel algorithms as worker programs, and Byzantine workers.

A Byzantine worker (the last ``byzantine`` ranks) corrupts what it sends: ``attack="invert"``
negates its gradient (its signs, for sign methods), ``attack="random"`` sends random values
(random signs) of the same scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from gradkit.compress import (
    DGC,
    QSGD,
    ErrorFeedback,
    Payload,
    TopK,
    majority_vote,
    pack_signs,
    unpack_signs,
)
from gradkit.distributed.worker import Worker

Attack = Literal["invert", "random"]
ATTACKS = ("invert", "random")


def is_byzantine(worker: Worker, byzantine: int) -> bool:
    if not isinstance(byzantine, int) or not 0 <= byzantine <= worker.world_size:
        raise ValueError(
            f"byzantine must be an integer in [0, {worker.world_size}], got {byzantine!r}"
        )
    return worker.rank >= worker.world_size - byzantine


def corrupt(worker: Worker, t: Tensor, byzantine: int, attack: Attack) -> Tensor:
    """What worker sends instead of ``t`` if it is Byzantine (else ``t``)."""
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; choose from {', '.join(ATTACKS)}")
    if not is_byzantine(worker, byzantine):
        return t
    if attack == "invert":
        return -t
    noise = torch.randn(t.shape, generator=worker.rng, dtype=t.dtype)
    return noise * (torch.linalg.vector_norm(t) / math.sqrt(t.numel()))


def signum_majority_vote(
    worker: Worker,
    *,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    byzantine: int = 0,
    attack: Attack = "invert",
):
    r"""Signum with majority vote (Bernstein et al., ICLR 2019), as a parameter-server vote.

    Each worker keeps m <- beta m + (1 - beta) g and sends sign(m) packed 1 bit per coordinate
    (sign(0) = +1); V = sign(sum_m sign(m_m)) with ties to +1; every worker applies
    x <- x - lr (V + lambda x) (weight decay after the vote, as in the authors' code).

    Wire: the packed code is cut into n equal chunks; an all-to-all gives worker j every
    worker's chunk j, which it votes on; an all-gather of the packed votes returns V to all.
    Each worker sends about d/8 bytes up and d/8 bytes down per step, 32x less each way than
    32-bit floats (plus padding to a multiple of 8n bits).
    """
    n, d = worker.world_size, worker.x.numel()
    chunk = math.ceil(math.ceil(d / 8) / n)
    m = torch.zeros_like(worker.x)
    for _ in range(worker.steps):
        grad = yield worker.gradient()
        m.mul_(momentum).add_(grad, alpha=1 - momentum)
        packed = pack_signs(corrupt(worker, m, byzantine, attack))
        worker.count("payload_bits", d)  # one sign per coordinate up (and one vote down)
        padded = torch.cat([packed, packed.new_zeros(n * chunk - packed.numel())])
        columns = yield worker.all_to_all(padded.view(n, chunk))
        vote = majority_vote(list(columns), 8 * chunk)
        votes = yield worker.all_gather(pack_signs(vote))
        direction = unpack_signs(torch.cat(votes), d, worker.x.dtype)
        if weight_decay:
            direction.add_(worker.x, alpha=weight_decay)
        worker.apply(direction, lr)


def gather_payloads(worker: Worker, payload: Payload):
    """Every worker's payload (a sub-program: ``payloads = yield from gather_payloads(...)``).
    Variable-size tensors (sparse values and indices) are padded to the largest count after an
    all-gather of the counts."""
    n = worker.world_size
    gathered: list[dict[str, Tensor]] = [{} for _ in range(n)]
    sizes = None
    if "indices" in payload.tensors:
        count = torch.tensor([payload.tensors["indices"].numel()])
        sizes = [int(c) for c in (yield worker.all_gather(count))]
    for name, tensor in payload.tensors.items():
        if sizes is not None and name in ("values", "indices"):
            padded = torch.cat([tensor, tensor.new_zeros(max(sizes) - tensor.numel())])
            parts = yield worker.all_gather(padded)
            parts = [p[:size] for p, size in zip(parts, sizes, strict=True)]
        else:
            parts = yield worker.all_gather(tensor)
        for rank, part in enumerate(parts):
            gathered[rank][name] = part
    return [Payload(t, 0, payload.shape, payload.dtype) for t in gathered]


def compressed_sgd(
    worker: Worker,
    *,
    lr: float,
    make_codec: Callable[[int], Any],
    momentum: float = 0.0,
    byzantine: int = 0,
    attack: Attack = "invert",
):
    r"""Data-parallel SGD on compressed gradients: every worker sends C(g) (``make_codec(rank)``
    builds its compressor, possibly wrapped in :class:`~gradkit.compress.ErrorFeedback`, or a
    DGC), all payloads are gathered, and each worker applies
    x <- x - lr * u, u <- momentum u + (1/n) sum_m decompress(payload_m).
    """
    codec = make_codec(worker.rank)
    decoder = codec.compressor if isinstance(codec, ErrorFeedback) else codec
    for _ in range(worker.steps):
        grad = yield worker.gradient()
        grad = corrupt(worker, grad, byzantine, attack)
        payload = codec.compress(grad)
        if isinstance(codec, ErrorFeedback):
            payload = payload[0]
        worker.count("payload_bits", payload.bits)
        payloads = yield from gather_payloads(worker, payload)
        mean = decoder.decompress(payloads[0]).clone()
        for other in payloads[1:]:
            mean.add_(decoder.decompress(other))
        worker.apply(mean.div_(worker.world_size), lr, momentum)


def _seed(worker: Worker) -> int:
    """A seed for a worker's compressor, drawn from the worker's own generator."""
    return int(torch.randint(2**62, (), generator=worker.rng))


def qsgd_sgd(
    worker: Worker,
    *,
    lr: float,
    levels: int = 3,
    bucket_size: int = 512,
    norm: Literal["l2", "max"] = "l2",
    momentum: float = 0.0,
    byzantine: int = 0,
    attack: Attack = "invert",
):
    """QSGD (``levels`` levels of the bucket's l2 norm, or of its max with ``norm="max"``),
    no error feedback."""
    yield from compressed_sgd(
        worker,
        lr=lr,
        make_codec=lambda rank: QSGD(levels, bucket_size, norm, _seed(worker)),
        momentum=momentum,
        byzantine=byzantine,
        attack=attack,
    )


def ecq_sgd(
    worker: Worker,
    *,
    lr: float,
    levels: int = 1,
    bucket_size: int = 512,
    alpha: float = 1.0,
    beta: float = 1.0,
    momentum: float = 0.0,
    byzantine: int = 0,
    attack: Attack = "invert",
):
    """ECQ-SGD (Wu et al., ICML 2018): the max-norm quantizer on g + alpha h, with
    h <- beta h + (g - Q(g + alpha h)). ``levels=1`` is ternary: 2 bits per entry."""
    yield from compressed_sgd(
        worker,
        lr=lr,
        make_codec=lambda rank: ErrorFeedback(
            QSGD(levels, bucket_size, "max", _seed(worker)), alpha, beta
        ),
        momentum=momentum,
        byzantine=byzantine,
        attack=attack,
    )


def topk_sgd(
    worker: Worker,
    *,
    lr: float,
    density: float = 0.01,
    momentum: float = 0.0,
    byzantine: int = 0,
    attack: Attack = "invert",
):
    """Top-k sparsification with error feedback (residual accumulation, no momentum
    correction: "gradient dropping")."""
    yield from compressed_sgd(
        worker,
        lr=lr,
        make_codec=lambda rank: ErrorFeedback(TopK(density)),
        momentum=momentum,
        byzantine=byzantine,
        attack=attack,
    )


def dgc_sgd(
    worker: Worker,
    *,
    lr: float,
    density: float = 0.001,
    dgc_momentum: float = 0.9,
    momentum_correction: bool = True,
    factor_masking: bool = True,
    clip_norm: float | None = None,
    warmup_steps: int = 0,
    sampled: bool = True,
    sample_ratio: float = 0.01,
    byzantine: int = 0,
    attack: Attack = "invert",
):
    """Deep Gradient Compression: momentum is applied inside DGC (momentum correction), so the
    update after aggregation is plain SGD. The switches remove DGC's components one at a time
    (see :class:`~gradkit.compress.DGC`)."""
    yield from compressed_sgd(
        worker,
        lr=lr,
        make_codec=lambda rank: DGC(
            density,
            momentum=dgc_momentum,
            momentum_correction=momentum_correction,
            factor_masking=factor_masking,
            clip_norm=clip_norm,
            world_size=worker.world_size,
            warmup_steps=warmup_steps,
            sampled=sampled,
            sample_ratio=sample_ratio,
            seed=_seed(worker),
        ),
        byzantine=byzantine,
        attack=attack,
    )
