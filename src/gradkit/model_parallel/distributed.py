"""DDG with one stage per process over torch.distributed point-to-point messages (gloo on CPU,
NCCL on GPU): the same stages, in the same order of operations, as
:class:`~gradkit.model_parallel.DDG` in one process, so a real run gives the same weights.

At iteration t rank k receives batch t's activations from rank k - 1 (rank 0 reads the batch),
forwards them and sends the output on; it then backpropagates its oldest batch in flight with
the gradient rank k + 1 sent during iteration t - 1, steps its optimizer, sends the gradient with
respect to its input back to rank k - 1, and posts the receive of rank k + 1's next gradient.
Every message is a small header (shape and dtype) followed by the tensor; every wait is bounded
by ``timeout``, so a dead stage ends the run with an error naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from gradkit.checks import InputError
from gradkit.model_parallel.ddg import OptimizerFactory
from gradkit.model_parallel.split import split_sequential
from gradkit.model_parallel.stage import DelayedStage, Variant, backpropagates, stage_delay

MAX_DIMS = 8
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32)
ACTIVATION, GRADIENT = 1, 2  # message tags


class StageFailedError(RuntimeError):
    """Another stage died or stopped answering; the run cannot continue."""


class DistributedDDG:
    """This rank's stage of a DDG run over the default process group: ``model`` (the whole
    ``nn.Sequential``, built identically on every rank) is cut into one stage per rank,
    balanced by parameter count or before ``split_points``; this rank trains its stage with
    ``optimizer``. Call :meth:`step` on every rank with the same batches (rank 0 uses the
    inputs, the last rank the targets), then :meth:`finish`."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: OptimizerFactory,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        split_points: Sequence[int] | None = None,
        variant: Variant = "stash",
        timeout: float = 20.0,
    ):
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "torch.distributed is not initialised: launch with torchrun, or use "
                "gradkit.distributed.launch"
            )
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        stages = None if split_points is not None else self.world_size
        parts = split_sequential(model, stages, split_points)
        if len(parts) != self.world_size:
            raise InputError(
                f"{len(parts)} stages need {len(parts)} processes; the run has {self.world_size}"
            )
        self.parts, self.module = parts, parts[self.rank]
        delay = stage_delay(self.rank, self.world_size)
        self.stage = DelayedStage(
            self.module, optimizer(self.module.parameters()), delay, variant, first=self.rank == 0
        )
        self.loss_fn, self.timeout = loss_fn, timedelta(seconds=timeout)
        self.device = next(self.module.parameters()).device
        self._sends: list[tuple[list, int, tuple[Tensor, Tensor]]] = []
        self._iteration = 0
        self._gradient: tuple[list, Tensor] | None = None  # (works, header) of a posted receive
        dist.barrier()

    @property
    def is_last(self) -> bool:
        return self.rank == self.world_size - 1

    def step(self, inputs: Tensor | None, targets: Tensor | None) -> float | None:
        """One DDG iteration; returns the batch's loss on the last rank, None elsewhere."""
        self._finish_sends()
        h = inputs.to(self.device) if self.rank == 0 else self._receive(self.rank - 1, ACTIVATION)
        out = self.stage.forward(h)
        if not self.is_last:
            self._send(out, self.rank + 1, ACTIVATION)
            if self._gradient is not None:
                upstream = self._await_gradient()
                self._backward_and_send(upstream)
            # the next rank sends its gradient of this iteration's batch
            if backpropagates(self.rank + 1, self.world_size, self._iteration):
                self._post_gradient_receive()
            self._iteration += 1
            return None
        targets = targets.to(self.device)
        self._backward_and_send(None, lambda o: self.loss_fn(o, targets))
        return self.stage.last_loss

    def finish(self) -> None:
        """Wait for this rank's last messages to leave and for every rank to get here (the
        gradients still in flight are the ones DDG never applies)."""
        self._finish_sends()
        if self._gradient is not None:
            self._await_gradient()
        self._wait(dist.barrier(async_op=True), "every rank")

    # messages ------------------------------------------------------------------------------
    def _backward_and_send(self, upstream: Tensor | None, loss_fn=None) -> None:
        grad_input = self.stage.backward(upstream, loss_fn)
        if self.rank > 0:
            self._send(grad_input, self.rank - 1, GRADIENT)

    def _send(self, tensor: Tensor, peer: int, tag: int) -> None:
        tensor = tensor.detach().contiguous()
        header = torch.zeros(MAX_DIMS + 2, dtype=torch.int64, device=self.device)
        header[0], header[1] = tensor.dim(), DTYPES.index(tensor.dtype)
        header[2 : 2 + tensor.dim()] = torch.tensor(tensor.shape, dtype=torch.int64)
        ops = [dist.P2POp(dist.isend, header, peer, tag=tag), dist.P2POp(dist.isend, tensor, peer,
                                                                         tag=tag)]  # fmt: skip
        # the tensors stay referenced until the send is waited on
        self._sends.append((dist.batch_isend_irecv(ops), peer, (header, tensor)))

    def _receive(self, peer: int, tag: int) -> Tensor:
        header = self._header()
        self._wait(self._post_receive(header, peer, tag), peer)
        return self._receive_payload(header, peer, tag)

    def _post_gradient_receive(self) -> None:
        # only the header can be posted now: the payload's shape is in it
        header = self._header()
        self._gradient = (self._post_receive(header, self.rank + 1, GRADIENT), header)

    def _await_gradient(self) -> Tensor:
        (works, header), self._gradient = self._gradient, None
        self._wait(works, self.rank + 1)
        return self._receive_payload(header, self.rank + 1, GRADIENT)

    def _header(self) -> Tensor:
        return torch.empty(MAX_DIMS + 2, dtype=torch.int64, device=self.device)

    @staticmethod
    def _post_receive(tensor: Tensor, peer: int, tag: int) -> list:
        return dist.batch_isend_irecv([dist.P2POp(dist.irecv, tensor, peer, tag=tag)])

    def _receive_payload(self, header: Tensor, peer: int, tag: int) -> Tensor:
        """The tensor a received ``header`` announces."""
        shape = header[2 : 2 + int(header[0])].tolist()
        payload = torch.empty(shape, dtype=DTYPES[int(header[1])], device=self.device)
        self._wait(self._post_receive(payload, peer, tag), peer)
        return payload

    def _finish_sends(self) -> None:
        sends, self._sends = self._sends, []
        for works, peer, _ in sends:
            self._wait(works, peer)

    def _wait(self, works, peer) -> None:
        works = works if isinstance(works, list) else [works]
        try:
            for work in works:
                work.wait(self.timeout)
        except RuntimeError as error:
            name = peer if isinstance(peer, str) else f"rank {peer}"
            raise StageFailedError(
                f"rank {self.rank}: {name} did not answer within {self.timeout.total_seconds():g}"
                f" s (dead or stopped): {error}"
            ) from error
