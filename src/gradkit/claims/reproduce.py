"""Run a selection of claims with a progress display and write the report."""

from __future__ import annotations

import contextvars
import functools
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import gradkit
from gradkit.bench.pipeline import machine_speed
from gradkit.claims import CLAIMS
from gradkit.claims.base import RunContext, apply_settlements
from gradkit.experiments import Executor, RunCache, RunRecord, RunSpec, evaluation_seeds
from gradkit.report import ReportEntry, write_report, write_search_audit

CONCURRENT_CLAIMS = 2
"""Claims run two at a time on the shared worker processes, so the tail of one claim's search
(a last run or two) does not leave a core idle."""


@dataclass
class ReportingExecutor:
    """A claim's view of the shared executor: reports each finished batch to ``on_done``."""

    executor: Executor
    on_done: Callable[[int], None]

    def run(self, specs: Sequence[RunSpec]) -> list[RunRecord]:
        records = self.executor.run(specs)
        self.on_done(len(specs))
        return records


VERDICT_STYLES = {
    "holds": "green",
    "does not hold": "red",
    "inconclusive": "yellow",
    "error": "bold red",
}


def run_claim(claim_id: str, ctx: RunContext) -> ReportEntry:
    """Run one claim; an exception becomes an ``error`` entry with its traceback's last line."""
    claim = CLAIMS[claim_id]
    started = time.perf_counter()
    try:
        # its own context: a claim's interval level (RunContext.settle) stays with it
        result = apply_settlements(contextvars.copy_context().run(claim.run, ctx), ctx.settlements)
    except Exception as error:  # a failing claim must not lose the others' results
        summary = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}"
        return ReportEntry(
            claim.id,
            claim.statement,
            claim.source,
            claim.criterion,
            "error",
            summary,
            time.perf_counter() - started,
        )
    return ReportEntry(
        claim.id,
        claim.statement,
        claim.source,
        claim.criterion,
        result.verdict.value,
        result.summary,
        time.perf_counter() - started,
        result.numbers,
        result.table,
        result.figure,
        claim.reported,
        claim.notes,
    )


def reproduce(
    claim_ids: list[str],
    scale: str,
    seeds: int,
    out: Path,
    console: Console | None = None,
    cache: Path | None = None,
    workers: int = 1,
    first_seed: int = 0,
    audit: bool = False,
) -> list[ReportEntry]:
    """Run ``claim_ids`` (each once; :data:`CONCURRENT_CLAIMS` at a time, except the ``timed``
    ones, which run alone after the others; reported in order) at ``scale`` with the
    evaluation seeds first_seed..first_seed+seeds-1, show progress (on a terminal, live bars;
    otherwise, as in a CI log, one line per finished claim), write the report to ``out`` and
    print the verdict table.

    Runs of the experiment protocol are read from / stored in ``cache`` (None: no cache) and
    executed on ``workers`` processes. ``audit``: also run every rate each search saw at the
    full budget and write ``search-audit.md`` beside the report. If interrupted, the claims
    finished so far are written as a partial report before the interruption propagates.
    """
    console = console or Console()
    claim_ids = list(dict.fromkeys(claim_ids))
    evaluation = evaluation_seeds(seeds, first_seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    speed = None if scale == "smoke" else machine_speed()  # measured before the claims load it
    started = time.perf_counter()
    entries: list[ReportEntry] = []
    audits: list[dict] = []
    columns = (
        TextColumn("{task.description:<36}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    executor = Executor(RunCache(cache) if cache is not None else None, workers=workers)
    claim_threads = ThreadPoolExecutor(CONCURRENT_CLAIMS)
    futures: list[Future] = []
    interrupted = False
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            overall = progress.add_task("all claims", total=len(claim_ids))

            def run_one(claim_id: str) -> ReportEntry:
                task = progress.add_task(claim_id, total=None)
                advance = functools.partial(progress.advance, task)
                ctx = RunContext(
                    scale,
                    evaluation,
                    on_plan=lambda units: progress.update(task, total=units),
                    on_advance=advance,
                    executor=ReportingExecutor(executor, advance),
                    audits=[] if audit else None,
                )
                entry = run_claim(claim_id, ctx)
                for row in ctx.audits or []:
                    audits.append({"claim": claim_id, **asdict(row), "agrees": row.agrees})
                progress.update(task, description=f"{claim_id}: {entry.verdict}")
                progress.advance(overall)
                if not console.is_terminal:  # no live display: one line per finished claim
                    finished = int(progress.tasks[overall].completed)
                    console.print(
                        f"[{finished}/{len(claim_ids)}] {claim_id}: {entry.verdict} "
                        f"({entry.seconds:.0f} s)",
                        markup=False,
                    )
                return entry

            # claims that time the machine run alone, after the others
            timed = [c for c in claim_ids if CLAIMS[c].timed]
            futures = [claim_threads.submit(run_one, c) for c in claim_ids if c not in timed]
            done = {entry.id: entry for entry in (future.result() for future in futures)}
            for claim_id in timed:
                futures.append(claim_threads.submit(run_one, claim_id))
                done[claim_id] = futures[-1].result()
            entries = [done[c] for c in claim_ids]
    except KeyboardInterrupt:
        interrupted = True
        entries = [f.result() for f in futures if f.done() and f.exception() is None]
        raise
    finally:
        claim_threads.shutdown(wait=False, cancel_futures=True)
        executor.close()
        torch.set_num_threads(threads)
        meta = {
            "version": gradkit.__version__,
            "torch": torch.__version__,
            "scale": scale,
            "seeds": evaluation,
            "elapsed_seconds": time.perf_counter() - started,
            **({"machine_backprop_epoch_seconds": speed} if speed is not None else {}),
            "runs_executed": executor.executed,
            "runs_from_cache": executor.cached,
        }
        if interrupted:
            meta["interrupted"] = f"after {len(entries)} of {len(claim_ids)} claims"
        paths = write_report(entries, out, meta)
        if audit:
            paths["audit"] = write_search_audit(audits, out)
    shown = f"seeds {evaluation[0]}..{evaluation[-1]}" if first_seed else f"{seeds} seeds"
    table = Table(title=f"gradkit reproduce ({scale} scale, {shown})")
    for column in ("claim", "verdict", "time", "result"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        style = VERDICT_STYLES.get(entry.verdict, "")
        table.add_row(
            entry.id,
            f"[{style}]{entry.verdict}[/]",
            f"{entry.seconds:.0f} s",
            (entry.summary.splitlines() or [""])[0],
        )
    console.print(table)
    console.print(
        f"Runs: {executor.executed} executed, {executor.cached} from the cache. "
        f"Report: {paths['html']}  (also {paths['markdown'].name}, {paths['json'].name})"
    )
    if audit:
        agree = sum(row["agrees"] for row in audits)
        console.print(
            f"Search audit: the choice is the full-budget grid's best in {agree} of "
            f"{len(audits)} searches ({paths['audit']})"
        )
    return entries
