"""Runs many independent runs: finished ones from the cache, the rest on every core.

Each missing run executes in a worker process (spawned, one torch thread each), several at a
time; results are stored in the cache as they finish, so an interrupted batch keeps what was
done. With one worker the runs execute in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

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

    ``on_done(n)`` is called as runs finish (cached ones included). ``executed`` and
    ``cached`` count runs computed and runs read from the cache.
    """

    cache: RunCache | None = None
    workers: int = 1
    on_done: Callable[[int], None] = lambda n: None
    executed: int = 0
    cached: int = 0
    _memory: dict[RunSpec, RunRecord] = field(default_factory=dict, repr=False)
    _pool: ProcessPoolExecutor | None = field(default=None, repr=False)

    def run(self, specs: Sequence[RunSpec]) -> list[RunRecord]:
        """The records of ``specs``, in order (duplicates run once)."""
        missing = []
        for spec in dict.fromkeys(specs):
            if spec in self._memory:
                continue
            record = self.cache.get(spec) if self.cache is not None else None
            if record is not None:
                self._memory[spec] = record
                self.cached += 1
                self.on_done(1)
            else:
                missing.append(spec)
        if self.workers <= 1 or len(missing) <= 1:
            for spec in missing:
                self._store(spec, self._call(spec.execute, spec))
        else:
            self._run_parallel(missing)
        return [self._memory[spec] for spec in specs]

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

    def _run_parallel(self, specs: list[RunSpec]) -> None:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        pending: dict[Future, RunSpec] = {
            self._pool.submit(_execute_in_worker, spec): spec for spec in specs
        }
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    spec = pending.pop(future)
                    self._store(spec, self._call(future.result, spec))
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
