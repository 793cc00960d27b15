"""The thread that answers other ranks' requests while this rank keeps computing.

Used by AD-PSGD's passive ranks (pairwise averaging into the local model) and by the server rank
(push to / pull from the server state). Requests arrive on a dedicated gloo group with an
any-source receive, so the main thread never touches that group on a serving rank.

Wire protocol (tags): a requester sends a one-element int64 header (tag ``HEADER``) with the
request kind, then its payload (tag ``PAYLOAD``) if the kind has one, and waits for the reply
(tag ``REPLY``) if the kind has one. Every tensor on this group is on the CPU.
"""

from __future__ import annotations

import threading
from enum import IntEnum

import torch
import torch.distributed as dist
from torch import Tensor

from gradkit.distributed.server import ParameterServer
from gradkit.distributed.worker import Worker

HEADER, PAYLOAD, REPLY = 1, 2, 3


class Request(IntEnum):
    AVERAGE = 0
    PUSH = 1
    PUSH_REPLY = 2
    PULL = 3
    DONE = 4


def header(kind: Request) -> Tensor:
    return torch.tensor([int(kind)], dtype=torch.int64)


class Service(threading.Thread):
    """Serves requests until a ``DONE`` arrives. ``server`` is the parameter server (on the
    server rank only), guarded by ``server_lock``; the worker's model is guarded by ``worker.lock``.
    An exception ends the thread and is kept in ``error`` for the main thread to raise."""

    def __init__(
        self,
        worker: Worker,
        group: dist.ProcessGroup,
        server: ParameterServer | None,
        server_lock: threading.Lock,
    ):
        super().__init__(name=f"gradkit-service-{worker.rank}", daemon=True)
        self.worker, self.group = worker, group
        self.server, self.server_lock = server, server_lock
        self.error: BaseException | None = None
        self.served = 0

    def run(self) -> None:
        try:
            self._serve()
        except BaseException as error:  # reported by the main thread
            self.error = error

    def _serve(self) -> None:
        worker = self.worker
        kind = torch.zeros(1, dtype=torch.int64)
        buffer = torch.empty(worker.x.numel(), dtype=worker.x.dtype)
        nbytes = buffer.numel() * buffer.element_size()
        while True:
            src = dist.recv(kind, src=None, group=self.group, tag=HEADER)
            request = Request(int(kind))
            if request is Request.DONE:
                return
            if request is Request.AVERAGE:
                dist.recv(buffer, src=src, group=self.group, tag=PAYLOAD)
                with worker.lock:
                    average = (worker.x.cpu() + buffer).mul_(0.5)
                    worker.x.copy_(average)
                    worker.version += 1
                    worker.bytes_received += nbytes
                    worker.bytes_sent += nbytes
                dist.send(average, dst=src, group=self.group, tag=REPLY)
            elif request is Request.PULL:
                with self.server_lock:
                    state = self.server.pull(src)
                dist.send(state, dst=src, group=self.group, tag=REPLY)
            else:
                dist.recv(buffer, src=src, group=self.group, tag=PAYLOAD)
                with self.server_lock:
                    state = self.server.push(src, buffer, request is Request.PUSH_REPLY).clone()
                if request is Request.PUSH_REPLY:
                    dist.send(state, dst=src, group=self.group, tag=REPLY)
            self.served += 1
