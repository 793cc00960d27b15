"""Heartbeats in the process group's store, so that a rank whose collective failed or timed out
can name the peers that went silent (dead, or stopped) instead of printing the backend's error.

Each rank's thread increments ``gradkit/heartbeat/<rank>`` every ``interval`` seconds. A peer
is silent when its counter does not move over a few intervals and it has not said that it left
(a rank that finishes, or that is itself reporting a failure, marks ``gradkit/left/<rank>``).
Counters, not clocks: the ranks may run on machines whose clocks disagree. Under torchrun the
store belongs to the launcher's agent, so it outlives any worker.
"""

from __future__ import annotations

import contextlib
import threading
import time

import torch.distributed as dist

from gradkit._private import default_store


class PeerWatch:
    """Start heartbeating for this rank (``torch.distributed`` must be initialised); use as a
    context manager, or call :meth:`stop`."""

    def __init__(self, interval: float = 0.5):
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.interval = interval
        self._store = default_store()
        self._stopped = threading.Event()
        self._beat()
        self._thread = threading.Thread(target=self._run, name="gradkit-heartbeat", daemon=True)
        self._thread.start()

    def __enter__(self) -> PeerWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._leave()
        self._stopped.set()

    def _key(self, rank: int) -> str:
        return f"gradkit/heartbeat/{rank}"

    def _leave(self) -> None:
        with contextlib.suppress(Exception):  # the store may be gone
            self._store.add(f"gradkit/left/{self.rank}", 1)

    def _beat(self) -> None:
        self._store.add(self._key(self.rank), 1)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self._beat()
            except Exception:  # the store is gone: nothing left to tell
                return

    def _counts(self) -> list[int]:
        return [self._store.add(self._key(r), 0) for r in range(self.world_size)]

    def silent_peers(self, intervals: int = 4) -> list[int] | None:
        """The other ranks whose heartbeat did not move for ``intervals`` intervals, or None if
        the store cannot be reached."""
        try:
            before = self._counts()
            time.sleep(intervals * self.interval)
            after = self._counts()
            left = [self._store.add(f"gradkit/left/{r}", 0) for r in range(self.world_size)]
        except Exception:
            return None
        return [
            r
            for r in range(self.world_size)
            if r != self.rank and after[r] == before[r] and not left[r]
        ]

    def describe_failure(self, error: BaseException) -> str:
        """One line for an error that ended this rank's run: the silent peers if any (the cause
        of a failed or timed-out collective), else the error's first line."""
        self._leave()  # alive and reporting: not one of the lost
        silent = self.silent_peers()
        if silent:
            names = ", ".join(str(r) for r in silent)
            return (
                f"rank {self.rank}: lost rank {names} (dead or stopped: no heartbeat for "
                f"{4 * self.interval:g} s); the run cannot continue"
            )
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"rank {self.rank}: {type(error).__name__}: {first[:300]}"
