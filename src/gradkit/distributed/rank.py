"""This process as one rank of a torchrun job: joining the job's process group, and the policy
for how a rank's run ends when another rank fails. The command line and Python scripts share it:

    join_torchrun(timeout=60)
    with rank_run():
        trace = train_distributed("adpsgd", "mnist1d-mlp", epochs=5)

Inside :func:`rank_run` the rank heartbeats (:class:`~gradkit.distributed.watch.PeerWatch`);
torchrun's SIGTERM (sent to every rank once one has failed) interrupts the run; and anything that
ends it (a failed or timed-out collective, a lost peer, that SIGTERM) becomes one
:class:`RankFailedError` whose message names the cause, the silent peers first.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

from gradkit.distributed.launch import init_process_group
from gradkit.distributed.watch import PeerWatch


class StoppedByLauncher(RuntimeError):
    """torchrun sent SIGTERM: another rank failed."""


class RankFailedError(RuntimeError):
    """This rank's run cannot continue; the message is one line naming why."""


def join_torchrun(timeout: float) -> None:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...
    in the environment) with one thread per process (more stall gloo on a few cores): NCCL on
    this rank's GPU (``LOCAL_RANK``) when CUDA is present, gloo otherwise. Every collective of
    the group gives up after ``timeout`` seconds."""
    if "RANK" not in os.environ:
        raise RuntimeError("not started by torchrun: RANK is not set")
    torch.set_num_threads(1)
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    init_process_group(backend, timeout=timedelta(seconds=timeout))


@contextmanager
def rank_run(watch_peers: bool = True) -> Iterator[None]:
    """Run the block as this rank's part of the job (the process group must exist), and leave
    the group at the end. A ``RuntimeError`` inside (the errors of torch.distributed and of
    gradkit's distributed runs are) or torchrun's SIGTERM ends it as :class:`RankFailedError`;
    after that, a second SIGTERM is ignored so the one-line report gets out (SIGKILL still
    ends the process). ``watch_peers=False`` skips the heartbeats (the error's first line is
    then the report: errors that already name the rank and its peer, as DDG's stages do)."""
    watch = PeerWatch() if watch_peers else None

    def launcher_stops_us(signum, frame):
        raise StoppedByLauncher("torchrun stopped this rank")

    previous = signal.signal(signal.SIGTERM, launcher_stops_us)
    try:
        yield
    except RuntimeError as error:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise RankFailedError(_one_line(error, watch)) from error
    finally:
        if signal.getsignal(signal.SIGTERM) is launcher_stops_us:
            signal.signal(signal.SIGTERM, previous)
        if watch is not None:
            watch.stop()
        dist.destroy_process_group()


def _one_line(error: RuntimeError, watch: PeerWatch | None) -> str:
    if watch is not None:
        return watch.describe_failure(error)
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
