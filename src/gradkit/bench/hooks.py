"""DDP training steps with gradkit's communication hooks against plain DDP (fp32 all-reduce):
2 processes, gloo, one thread each, an MLP of about 25M parameters, on loopback and on an
emulated slow link.

The slow link is real: the benchmark re-runs itself inside a fresh network namespace
(``unshare --net``, ``ip link set lo up``) whose loopback is shaped by
``tc qdisc add dev lo root tbf rate RATE burst 64kb latency 50ms``. Both processes' traffic
goes through that one queue, so each direction gets about half of RATE.

Each candidate trains its own copy of the model; candidates alternate in a shuffled order every
round (the same order on both ranks) and the figure is the median step time. Next to each
measured step, the simulator's cost model predicts it: the compute-only step (DDP under
``no_sync``, measured) plus :class:`~gradkit.sim.NetworkModel`'s time for the operations the
hook actually sent (recorded through its ``on_operation``), for links of the emulated rate.

The slow-link check runs the slow-network claim's algorithms for real (AllReduce SGD and
AD-PSGD through :class:`~gradkit.distributed.TorchComm`, 2 processes, the mnist1d MLP) and
simulates the same runs with measured compute times and links of the emulated rate: seconds per
epoch, real against simulated.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from rich.console import Console
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gradkit.bench.report import BenchOptions, rows_table
from gradkit.bench.timing import interleaved_medians
from gradkit.checks import InputError
from gradkit.distributed import TorchComm
from gradkit.distributed.launch import launch
from gradkit.sim import Cluster, ComputeModel, NetworkModel, Simulator
from gradkit.tasks.distributed import task_problem

BATCH = 16
BASELINE = "DDP fp32 all-reduce"
GOALS = {"majority vote": 5.0, "ECQ ternary": 3.0, "DGC 0.1%": 10.0}  # at 1 Gbit/s
SLOW_LINK = "1gbit"
CHECK_TASK, CHECK_EPOCHS, CHECK_LR = "mnist1d-mlp", 3, 0.05
CHECK_ALGORITHMS = ("allreduce", "adpsgd")  # the slow-network claim's, on 2 processes
NETEM = "tbf rate {rate} burst 64kb latency 50ms"


@dataclass
class HookBenchRow:
    link: str
    candidate: str
    step_ms: float
    speedup: float  # the baseline's step time / this step time, same run
    predicted_ms: float | None
    note: str = ""


def _model(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
        nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1),
    )  # fmt: skip


def width_for(params_millions: float) -> int:
    """The width of the 3-hidden-layer MLP with about that many parameters (3 w^2)."""
    return max(8, round((params_millions * 1e6 / 3) ** 0.5))


def _hook_states():
    from gradkit.distributed.hooks import (
        DGCState,
        ECQState,
        SignVoteState,
        compressed_hook,
        signum_vote_hook,
    )

    return {
        "majority vote": (lambda m: SignVoteState(m, momentum=0.9), signum_vote_hook),
        "ECQ ternary": (lambda m: ECQState(m, levels=1, bucket_size=512), compressed_hook),
        "DGC 0.1%": (lambda m: DGCState(m, density=0.001, warmup_steps=0), compressed_hook),
    }


def _step(
    model: nn.Module, optimizer, inputs, targets, sync: bool = True, log: list | None = None
) -> Callable[[], None]:
    def step():
        if log is not None:
            log.clear()  # it keeps the operations of the last step
        optimizer.zero_grad(set_to_none=True)
        if sync:
            nn.functional.mse_loss(model(inputs), targets).backward()
        else:
            with model.no_sync():
                nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()

    return step


def _rank_steps(width: int, rounds: int) -> dict:
    """In each rank: median seconds per training step of every candidate, and the operations
    (kind, bytes) each hook sent in one step."""
    generator = torch.Generator().manual_seed(dist.get_rank())
    inputs = torch.randn(BATCH, width, generator=generator)
    targets = torch.randn(BATCH, 1, generator=generator)
    steps, sent = {}, {}
    plain = DistributedDataParallel(_model(width))
    plain_optimizer = torch.optim.SGD(plain.parameters(), lr=1e-3)
    steps[BASELINE] = _step(plain, plain_optimizer, inputs, targets)
    steps["compute only"] = _step(plain, plain_optimizer, inputs, targets, sync=False)
    for name, (make_state, hook) in _hook_states().items():
        ddp = DistributedDataParallel(_model(width))
        state = make_state(ddp.module)
        ddp.register_comm_hook(state, hook)
        log: list[tuple[str, int]] = []
        state.on_operation = lambda op, log=log: log.append((type(op).__name__, op.payload_bytes))
        sent[name] = log
        optimizer = torch.optim.SGD(ddp.parameters(), lr=1e-3)
        steps[name] = _step(ddp, optimizer, inputs, targets, log=log)
    return {"seconds": interleaved_medians(steps, rounds, warmup=2), "operations": sent}


def _predicted(network: NetworkModel, n: int, compute: float, operations) -> float:
    cost = {"AllGather": network.all_gather, "AllToAll": network.all_to_all}
    return compute + sum(cost[kind](n, nbytes) for kind, nbytes in operations)


def measure(link: str, params_millions: float, rounds: int, bandwidth: float | None) -> list:
    width = width_for(params_millions)
    result = launch(_rank_steps, 2, width, rounds, timeout=1800, comm_timeout=300)[0]
    seconds, operations = result["seconds"], result["operations"]
    base = seconds[BASELINE]
    network = NetworkModel(latency=1e-4, bandwidth=bandwidth) if bandwidth else None
    parameters = sum(p.numel() for p in _model(width).parameters())
    rows = []
    for name, value in seconds.items():
        predicted = None
        if network is not None and name != "compute only":
            if name == BASELINE:
                predicted = seconds["compute only"] + network.all_reduce(2, 4 * parameters)
            else:
                predicted = _predicted(network, 2, seconds["compute only"], operations[name])
        goal = GOALS.get(name) if bandwidth else None
        note = f"{parameters / 1e6:.1f}M parameters" if name == BASELINE else ""
        if goal is not None:
            note = f"goal >= {goal:g}x: {'met' if base / value >= goal else 'missed'}"
        rows.append(
            HookBenchRow(
                link,
                name,
                value * 1e3,
                base / value,
                None if predicted is None else predicted * 1e3,
                note,
            )
        )
    return rows


def _rank_epoch_seconds(algorithm: str) -> float:
    problem = task_problem(CHECK_TASK, seed=0)
    trace = TorchComm(algorithm, problem, epochs=CHECK_EPOCHS, lr=CHECK_LR).run()
    return trace.duration / CHECK_EPOCHS


def slow_link_check(link: str, bandwidth: float | None) -> list[HookBenchRow]:
    """Seconds per epoch of each algorithm for real, and simulated on links of ``bandwidth``
    bytes/s with the compute times measured (one thread, as the real ranks)."""
    real = {a: launch(_rank_epoch_seconds, 2, a, timeout=600)[0] for a in CHECK_ALGORITHMS}
    simulated = {}
    if bandwidth is not None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for algorithm in CHECK_ALGORITHMS:
                network = NetworkModel(latency=1e-4, bandwidth=bandwidth)
                cluster = Cluster(2, ComputeModel(measured=True), network)
                problem = task_problem(CHECK_TASK, seed=0)
                trace = Simulator(
                    algorithm, problem, cluster, epochs=CHECK_EPOCHS, lr=CHECK_LR
                ).run()
                simulated[algorithm] = trace.duration / CHECK_EPOCHS
        finally:
            torch.set_num_threads(threads)
    base = real[CHECK_ALGORITHMS[0]]
    rows = []
    for algorithm, seconds in real.items():
        predicted = simulated.get(algorithm)
        note = f"{CHECK_TASK}, 2 processes"
        if predicted is not None:
            speedup = simulated[CHECK_ALGORITHMS[0]] / predicted
            note += f"; simulated speedup {speedup:.2f}x"
        rows.append(
            HookBenchRow(
                link,
                f"{algorithm} epoch",
                seconds * 1e3,
                base / seconds,
                None if predicted is None else predicted * 1e3,
                note,
            )
        )
    return rows


def rate_bits(rate: str) -> float:
    """Bits per second of a tc rate such as ``1gbit``, ``100mbit`` or ``500kbit``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(kbit|mbit|gbit)", rate)
    if match is None or float(match[1]) <= 0:
        raise InputError(f"--rate must look like 1gbit, 100mbit or 500kbit, got {rate!r}")
    return float(match[1]) * {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}[match[2]]


def measure_shaped(rate: str, params_millions: float, rounds: int) -> list | str:
    """The benchmark inside a network namespace whose loopback is shaped to ``rate``; a string
    saying why when this machine cannot do that (not root, no unshare/ip/tc)."""
    missing = [tool for tool in ("unshare", "ip", "tc") if shutil.which(tool) is None]
    if missing:
        return f"slow link skipped: {', '.join(missing)} not found"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        inner = (
            f"ip link set lo mtu 1500 up && tc qdisc add dev lo root {NETEM.format(rate=rate)} && "
            f"exec {sys.executable} -m gradkit.bench.hooks --rate {rate} "
            f"--params {params_millions} --rounds {rounds} --out {out}"
        )
        done = subprocess.run(
            ["unshare", "--net", "sh", "-c", inner], capture_output=True, text=True
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return f"slow link skipped: the shaped namespace failed ({last})"
        return [HookBenchRow(**row) for row in json.loads(out.read_text())]


def bench_hooks(params_millions: float = 25.0, rounds: int = 10, rate: str = SLOW_LINK):
    """Rows for loopback and for the shaped link, and a note if the latter was skipped."""
    rate_bits(rate)
    rows = measure("loopback", params_millions, rounds, None)
    rows += slow_link_check("loopback", None)
    shaped = measure_shaped(rate, params_millions, rounds)
    if isinstance(shaped, str):
        return rows, shaped
    return rows + shaped, None


def report(console: Console, options: BenchOptions) -> list:
    """DDP steps with each hook against fp32 all-reduce, on loopback and on a shaped link;
    print the table (and why the shaped link was skipped, where it was)."""
    params, rounds = options.params or 25.0, options.rounds or 10
    console.print(
        f"DDP steps with each hook vs fp32 all-reduce: 2 processes, {params:g}M parameters, "
        f"{rounds} rounds, on loopback and on a {options.rate} link in a network namespace..."
    )
    rows, skipped = bench_hooks(params, rounds, options.rate)
    console.print(
        rows_table(
            "DDP communication hooks (gloo, one thread per process)",
            ("link", "step", "median ms", "speedup vs DDP", "simulator predicts", "note"),
            [
                (r.link, r.candidate, f"{r.step_ms:.0f}", f"{r.speedup:.2f}x",
                 "" if r.predicted_ms is None else f"{r.predicted_ms:.0f} ms", r.note)
                for r in rows
            ],
        )
    )  # fmt: skip
    if skipped:
        console.print(f"[yellow]{skipped}[/]")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Entry point inside the shaped namespace: measure and write the rows as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", required=True)
    parser.add_argument("--params", type=float, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    # two senders share the shaped queue: each link gets half the rate, in bytes per second
    bandwidth = rate_bits(args.rate) / 8 / 2
    rows = measure(args.rate, args.params, args.rounds, bandwidth)
    rows += slow_link_check(args.rate, bandwidth)
    args.out.write_text(json.dumps([asdict(r) for r in rows]))


if __name__ == "__main__":
    main()
