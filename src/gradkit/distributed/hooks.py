"""DDP communication hooks that reuse :mod:`gradkit.compress`: majority-vote signs
(:class:`SignVoteState` with :func:`signum_vote_hook`), ECQ-SGD (:class:`ECQState`) and DGC
(:class:`DGCState`) with :func:`compressed_hook`.

A hook compresses its bucket on the backward thread, launches the bucket's collectives with
``async_op=True`` and returns at once; decoding runs when they complete, so one bucket's
communication overlaps the backward of the next (as torch's ``powerSGD_hook`` does). Each
bucket travels as one message per collective.

Register once, before the first backward::

    state = SignVoteState(model, momentum=0.9)
    ddp.register_comm_hook(state, signum_vote_hook)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=1e-4, weight_decay=0.1)  # no momentum

State is keyed by parameter (its position in ``module.parameters()``), not by bucket, because
DDP rebuilds its buckets after the first iteration.
"""

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from gradkit.checks import UNIT_INTERVAL
from gradkit.distributed import ops
from gradkit.distributed.compressed import (
    codec_seed,
    decode_mean,
    dgc_codec,
    ecq_codec,
    encode,
    gather_payloads,
    vote_exchange,
)
from gradkit.optim.sign import signum_momentum_


class _Group:
    """Just enough of a Worker for the collective sub-programs of
    :mod:`gradkit.distributed.compressed` (world size, all-gather, all-to-all)."""

    def __init__(self, group: dist.ProcessGroup | None):
        self.world_size = dist.get_world_size(group)

    def all_gather(self, tensor: Tensor) -> ops.AllGather:
        return ops.AllGather(tensor)

    def all_to_all(self, tensor: Tensor) -> ops.AllToAll:
        return ops.AllToAll(tensor)


def _launch(op, group: dist.ProcessGroup | None) -> tuple[Any, dist.Work]:
    """Start ``op`` asynchronously on ``group``: (where its result will be, the work)."""
    if isinstance(op, ops.AllToAll):
        received = torch.empty_like(op.tensor)
        return received, dist.all_to_all_single(received, op.tensor, group=group, async_op=True)
    if isinstance(op, ops.AllGather):
        parts = [torch.empty_like(op.tensor) for _ in range(dist.get_world_size(group))]
        return parts, dist.all_gather(parts, op.tensor, group=group, async_op=True)
    raise TypeError(
        f"a DDP communication hook cannot run {type(op).__name__}; hooks run AllGather and AllToAll"
    )


def run_async(
    program,
    group: dist.ProcessGroup | None,
    after: torch.futures.Future | None = None,
    on_operation: Callable[[Any], None] | None = None,
) -> torch.futures.Future:
    """Drive a collective sub-program (it yields all-gathers and all-to-alls) on a process
    group without blocking: each operation is launched with ``async_op=True`` and the program
    resumes when it completes. The future holds the program's return value, or its error (or
    the collective's), so hooks and simulated programs share one code path.

    With ``after``, the program starts when that future completes, whether it succeeded or
    failed (a bucket that failed, say while a peer was away, does not fail every later bucket:
    a later step succeeds once the peer is back). Gloo matches collectives by
    the order in which each rank launches them, and its completions run on its own threads, so
    buckets chained this way launch in the same order on every rank. ``on_operation`` sees
    every operation before it is launched."""
    done: torch.futures.Future = torch.futures.Future()

    def resume(result) -> None:
        try:
            op = program.send(result)
            if on_operation is not None:
                on_operation(op)
            received, work = _launch(op, group)
        except StopIteration as finished:
            done.set_result(finished.value)
        except Exception as error:
            done.set_exception(error)
        else:
            work.get_future().add_done_callback(lambda future: resume_after(future, received))

    def resume_after(future: torch.futures.Future, received) -> None:
        try:
            future.wait()  # raises the operation's error; waiting on the Work here would hang
        except Exception as error:
            done.set_exception(error)
        else:
            resume(received)

    if after is None:
        resume(None)
    else:  # ``after`` only orders the launches: its failure is its own bucket's, not this one's
        after.add_done_callback(lambda previous: resume(None))
    return done


class _ParameterKeyed:
    """Hook state keyed by a parameter's position in ``module.parameters()`` (DDP rebuilds its
    buckets after the first iteration, so bucket indices are not stable)."""

    def __init__(self, module: nn.Module, process_group: dist.ProcessGroup | None):
        self.process_group = process_group
        self._index = {p: i for i, p in enumerate(module.parameters())}
        self._last: torch.futures.Future | None = None
        self.on_operation: Callable[[Any], None] | None = None  # sees every operation sent

    def communicate(self, program) -> torch.futures.Future:
        """Run a bucket's collective sub-program after the previous bucket's (see
        :func:`run_async`)."""
        self._last = run_async(program, self.process_group, self._last, self.on_operation)
        return self._last


class SignVoteState(_ParameterKeyed):
    """State of :func:`signum_vote_hook`: signSGD with majority vote and local momentum
    (Bernstein et al., ICLR 2019).

    Tuning guide:

    - ``momentum`` (beta) is applied on every worker before the vote, as Signum's
      m <- beta m + (1 - beta) g. 0.9 is the authors' setting; 0 gives plain signSGD voting.
    - The hook hands back V in {-1, +1} per coordinate, so pair it with
      ``torch.optim.SGD(lr=delta, momentum=0, weight_decay=lambda)``: the step is
      x <- x - delta (V + lambda x), weight decay after the vote as in the authors' code.
      Any further momentum or adaptivity would change the algorithm.
    - delta is a sign step: start one to two orders of magnitude below an SGD learning rate
      (the authors used 1e-4 for ResNet-50 on ImageNet with weight decay 0.1).
    - Traffic is 1 bit per coordinate each way (32x less than fp32), independent of the world
      size; a tie resolves to +1, and an exact zero momentum votes +1.
    """

    def __init__(
        self,
        module: nn.Module,
        momentum: float = 0.9,
        process_group: dist.ProcessGroup | None = None,
    ):
        UNIT_INTERVAL("momentum", momentum)
        super().__init__(module, process_group)
        self.momentum = momentum
        self.momenta: dict[int, Tensor] = {}

    def momenta_of(self, bucket: dist.GradBucket) -> list[Tensor]:
        """Update and return the momentum of every parameter in the bucket, in bucket order."""
        grads, momenta = bucket.gradients(), []
        for param, grad in zip(bucket.parameters(), grads, strict=True):
            key = self._index[param]
            if key not in self.momenta:
                self.momenta[key] = torch.zeros_like(grad)
            momenta.append(self.momenta[key])
        return signum_momentum_(momenta, grads, self.momentum)

    def state_dict(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "momenta": dict(self.momenta)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.momentum = state["momentum"]
        self.momenta = {k: v.clone() for k, v in state["momenta"].items()}


# No ``from __future__ import annotations`` here: DDP checks the hook's annotations as objects.
def signum_vote_hook(
    state: SignVoteState, bucket: dist.GradBucket
) -> torch.futures.Future[torch.Tensor]:
    """Replace the bucket's gradients by the majority vote of the workers' momentum signs."""
    flat = torch.cat([m.reshape(-1) for m in state.momenta_of(bucket)])
    buffer = bucket.buffer()
    exchange = vote_exchange(_Group(state.process_group), flat, out=buffer)

    def votes(future: torch.futures.Future) -> Tensor:
        future.wait()  # raises the exchange's error
        return buffer

    return state.communicate(exchange).then(votes)


class CompressionState(_ParameterKeyed):
    """State of :func:`compressed_hook`: one codec per parameter, built on first use by
    ``make_codec(seed)`` with the seed derived from (``seed``, rank, parameter index), exactly
    as the simulator's compressed programs do, so both send the same messages."""

    def __init__(
        self,
        module: nn.Module,
        make_codec: Callable[[int], Any],
        seed: int = 0,
        process_group: dist.ProcessGroup | None = None,
    ):
        super().__init__(module, process_group)
        self.make_codec, self.seed = make_codec, seed
        self.codecs: dict[int, Any] = {}
        self.payload_bits = 0

    def codec(self, param: Tensor) -> Any:
        key = self._index[param]
        if key not in self.codecs:
            rank = dist.get_rank(self.process_group)
            self.codecs[key] = self.make_codec(codec_seed(self.seed, rank, key))
        return self.codecs[key]

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "payload_bits": self.payload_bits,
            "codecs": {k: c.state_dict() for k, c in self.codecs.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed, self.payload_bits = state["seed"], state["payload_bits"]
        rank = dist.get_rank(self.process_group)
        self.codecs = {}
        for key, codec_state in state["codecs"].items():
            codec = self.make_codec(codec_seed(self.seed, rank, key))
            codec.load_state_dict(codec_state)
            self.codecs[key] = codec


class ECQState(CompressionState):
    """ECQ-SGD (Wu et al., ICML 2018) for :func:`compressed_hook`: per parameter,
    ghat = Q(g + alpha h), h <- beta h + (g - ghat), with Q the stochastic max-norm quantizer.

    Tuning guide:

    - ``levels`` = s: s = 1 is ternary, 2 bits per entry (+32 per ``bucket_size`` entries for
      the scale); s = 3 costs 3 bits, s = 7 costs 4. Smaller buckets track the scale more
      closely at a cost of 32 bits each.
    - ``alpha``, ``beta`` in [0, 1]: alpha = beta = 1 is classic error feedback; beta < 1 lets
      old errors decay (the paper's grid: (1, 1), (1, 0.9), (0.5, 0.9)).
    - Pair with the optimizer you would use uncompressed (SGD, momentum SGD): the hook returns
      the mean of the workers' decompressed gradients.
    - Traffic uses an all-gather, so the received volume grows with the number of workers.
    """

    def __init__(
        self,
        module: nn.Module,
        levels: int = 1,
        bucket_size: int = 512,
        alpha: float = 1.0,
        beta: float = 1.0,
        seed: int = 0,
        process_group: dist.ProcessGroup | None = None,
    ):
        codec = ecq_codec(levels, bucket_size, alpha, beta)
        super().__init__(module, codec, seed, process_group)


class DGCState(CompressionState):
    """Deep Gradient Compression (Lin et al., ICLR 2018) for :func:`compressed_hook`, one
    :class:`~gradkit.compress.DGC` per parameter.

    Tuning guide:

    - ``density``: 0.001 sends 0.1% of each tensor (about 500x smaller messages with 32-bit
      values and indices).
    - ``momentum`` is applied inside the hook (momentum correction): pair the hook with
      ``torch.optim.SGD`` *without* momentum, and with weight decay folded into the loss or
      the SGD weight decay.
    - ``warmup_steps``: iterations per warm-up stage (densities 25%, 6.3%, 1.5%, 0.4%); the
      authors use one epoch per stage. 0 disables the warm-up.
    - ``clip_norm``: each tensor's gradient is clipped to clip_norm / sqrt(world size) before
      accumulation; None disables it.
    - Every component can be switched off (``momentum_correction``, ``factor_masking``,
      ``sampled``) for ablations.
    """

    def __init__(
        self,
        module: nn.Module,
        density: float = 0.001,
        seed: int = 0,
        process_group: dist.ProcessGroup | None = None,
        **options: Any,
    ):
        world_size = dist.get_world_size(process_group)
        super().__init__(module, dgc_codec(density, world_size, **options), seed, process_group)


def compressed_hook(
    state: CompressionState, bucket: dist.GradBucket
) -> torch.futures.Future[torch.Tensor]:
    """Replace each gradient in the bucket by the mean of the workers' compressed gradients."""
    grads = bucket.gradients()
    codecs = [state.codec(param) for param in bucket.parameters()]
    # codecs keep no reference to their input, so the bucket's views need no copy
    payloads = [
        encode(codec, grad.detach().reshape(-1)) for codec, grad in zip(codecs, grads, strict=True)
    ]
    state.payload_bits += sum(p.bits for p in payloads)

    def write_means(future: torch.futures.Future) -> Tensor:
        for codec, grad, gathered in zip(codecs, grads, future.value(), strict=True):
            grad.copy_(decode_mean(codec, gathered).view_as(grad))
        return bucket.buffer()

    return state.communicate(gather_payloads(_Group(state.process_group), payloads)).then(
        write_means
    )
