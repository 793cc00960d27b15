"""Start a local process group (one process per rank, 127.0.0.1, a free port) and run a
function in every rank, watching for ranks that die or hang."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import signal
import socket
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from gradkit.checks import InputError


class WorkerFailedError(RuntimeError):
    """A rank raised, was killed, or the group did not finish in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def init_process_group(backend: str, **options: Any) -> None:
    """``torch.distributed.init_process_group(backend, **options)``, after importing
    ``torch.distributed.nn``.

    That module's functions take ``group=group.WORLD`` as a default argument, evaluated at its
    first import. Imported after the default group exists (``torch.optim`` imports it lazily,
    through ``torch._dynamo``), it keeps that group alive after ``destroy_process_group``; gloo's
    worker threads then outlive the interpreter, and one that frees its last work's tensors
    during shutdown aborts the process (SIGABRT) after a successful run."""
    import torch.distributed.nn  # noqa: F401  (its defaults must capture no group)

    dist.init_process_group(backend, **options)


def _rank_main(rank, world_size, port, backend, comm_timeout, fn, args, results) -> None:
    torch.set_num_threads(1)
    try:
        if backend == "nccl":
            torch.cuda.set_device(rank % torch.cuda.device_count())
        init_process_group(
            backend,
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=comm_timeout),
        )
        try:
            value = fn(*args)
        finally:
            if dist.is_initialized():  # fn may leave the group itself (rank_run does)
                dist.destroy_process_group()
        # plain pickle: tensors travel by value, not as shared memory that dies with the rank
        results.put((rank, "ok", pickle.dumps(value)))
    except BaseException:
        results.put((rank, "error", traceback.format_exc()))
        raise SystemExit(1) from None


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def launch(
    fn: Callable[..., Any],
    world_size: int,
    *args: Any,
    backend: str = "gloo",
    timeout: float = 300.0,
    comm_timeout: float | None = None,
    on_start: Callable[[list[mp.Process]], None] | None = None,
) -> list[Any]:
    """Run ``fn(*args)`` in ``world_size`` spawned processes forming a process group, and return
    their results in rank order. ``fn`` must be importable (defined at module level).

    Each process uses one thread and a process-group timeout of ``comm_timeout`` seconds (by
    default the run's ``timeout``: every collective may wait as long as the run may last; a rank
    that dies is noticed by its exit, not by a collective's timeout). If any rank raises or
    dies, the others are terminated and :class:`WorkerFailedError` names the rank and its error;
    so does a group still running after ``timeout`` seconds. ``on_start`` receives the started
    processes (used by tests to kill one).
    """
    if not isinstance(world_size, int) or world_size < 1:
        raise InputError(f"world_size must be a positive integer, got {world_size!r}")
    comm_timeout = timeout if comm_timeout is None else comm_timeout
    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [
        context.Process(
            target=_rank_main,
            args=(rank, world_size, port, backend, comm_timeout, fn, args, results),
            name=f"gradkit-rank-{rank}",
            daemon=True,
        )
        for rank in range(world_size)
    ]
    env_before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        for process in processes:
            process.start()
    finally:
        if env_before is None:
            os.environ.pop("OMP_NUM_THREADS")
        else:
            os.environ["OMP_NUM_THREADS"] = env_before
    if on_start is not None:
        on_start(processes)
    values: dict[int, Any] = {}
    errors: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(values) < world_size:
            try:
                rank, status, value = results.get(timeout=0.1)
                (values if status == "ok" else errors)[rank] = value
            except queue.Empty:
                pass
            failed = errors or any(
                p.exitcode not in (None, 0) and r not in values for r, p in enumerate(processes)
            )
            if failed:
                _drain(results, values, errors, seconds=1.0)
                raise WorkerFailedError(_failure_message(processes, values, errors))
            if time.monotonic() > deadline:
                raise WorkerFailedError(
                    f"the process group did not finish within {timeout:g} s; ranks without a "
                    f"result: {sorted(set(range(world_size)) - set(values))}"
                )
        return [pickle.loads(values[rank]) for rank in range(world_size)]
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=2)
            if process.is_alive():  # stopped or ignoring SIGTERM
                process.kill()
                process.join()


def _failure_message(processes: list, values: dict, errors: dict[int, str]) -> str:
    """Name the root cause first: a rank that died without reporting (killed, crashed) explains
    the connection errors of the others."""
    silent = {
        r: _describe_exit(p.exitcode)
        for r, p in enumerate(processes)
        if p.exitcode not in (None, 0) and r not in values and r not in errors
    }
    if silent:
        rank = min(silent)
        message = f"rank {rank} failed: {silent[rank]}"
        others = {**{r: e for r, e in silent.items() if r != rank}, **errors}
    else:
        rank = min(errors)
        message = f"rank {rank} failed: {errors[rank].strip()}"
        others = {r: e for r, e in errors.items() if r != rank}
    hung = [r for r, p in enumerate(processes) if p.exitcode is None and r not in values]
    if hung:
        message += f"\nranks still running without a result (hung or waiting): {hung}"
    if others:
        last_lines = "; ".join(
            f"rank {r}: {e.strip().splitlines()[-1]}" for r, e in sorted(others.items())
        )
        message += f"\nthen: {last_lines}"
    return message


def _drain(results, values: dict, errors: dict, seconds: float) -> None:
    """Collect whatever other ranks report within ``seconds`` (the first error is often a
    consequence of another rank's death)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            rank, status, value = results.get(timeout=0.05)
            (values if status == "ok" else errors)[rank] = value
        except queue.Empty:
            pass
