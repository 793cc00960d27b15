"""Runs many independent runs: finished ones from the cache, the rest on every core.

Each missing run executes in a worker process (spawned, one torch thread each), several at a
time; results are stored in the cache as they finish, so an interrupted batch keeps what was
done. With one worker the runs execute in this process, one after the other.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from gradkit._private import terminate_pool
from gradkit.experiments.cache import RunCache
from gradkit.experiments.runs import RunRecord, RunSpec


class RunFailedError(RuntimeError):
    """A run raised; the message names the run."""


def _execute_in_worker(spec: RunSpec) -> RunRecord:
    import torch

    torch.set_num_threads(1)
    return spec.execute()


def default_workers() -> int:
    """One worker per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


@dataclass
class Executor:
    """Executes :class:`RunSpec` batches with a cache and ``workers`` processes.

    ``run`` may be called from several threads at once (searches of several methods proceed
    together and keep every worker busy); a run requested twice while in flight executes once.
    ``on_done(n)`` is called as runs finish (cached ones included). ``executed`` and ``cached``
    count runs computed and runs read from the cache.
    """

    cache: RunCache | None = None
    workers: int = 1
    on_done: Callable[[int], None] = lambda n: None
    executed: int = 0
    cached: int = 0
    _memory: dict[RunSpec, RunRecord] = field(default_factory=dict, repr=False)
    _in_flight: dict[RunSpec, Future] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _pool: ProcessPoolExecutor | None = field(default=None, repr=False)

    def run(self, specs: Sequence[RunSpec]) -> list[RunRecord]:
        """The records of ``specs``, in order (duplicates run once)."""
        futures = {spec: self._submit(spec) for spec in dict.fromkeys(specs)}
        records = {}
        for spec, future in futures.items():
            records[spec] = self._call(future.result, spec)
            self._finished(spec, future)  # the done-callback may not have run yet
        return [records[spec] for spec in specs]

    def _submit(self, spec: RunSpec) -> Future:
        with self._lock:
            if spec in self._memory:
                return _done(self._memory[spec])
            if spec in self._in_flight:
                return self._in_flight[spec]
            record = self.cache.get(spec) if self.cache is not None else None
            if record is not None:
                self._memory[spec] = record
                self.cached += 1
                self.on_done(1)
                return _done(record)
            if self.workers <= 1:
                future: Future = Future()
                try:
                    record = spec.execute()
                except Exception as error:
                    future.set_exception(error)
                    return future
                self._store(spec, record)
                future.set_result(record)
                return future
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            future = self._pool.submit(_execute_in_worker, spec)
            self._in_flight[spec] = future
        future.add_done_callback(lambda f, spec=spec: self._finished(spec, f))
        return future

    def _finished(self, spec: RunSpec, future: Future) -> None:
        """Store a finished run once (called from the pool's thread and from ``run``)."""
        with self._lock:
            self._in_flight.pop(spec, None)
            done = not future.cancelled() and future.exception() is None
            if done and spec not in self._memory:
                self._store(spec, future.result())

    def _call(self, function, spec: RunSpec) -> RunRecord:
        try:
            return function()
        except Exception as error:
            raise RunFailedError(f"run {spec.describe()} failed: {error}") from error

    def _store(self, spec: RunSpec, record: RunRecord) -> None:
        self._memory[spec] = record
        if self.cache is not None:
            self.cache.put(spec, record)
        self.executed += 1
        self.on_done(1)

    def close(self) -> None:
        """Stop the worker processes; runs not started are dropped, finished ones are cached."""
        if self._pool is not None:
            terminate_pool(self._pool)  # a run in progress is lost, not waited for
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _done(record: RunRecord) -> Future:
    future: Future = Future()
    future.set_result(record)
    return future
