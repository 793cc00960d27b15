"""Compression kernels against baselines measured in the same run (medians over repeats).

- 1-bit signs: pack + unpack of n floats vs ``numpy.packbits``/``unpackbits`` doing the same
  (signs to bits and back to +1/-1 floats) and vs a plain float32 copy (bandwidth floor).
- DGC threshold selection vs ``torch.topk`` at density 0.1%, with the selected count.
- Real gloo collectives (2 processes): fp32 all-reduce vs the payloads of majority-vote signs
  (all-to-all + all-gather of packed bits), ECQ (ternary bit planes, all-gather) and DGC
  (all-gather of values and indices).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console

from gradkit.bench.report import BenchOptions, rows_table
from gradkit.compress import DGC, QSGD, pack_signs, sampled_threshold, unpack_signs
from gradkit.distributed.launch import launch

GOAL_NUMPY = 1.0  # pack+unpack throughput >= numpy's
GOAL_COPY = 0.3  # and >= 0.3x of a plain copy
GOAL_TOPK = 5.0  # DGC threshold selection >= 5x faster than torch.topk


@dataclass
class CompressBenchRow:
    name: str
    numel: int
    median_ms: float
    baseline: str
    baseline_ms: float
    note: str = ""

    @property
    def speedup(self) -> float:
        return self.baseline_ms / self.median_ms


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def bench_signs(numel: int, repeats: int = 7, threads: int | None = None):
    """Rows for packing and unpacking ``numel`` signs, at ``threads`` torch threads (default:
    as set); numpy's packbits is single-threaded."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        rows = _sign_rows(numel, repeats)
    finally:
        torch.set_num_threads(before)
    if threads is not None:
        for row in rows:
            row.note = f"{threads} thread" + ("s" if threads > 1 else "")
    return rows


def _sign_rows(numel: int, repeats: int) -> list[CompressBenchRow]:
    t = torch.randn(numel, generator=torch.Generator().manual_seed(0))
    array = t.numpy()

    def ours():
        unpack_signs(pack_signs(t), numel)

    def numpy_pair():
        np.unpackbits(np.packbits(array >= 0), count=numel).astype(np.float32) * 2 - 1

    mine = _median_ms(ours, repeats)
    numpy_ms = _median_ms(numpy_pair, repeats)
    copy_ms = _median_ms(t.clone, repeats)
    return [
        CompressBenchRow("sign pack+unpack", numel, mine, "numpy packbits+unpackbits", numpy_ms),
        CompressBenchRow("sign pack+unpack", numel, mine, "fp32 copy", copy_ms),
    ]


def bench_threshold(numel: int = 25_000_000, density: float = 0.001, repeats: int = 5):
    magnitude = torch.randn(numel, generator=torch.Generator().manual_seed(1)).abs()
    generator = torch.Generator().manual_seed(2)
    k = round(density * numel)
    counts = []

    def ours():
        mask, _ = sampled_threshold(magnitude, density, 0.01, generator)
        counts.append(int(torch.count_nonzero(mask)))

    mine = _median_ms(ours, repeats)
    topk_ms = _median_ms(lambda: magnitude.topk(k, sorted=False), repeats)
    ratio = statistics.median(counts) / k
    return [
        CompressBenchRow(
            "DGC sampled threshold", numel, mine, "torch.topk", topk_ms, f"count/target {ratio:.3f}"
        )
    ]


def _collective_times(numel: int, repeats: int) -> dict[str, float]:
    """In each rank: median ms of the four exchanges of one gradient of ``numel`` floats."""
    n = dist.get_world_size()
    g = torch.randn(numel, generator=torch.Generator().manual_seed(dist.get_rank()))
    packed = pack_signs(g)
    chunk = -(-packed.numel() // n)
    padded = torch.cat([packed, packed.new_zeros(n * chunk - packed.numel())]).view(n, chunk)
    planes = QSGD(1, 512, "max", seed=0).compress(g).tensors
    sparse = DGC(0.001, warmup_steps=0, seed=0).compress(g).tensors

    def fp32():
        dist.all_reduce(g.clone())

    def vote():
        out = torch.empty_like(padded)
        dist.all_to_all_single(out, padded)
        gathered = [torch.empty(chunk, dtype=torch.uint8) for _ in range(n)]
        dist.all_gather(gathered, out[0])

    def gather(tensors, variable=False):
        """All-gather each tensor; variable-size ones after an all-gather of the counts,
        padded to the largest (as gradkit's compressed programs do)."""

        def run():
            if variable:
                count = torch.tensor([tensors["values"].numel()])
                counts = [torch.empty_like(count) for _ in range(n)]
                dist.all_gather(counts, count)
                top = int(max(counts))
            for t in tensors.values():
                if variable:
                    t = torch.cat([t, t.new_zeros(top - t.numel())])
                dist.all_gather([torch.empty_like(t) for _ in range(n)], t)

        return run

    results = {}
    for name, fn in (
        ("fp32 all-reduce", fp32),
        ("majority-vote signs", vote),
        ("ECQ ternary", gather(planes)),
        ("DGC 0.1%", gather(sparse, variable=True)),
    ):
        dist.barrier()
        results[name] = _median_ms(fn, repeats)
    return results


def bench_collectives(
    sizes=(1_000_000, 10_000_000, 25_000_000), processes: int = 2, repeats: int = 5
):
    rows = []
    for numel in sizes:
        times = launch(_collective_times, processes, numel, repeats, timeout=600)[0]
        base = times["fp32 all-reduce"]
        for name, ms in times.items():
            rows.append(CompressBenchRow(f"gloo {name}", numel, ms, "fp32 all-reduce", base))
    return rows


def bench_compression(collectives: bool = True) -> list[CompressBenchRow]:
    rows = bench_signs(1_000_000) + bench_signs(25_000_000) + bench_signs(25_000_000, threads=1)
    rows += bench_threshold()
    return rows + (bench_collectives() if collectives else [])


def report(console: Console, options: BenchOptions) -> list:
    """Time sign packing, DGC selection and collectives; print the table."""
    console.print("Timing sign packing, DGC selection and gloo collectives (2 processes)...")
    rows = bench_compression()
    console.print(
        rows_table(
            f"compression kernels (goals: signs >= {GOAL_NUMPY:g}x numpy and >= {GOAL_COPY:g}x "
            f"copy; DGC selection >= {GOAL_TOPK:g}x torch.topk)",
            ("measure", "elements", "median ms", "baseline", "baseline ms", "speedup", "note"),
            [
                (r.name, f"{r.numel:,}", f"{r.median_ms:.2f}", r.baseline,
                 f"{r.baseline_ms:.2f}", f"{r.speedup:.2f}x", r.note)
                for r in rows
            ],
        )
    )  # fmt: skip
    return rows
