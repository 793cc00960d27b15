"""Performance benchmarks: ratios against baselines measured in the same run."""

from gradkit.bench.optim import BenchRow, bench_optimizers, total_parameters

__all__ = ["BenchRow", "bench_optimizers", "total_parameters"]
