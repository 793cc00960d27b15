"""Compressed data-parallel algorithms as worker programs, and Byzantine workers.

Gradients are compressed per parameter tensor (as DGC's authors do, and as the DDP hooks in
:mod:`gradkit.distributed.hooks` must, since DDP's buckets change), each tensor with its own
codec seeded from (seed, rank, tensor index), so a simulated run and a DDP run with the same
seed send the same messages.

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

from gradkit.checks import InputError
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
from gradkit.distributed import ops
from gradkit.distributed.hyper import ATTACKS
from gradkit.distributed.sharding import derived_seed
from gradkit.distributed.worker import Worker
from gradkit.optim.sign import signum_momentum_

Attack = Literal["invert", "random"]


def is_byzantine(worker: Worker, byzantine: int) -> bool:
    if not isinstance(byzantine, int) or not 0 <= byzantine <= worker.world_size:
        raise InputError(
            f"byzantine must be an integer in [0, {worker.world_size}], got {byzantine!r}"
        )
    return worker.rank >= worker.world_size - byzantine


def corrupt(worker: Worker, t: Tensor, byzantine: int, attack: Attack) -> Tensor:
    """What worker sends instead of ``t`` if it is Byzantine (else ``t``)."""
    if attack not in ATTACKS:
        raise InputError(f"unknown attack {attack!r}; choose from {', '.join(ATTACKS)}")
    if not is_byzantine(worker, byzantine):
        return t
    if attack == "invert":
        return -t
    noise = torch.randn(t.shape, generator=worker.rng, dtype=t.dtype).to(t.device)
    return noise * (torch.linalg.vector_norm(t) / math.sqrt(t.numel()))


def vote_exchange(worker: Worker, signs: Tensor, out: Tensor | None = None):
    """Sub-program: the majority vote sign(sum over workers of sign(signs)) (ties +1) as +1/-1
    (written into ``out`` if given), 1 bit per coordinate each way. The packed code is cut into
    one chunk per worker; an all-to-all gives worker j every worker's chunk j, which it votes
    on; an all-gather of the packed votes returns V to all."""
    n, d = worker.world_size, signs.numel()
    packed = pack_signs(signs)
    chunk = math.ceil(packed.numel() / n)
    padded = torch.cat([packed, packed.new_zeros(n * chunk - packed.numel())]).view(n, chunk)
    columns = yield worker.all_to_all(padded)
    votes = yield worker.all_gather(pack_signs(majority_vote(list(columns), 8 * chunk)))
    return unpack_signs(torch.cat(votes), d, signs.dtype, out=out)


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
    m = torch.zeros_like(worker.x)
    for _ in range(worker.steps):
        grad = yield worker.gradient()
        signum_momentum_([m], [grad], momentum)
        worker.count("payload_bits", m.numel())  # one sign per coordinate up (one vote down)
        direction = yield from vote_exchange(worker, corrupt(worker, m, byzantine, attack))
        if weight_decay:
            direction.add_(worker.x, alpha=weight_decay)
        worker.apply(direction, lr)


def codec_seed(seed: int, rank: int, index: int) -> int:
    """The seed of the codec of parameter ``index`` on ``rank``."""
    return derived_seed(seed, rank, 100 + index)


def encode(codec, grad: Tensor) -> Payload:
    """The payload ``codec`` sends for ``grad`` (error feedback updates its memory)."""
    payload = codec.compress(grad)
    return payload[0] if isinstance(codec, ErrorFeedback) else payload


def decode_mean(codec, payloads: list[Payload]) -> Tensor:
    """(1/n) sum of the decompressed payloads (vectorised ``decompress_sum`` where offered)."""
    decoder = codec.compressor if isinstance(codec, ErrorFeedback) else codec
    if hasattr(decoder, "decompress_sum"):
        return decoder.decompress_sum(payloads).div_(len(payloads))
    total = decoder.decompress(payloads[0]).clone()
    for other in payloads[1:]:
        total.add_(decoder.decompress(other))
    return total.div_(len(payloads))


ALIGNMENT = 8  # bytes: every tensor in a packed message starts at a multiple of this


def _pack(tensors: list[Tensor]) -> tuple[Tensor, list[int]]:
    """One uint8 message holding ``tensors`` (flattened, each padded to ``ALIGNMENT`` bytes) and
    their true sizes in bytes."""
    parts, sizes = [], []
    for t in tensors:
        raw = t.detach().reshape(-1).view(torch.uint8)
        sizes.append(raw.numel())
        parts += [raw, raw.new_zeros(-raw.numel() % ALIGNMENT)]
    return torch.cat(parts), sizes


def _unpack(message: Tensor, sizes: list[int], dtypes: list[torch.dtype]) -> list[Tensor]:
    """The 1-D tensors of a message built by :func:`_pack` (views into it)."""
    out, offset = [], 0
    for size, dtype in zip(sizes, dtypes, strict=True):
        out.append(message[offset : offset + size].view(dtype))
        offset += size + (-size % ALIGNMENT)
    return out


def gather_payloads(worker: Worker, payloads: list[Payload]):
    """Sub-program: every worker's payloads for the same tensors, as ``gathered[i][rank]``
    (``gathered = yield from gather_payloads(worker, payloads)``).

    All payloads travel in one uint8 message per worker (one all-gather). Sparse payloads vary
    in size, so their sizes are all-gathered first and the messages padded to the longest."""
    names = [(i, name) for i, p in enumerate(payloads) for name in p.tensors]
    tensors = [payloads[i].tensors[name] for i, name in names]
    message, sizes = _pack(tensors)
    if any("indices" in p.tensors for p in payloads):
        counts = yield worker.all_gather(torch.tensor(sizes, device=message.device))
        rank_sizes = [c.tolist() for c in counts]
    else:
        rank_sizes = [sizes] * worker.world_size
    longest = max(sum(s + (-s % ALIGNMENT) for s in sizes) for sizes in rank_sizes)
    messages = yield worker.all_gather(
        torch.cat([message, message.new_zeros(longest - message.numel())])
    )
    gathered: list[list[dict[str, Tensor]]] = [[{} for _ in messages] for _ in payloads]
    dtypes = [t.dtype for t in tensors]
    for rank, (received, sizes) in enumerate(zip(messages, rank_sizes, strict=True)):
        for (i, name), t in zip(names, _unpack(received, sizes, dtypes), strict=True):
            gathered[i][rank][name] = t
    return ops.Gathered(
        (
            [Payload(t, 0, p.shape, p.dtype) for t in per_rank]
            for p, per_rank in zip(payloads, gathered, strict=True)
        ),
        getattr(messages, "shared", None),
    )


def compressed_sgd(
    worker: Worker,
    *,
    lr: float,
    make_codec: Callable[[int], Any],
    momentum: float = 0.0,
    byzantine: int = 0,
    attack: Attack = "invert",
):
    r"""Data-parallel SGD on compressed gradients. For every parameter tensor, each worker sends
    C(g) (``make_codec(seed)`` builds the tensor's compressor, possibly wrapped in
    :class:`~gradkit.compress.ErrorFeedback`, or a DGC), all tensors' payloads are gathered in
    one message, and each worker applies x <- x - lr * u,
    u <- momentum u + (1/n) sum_m decompress(payload_m).
    """
    codecs = [
        make_codec(codec_seed(worker.seed, worker.rank, i)) for i in range(len(worker.param_sizes))
    ]
    for _ in range(worker.steps):
        grad = corrupt(worker, (yield worker.gradient()), byzantine, attack)
        parts = torch.split(grad, worker.param_sizes)
        payloads = [encode(codec, part) for codec, part in zip(codecs, parts, strict=True)]
        worker.count("payload_bits", sum(p.bits for p in payloads))
        gathered = yield from gather_payloads(worker, payloads)
        # decoding reads only the payloads and the codecs' configuration, the same on all workers
        mean = ops.shared_value(
            gathered,
            "mean",
            lambda rounds: torch.cat(
                [decode_mean(c, g) for c, g in zip(codecs, rounds, strict=True)]
            ),
        )
        worker.apply(mean, lr, momentum)


def qsgd_codec(levels: int, bucket_size: int, norm: Literal["l2", "max"]):
    return lambda seed: QSGD(levels, bucket_size, norm, seed)


def ecq_codec(levels: int, bucket_size: int, alpha: float, beta: float):
    return lambda seed: ErrorFeedback(QSGD(levels, bucket_size, "max", seed), alpha, beta)


def topk_codec(density: float):
    return lambda seed: ErrorFeedback(TopK(density))


def dgc_codec(density: float, world_size: int, **options):
    return lambda seed: DGC(density, world_size=world_size, seed=seed, **options)


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
    codec = qsgd_codec(levels, bucket_size, norm)
    yield from compressed_sgd(
        worker, lr=lr, make_codec=codec, momentum=momentum, byzantine=byzantine, attack=attack
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
    codec = ecq_codec(levels, bucket_size, alpha, beta)
    yield from compressed_sgd(
        worker, lr=lr, make_codec=codec, momentum=momentum, byzantine=byzantine, attack=attack
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
    codec = topk_codec(density)
    yield from compressed_sgd(
        worker, lr=lr, make_codec=codec, momentum=momentum, byzantine=byzantine, attack=attack
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
    codec = dgc_codec(
        density,
        worker.world_size,
        momentum=dgc_momentum,
        momentum_correction=momentum_correction,
        factor_masking=factor_masking,
        clip_norm=clip_norm,
        warmup_steps=warmup_steps,
        sampled=sampled,
        sample_ratio=sample_ratio,
    )
    yield from compressed_sgd(worker, lr=lr, make_codec=codec, byzantine=byzantine, attack=attack)
