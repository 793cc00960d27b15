"""The private APIs of torch and of the standard library that gradkit relies on, each behind one
function, with the reason no public API serves. A torch release that moves one breaks here only.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import torch
import torch.distributed as dist


def default_foreach(params: list[torch.Tensor]) -> bool:
    """Whether torch's own optimizers would take the multi-tensor (``foreach``) path for
    ``params``: torch.optim decides this by ``_default_to_fused_or_foreach`` (the tensors'
    devices and types), and gradkit's optimizers default to the same choice."""
    from torch.optim.optimizer import _default_to_fused_or_foreach

    return _default_to_fused_or_foreach(params, differentiable=False)[1]


def default_store() -> dist.Store:
    """The key-value store of the default process group (torchrun's rendezvous store, or the
    one ``init_process_group`` made): torch offers no public accessor, and a second store would
    need its own port that torchrun's agent does not know about."""
    return dist.distributed_c10d._get_default_store()


def terminate_pool(pool: ProcessPoolExecutor) -> None:
    """Terminate ``pool``'s worker processes without waiting for the runs in progress:
    ``shutdown`` waits for them (``terminate_workers`` arrives only in Python 3.14)."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()
