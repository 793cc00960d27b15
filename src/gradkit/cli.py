"""The ``gradkit`` command line: argument parsing and output only; the work lives in the library.

Errors in arguments print one line naming the argument and what is allowed, and exit with 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gradkit.checks import InputError

LIST_KINDS = ("claims", "optimizers", "algorithms", "tasks")
# the modules of gradkit.bench, each running and printing itself with report(console, options)
BENCH_KINDS = ("optim", "sim", "distributed", "compress", "hooks", "lbfgs", "pipeline")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(kind):
    """An argparse type: text parsed as ``kind`` and checked by :data:`gradkit.checks.POSITIVE`
    (an int by ``integer(1)``), the rules the library applies."""

    def parse(text: str):
        from gradkit.checks import POSITIVE, integer

        rule = integer(1) if kind is int else POSITIVE
        try:
            value = kind(text)
            rule("the value", value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rule.allowed}, got {text!r}") from None
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _directory(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a directory")
    return path


def prepare_output(path: Path, force: bool) -> Path:
    """Check ``path`` before any work starts: it must be creatable and writable, and must not
    already hold results unless ``force`` (then they are replaced). Raises ValueError."""
    held = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if held and not force:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise InputError(
            f"{path} already holds results ({shown}); choose another --out or pass --force "
            "to replace them"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".gradkit-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise InputError(f"cannot write to {path}: {error.strerror or error}") from error
    return path


def _factor(text: str) -> float:
    value = _positive(float)(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a slowdown factor >= 1, got {text!r}")
    return value


def _add_distributed_options(parser, algorithms) -> None:
    parser.add_argument(
        "--algo",
        choices=list(algorithms),
        metavar="NAME",
        help=f"distributed algorithm: {', '.join(algorithms)}",
    )
    parser.add_argument(
        "--slow-worker",
        type=_factor,
        default=1.0,
        metavar="FACTOR",
        help="make worker 0 FACTOR times slower at computing gradients",
    )
    parser.add_argument(
        "--param",
        type=_hyper_parameter,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an algorithm hyper-parameter, e.g. --param momentum=0.9 --param byzantine=2",
    )


def _hyper_parameter(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, {"true": True, "false": False}.get(value.lower(), value)


def _hyper(args) -> dict[str, object]:
    """The --param values, checked against the algorithm's hyper-parameters and their ranges
    before any work starts."""
    from gradkit.distributed import get_algorithm
    from gradkit.distributed.hyper import check_hyper

    params = dict(args.param)
    if "lr" in params:
        raise InputError("--param lr: give the learning rate with --lr")
    algorithm = get_algorithm(args.algo)
    check_hyper(algorithm.name, algorithm.program, params)
    return params


def _named(parser, flag: str, names, metavar: str, note: str = "", **options) -> None:
    """A flag taking one of ``names``, listed in its help (then ``note``)."""
    names = list(names)
    help_text = f"one of: {', '.join(names)}{note}"
    parser.add_argument(flag, choices=names, metavar=metavar, help=help_text, **options)


def _output_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--out", type=_directory, help=f"output directory (default {default})")
    parser.add_argument(
        "--force", action="store_true", help="replace the results an output directory holds"
    )


def _reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    from gradkit.claims import CLAIMS, SCALES

    parser.add_argument(
        "--claims",
        nargs="+",
        choices=list(CLAIMS),
        metavar="ID",
        help=f"claims to run (default: all): {', '.join(CLAIMS)}",
    )
    parser.add_argument(
        "--scale",
        choices=SCALES,
        default="quick",
        help="smoke (seconds, verdicts meaningless), quick (minutes, default) or full (hours)",
    )
    parser.add_argument(
        "--cache",
        type=_directory,
        default=None,
        help="directory of finished runs, reused on the next reproduce (default "
        "$GRADKIT_CACHE or ~/.cache/gradkit/runs)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="run everything afresh, store nothing"
    )
    parser.add_argument(
        "--workers",
        type=_positive(int),
        default=None,
        help="processes for independent runs (default: one per core)",
    )
    parser.add_argument(
        "--seeds", type=_positive(int), default=3, help="seeds per configuration (default 3)"
    )
    parser.add_argument(
        "--audit-search",
        action="store_true",
        help="also run every rate each search saw at the full budget on the tuning seeds and "
        "write search-audit.md: the search's choice beside the grid's best (costly)",
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        metavar="N",
        help="evaluation seeds N..N+seeds-1 (default 0), to replicate with fresh seeds; the "
        "tuning seeds (1000-1002) stay apart",
    )
    parser.add_argument(
        "--out",
        type=_directory,
        default=Path("gradkit-report"),
        help="output directory (default ./gradkit-report)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace the results an output directory holds"
    )


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from gradkit.distributed import ALGORITHMS
    from gradkit.optim import OPTIMIZERS
    from gradkit.tasks import TASKS
    from gradkit.tasks.training import PBQN

    _named(parser, "--task", TASKS, "TASK", required=True)
    parser.add_argument(
        "--optimizer",
        choices=[*OPTIMIZERS, PBQN],
        metavar="NAME",
        help=f"one of: {', '.join([*OPTIMIZERS, PBQN])} (single process)",
    )
    _add_distributed_options(parser, ALGORITHMS)
    parser.add_argument(
        "--timeout",
        type=_positive(float),
        default=20.0,
        help="seconds to wait for a peer before failing (with --algo; default 20)",
    )
    parser.add_argument(
        "--pipeline",
        type=_positive(int),
        metavar="K",
        help="train by DDG on K stages (with --optimizer; under torchrun: one stage per process)",
    )
    parser.add_argument(
        "--variant",
        choices=("stash", "recompute", "local"),
        help="DDG's delayed gradients: stash (the paper's, default) or recompute; or local: "
        "each stage on its own loss through a linear head (the baseline; one process)",
    )
    parser.add_argument(
        "--balance",
        choices=("parameters", "time"),
        help="DDG's stages get equal shares of the parameters (default) or of the time each "
        "layer takes on the first batch",
    )
    parser.add_argument(
        "--lr", type=_positive(float), help="learning rate (default: the optimizer's)"
    )
    parser.add_argument("--epochs", type=_positive(int), help="epochs (default: the task's)")
    parser.add_argument(
        "--batch-size", type=_positive(int), help="batch size (default: the task's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the model and the batches")
    _output_arguments(parser, "./gradkit-train/TASK-NAME")


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    from gradkit.distributed import ALGORITHMS
    from gradkit.distributed.topology import TOPOLOGIES
    from gradkit.tasks import TASKS

    _add_distributed_options(parser, ALGORITHMS)
    parser.add_argument("--workers", type=_positive(int), default=16, help="workers (default 16)")
    parser.add_argument(
        "--slow-link",
        type=_factor,
        default=1.0,
        metavar="FACTOR",
        help="make the link between workers 0 and 1 FACTOR times slower",
    )
    _named(parser, "--task", TASKS, "TASK", " (default mnist1d-mlp)", default="mnist1d-mlp")
    parser.add_argument("--epochs", type=_positive(float), default=5.0, help="epochs (default 5)")
    parser.add_argument(
        "--lr", type=_positive(float), help="learning rate (default: the algorithm's; 0.1 mostly)"
    )
    parser.add_argument(
        "--batch-size", type=_positive(int), default=32, help="per-worker batch (default 32)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of model, data and timing")
    parser.add_argument(
        "--jitter", type=float, default=0.0, help="lognormal sigma of compute times (default 0)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.005, help="per-message latency (default 0.005)"
    )
    parser.add_argument(
        "--bandwidth",
        type=_positive(float),
        default=1e6,
        help="bytes per time unit; one gradient costs 1 unit (default 1e6)",
    )
    parser.add_argument(
        "--topology", choices=TOPOLOGIES, default="ring", help="neighbour graph (default ring)"
    )
    parser.add_argument(
        "--dedicated-server",
        action="store_true",
        help="give the parameter server (easgd, async-sgd, dave-pg) a machine of its own "
        "(default: worker 0's)",
    )
    parser.add_argument(
        "--until",
        type=_positive(float),
        metavar="TIME",
        help="stop at this simulated time if the epochs are not done by then",
    )
    _output_arguments(parser, "./gradkit-sim/ALGO")


def _analyze_arguments(parser: argparse.ArgumentParser) -> None:
    from gradkit.tasks import TASKS

    parser.add_argument("probe", choices=["noise-stability", "compress", "jacobian"])
    _named(parser, "--task", TASKS, "TASK", required=True)
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="model.pt written by gradkit train (default: the model freshly initialised)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the model and the data")
    parser.add_argument(
        "--samples",
        type=_positive(int),
        help="inputs probed (default: noise-stability 500, compress 2000, jacobian 16)",
    )
    parser.add_argument(
        "--noise", type=_positive(float), default=0.1, help="noise-stability: relative noise"
    )
    parser.add_argument(
        "--tolerance",
        type=_positive(float),
        default=0.01,
        help="compress: train accuracy the compressed model may lose (default 0.01)",
    )
    _output_arguments(parser, "./gradkit-analyze/TASK")


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", choices=LIST_KINDS, help="what to list (default: all)")


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=BENCH_KINDS, help="which benchmark")
    parser.add_argument(
        "--params",
        type=_positive(float),
        help="millions of parameters (default 10; hooks: 25)",
    )
    parser.add_argument(
        "--rounds", type=_positive(int), help="timed rounds (default 30; hooks: 10)"
    )
    parser.add_argument(
        "--rate",
        default="1gbit",
        help="hooks: the emulated link's rate, as tc writes it (default 1gbit)",
    )
    parser.add_argument(
        "--workers",
        type=_positive(int),
        nargs="+",
        help="sim: simulated workers (default 16 64); distributed: process counts (default 2 4; "
        "DDP is compared on the first); "
        "pipeline: stages, one process each (default 2)",
    )
    parser.add_argument("--out", type=Path, help="also write the rows as JSON to this file")


COMMAND_HELP = {
    "reproduce": "run the notes' claims and write a report",
    "train": "train one task with one optimizer",
    "simulate": "simulate a distributed algorithm on one machine",
    "analyze": "noise stability, compression or the Jacobian spectrum of a task's model",
    "list": "list claims, optimizers, algorithms or tasks",
    "bench": "performance benchmarks",
}
ARGUMENTS = {
    "reproduce": _reproduce_arguments,
    "train": _train_arguments,
    "simulate": _simulate_arguments,
    "analyze": _analyze_arguments,
    "list": _list_arguments,
    "bench": _bench_arguments,
}
"""Each command's arguments; a command's builder imports what its choices need, so only the
command being run pays for its imports (``gradkit --help`` imports no part of the library)."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of ``command`` (every command's when None)."""
    parser = _Parser(prog="gradkit", description="Methods and claims of the ICML 2018 notes.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_text in COMMAND_HELP.items():
        sub = commands.add_parser(name, help=help_text)
        if command in (None, name):
            ARGUMENTS[name](sub)
    return parser


def _command_of(argv: list[str]) -> str:
    """The command ``argv`` names (its first word that is not an option), or "" if none."""
    return next((word for word in argv if not word.startswith("-")), "")


def _reproduce(args, console: Console) -> int:
    from gradkit.claims import CLAIMS
    from gradkit.claims.reproduce import reproduce
    from gradkit.experiments import default_cache_dir, evaluation_seeds
    from gradkit.experiments.executor import default_workers

    claim_ids = args.claims or list(CLAIMS)
    evaluation_seeds(args.seeds, args.first_seed)  # refused before anything is written
    prepare_output(args.out, args.force)
    cache = None if args.no_cache else (args.cache or default_cache_dir())
    workers = args.workers or default_workers()
    entries = reproduce(
        claim_ids,
        args.scale,
        args.seeds,
        args.out,
        console,
        cache,
        workers,
        args.first_seed,
        args.audit_search,
    )
    return 1 if any(e.verdict == "error" for e in entries) else 0


def _analyze(args, console: Console) -> int:
    from gradkit.report import analyze as probes
    from gradkit.tasks import get_task

    task = get_task(args.task)
    model, data = probes.load_model(task, args.seed, args.checkpoint)
    out = prepare_output(args.out or Path("gradkit-analyze") / args.task, args.force)
    samples = args.samples or {"noise-stability": 500, "compress": 2000, "jacobian": 16}[args.probe]
    if args.probe == "noise-stability":
        paths, result = probes.analyze_noise_stability(
            model, data, samples, args.noise, out, args.seed
        )
    elif args.probe == "compress":
        paths, result = probes.analyze_compression(
            model, data, samples, args.tolerance, out, args.seed
        )
    else:
        paths, result = probes.analyze_jacobian(model, data, samples, out)
    source = args.checkpoint or "fresh initialisation"
    console.print(f"{args.probe} of {args.task} ({source}):")
    for line in probes.summary_lines(args.probe, result):
        console.print(f"  {line}")
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _train(args, console: Console) -> int:
    from gradkit.tasks.training import PBQN, check_pbqn_options

    if (args.optimizer is None) == (args.algo is None):
        raise InputError("give exactly one of --optimizer (one process) or --algo (distributed)")
    if args.pipeline is None and (args.variant, args.balance) != (None, None):
        raise InputError("--variant and --balance choose how DDG trains: they need --pipeline K")
    args.variant, args.balance = args.variant or "stash", args.balance or "parameters"
    if args.algo is not None:
        if args.pipeline is not None:
            raise InputError("--pipeline trains with --optimizer, not with --algo")
        return _train_distributed(args, console)
    if args.pipeline is not None and "RANK" in os.environ:
        if args.variant == "local":
            raise InputError("--variant local trains in one process: run it without torchrun")
        return _train_pipeline_distributed(args, console)
    if args.param and args.optimizer != PBQN:
        raise InputError(
            "--param sets a distributed algorithm's hyper-parameters (with --algo) or PBQN's; "
            f"--optimizer {args.optimizer} takes its learning rate from --lr"
        )
    if args.optimizer == PBQN and args.lr is not None:
        raise InputError("--optimizer pbqn takes no --lr: its steps come from its line search")
    options = check_pbqn_options(dict(args.param or ()))
    from rich.progress import Progress

    from gradkit.report.training import write_training_outputs
    from gradkit.tasks import train

    out = prepare_output(
        args.out or Path("gradkit-train") / f"{args.task}-{args.optimizer}", args.force
    )
    with Progress(console=console) as progress:
        bar = progress.add_task(f"{args.task} / {args.optimizer}", total=None)
        result = train(
            args.task,
            args.optimizer,
            lr=args.lr,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            on_step=lambda step, total: progress.update(bar, completed=step, total=total),
            options=options,
            pipeline=args.pipeline,
            variant=args.variant,
            balance=args.balance,
        )
    paths = write_training_outputs(result, out)
    final = result.evals[-1]
    console.print(
        ("[red]diverged[/] " if result.diverged else "")
        + ", ".join(f"{k} {v:.4g}" for k, v in final.items() if k not in ("step", "epoch"))
        + f" after {final['epoch']:.2f} epochs ({result.seconds:.1f} s)"
    )
    console.print("Wrote " + ", ".join(str(p) for p in paths))
    return 0


def _train_pipeline_distributed(args, console: Console) -> int:
    import torch.distributed as dist
    from rich.progress import Progress

    from gradkit.distributed.rank import RankFailedError, join_torchrun, rank_run
    from gradkit.report.training import write_training_outputs
    from gradkit.tasks.pipeline_training import train_pipeline_rank

    out = args.out or Path("gradkit-train") / f"{args.task}-{args.optimizer}-ddg"
    if int(os.environ["RANK"]) == 0:
        prepare_output(out, args.force)
    join_torchrun(args.timeout)
    if dist.get_world_size() != args.pipeline:
        raise InputError(
            f"--pipeline {args.pipeline} needs {args.pipeline} processes; torchrun started "
            f"{dist.get_world_size()}"
        )
    try:
        with (
            rank_run(watch_peers=False),
            Progress(console=console, disable=dist.get_rank() != 0) as progress,
        ):
            bar = progress.add_task(f"{args.task}, DDG on {args.pipeline} stages", total=None)
            result = train_pipeline_rank(
                args.task, args.optimizer, lr=args.lr, epochs=args.epochs,
                batch_size=args.batch_size, seed=args.seed, variant=args.variant,
                balance=args.balance, timeout=args.timeout,
                on_step=lambda step, total: progress.update(bar, completed=step, total=total),
            )  # fmt: skip
    except RankFailedError as error:  # a stage died or stopped answering
        print(f"gradkit train: error: {error}", file=sys.stderr)
        return 1
    if result is not None:
        paths = write_training_outputs(result, out)
        final = result.evals[-1]
        console.print(
            ", ".join(f"{k} {v:.4g}" for k, v in final.items() if k not in ("step", "epoch"))
            + f" after {final['epoch']:.0f} epochs ({result.seconds:.1f} s)"
        )
        console.print("Wrote " + ", ".join(str(p) for p in paths))
    return 0


def _train_distributed(args, console: Console) -> int:
    import torch.distributed as dist
    from rich.progress import Progress

    from gradkit.distributed.rank import RankFailedError, join_torchrun, rank_run
    from gradkit.report.simulation import write_trace_outputs
    from gradkit.tasks.distributed import train_distributed

    if "RANK" not in os.environ:
        raise InputError(
            "--algo runs one process per worker: launch with torchrun, e.g. "
            "torchrun --nproc-per-node 4 -m gradkit train --algo adpsgd --task mnist1d-mlp"
        )
    hyper = _hyper(args)
    out = args.out or Path("gradkit-train") / f"{args.task}-{args.algo}"
    if int(os.environ["RANK"]) == 0:
        prepare_output(out, args.force)
    join_torchrun(args.timeout)
    rank = dist.get_rank()
    try:
        with rank_run(), Progress(console=console, disable=rank != 0) as progress:
            bar = progress.add_task(f"{args.algo}, rank 0 of {dist.get_world_size()}", total=None)
            trace = train_distributed(
                args.algo,
                args.task,
                epochs=args.epochs or 5,
                lr=args.lr,
                seed=args.seed,
                batch_size=args.batch_size,
                slowdown=args.slow_worker if rank == 0 else 1.0,
                timeout=args.timeout,
                **hyper,
                on_progress=lambda done, total: progress.update(bar, completed=done, total=total),
            )
            progress.update(bar, completed=1, total=1)  # asynchronous ranks stop at the budget
    except RankFailedError as error:  # a failed or timed-out collective, a lost peer, SIGTERM
        print(f"gradkit train: error: {error}", file=sys.stderr)
        return 1
    if rank == 0:
        paths = write_trace_outputs({args.algo: trace}, out, "wall seconds")
        _print_trace(console, trace, "s")
        console.print("Wrote " + ", ".join(str(p) for p in paths))
    return 0


def _print_trace(console: Console, trace, time_unit: str) -> None:
    final = trace.evals[-1]
    metrics = ", ".join(
        f"{k} {v:.4g}" for k, v in final.items() if k not in ("step", "epoch", "time")
    )
    console.print(
        ("[red]diverged[/] " if trace.diverged else "")
        + f"{trace.algorithm} on {trace.workers} workers: {metrics} after "
        + f"{final['epoch']:.2f} epochs, {trace.duration:.4g} {time_unit}; "
        + f"{trace.total_bytes / 1e6:.2f} MB sent, mean staleness {trace.mean_staleness():.2f}"
    )


def _simulate(args, console: Console) -> int:
    from rich.progress import Progress

    from gradkit.report.simulation import write_trace_outputs
    from gradkit.sim import Cluster, ComputeModel, NetworkModel
    from gradkit.tasks.distributed import simulate_task

    if args.algo is None:
        raise InputError("--algo is required")
    hyper = _hyper(args)
    out = prepare_output(args.out or Path("gradkit-sim") / args.algo, args.force)
    cluster = Cluster(
        args.workers,
        ComputeModel(
            jitter=args.jitter, slowdown={0: args.slow_worker} if args.slow_worker > 1 else {}
        ),
        NetworkModel(
            latency=args.latency,
            bandwidth=args.bandwidth,
            topology=args.topology,
            link_slowdown={(0, 1): args.slow_link} if args.slow_link > 1 else {},
        ),
        dedicated_server=args.dedicated_server,
    )
    with Progress(console=console) as progress:
        bar = progress.add_task(f"{args.algo} on {args.workers} workers", total=None)
        trace = simulate_task(
            args.algo,
            args.task,
            cluster,
            epochs=args.epochs,
            lr=args.lr,
            seed=args.seed,
            batch_size=args.batch_size,
            on_progress=lambda done, total: progress.update(bar, completed=done, total=total),
            until=args.until,
            **hyper,
        )
    paths = write_trace_outputs({args.algo: trace}, out, "simulated time")
    _print_trace(console, trace, "time units")
    console.print("Wrote " + ", ".join(str(p) for p in paths))
    return 0


def _list(args, console: Console) -> int:
    from gradkit.claims import CLAIMS
    from gradkit.distributed import ALGORITHMS
    from gradkit.optim import OPTIMIZERS
    from gradkit.tasks import TASKS

    listings = {
        "claims": [(c.id, c.statement) for c in CLAIMS.values()],
        "optimizers": [
            (o.name, f"{o.description}; default lr {o.default_lr:g}") for o in OPTIMIZERS.values()
        ]
        + [
            (
                "pbqn",
                "progressive-batching L-BFGS (gradkit.optim.ProgressiveBatchLBFGS): draws its own "
                "growing samples from the training set; no learning rate (Armijo line search)",
            )
        ],
        "algorithms": [(a.name, a.description) for a in ALGORITHMS.values()],
        "tasks": [(t.name, t.description) for t in TASKS.values()],
    }
    for kind in [args.kind] if args.kind else LIST_KINDS:
        table = Table(title=kind)
        table.add_column("name", no_wrap=True)
        table.add_column("description")
        for name, text in listings[kind]:
            table.add_row(name, text)
        console.print(table)
    return 0


def _bench(args, console: Console) -> int:
    import importlib

    from gradkit.bench.report import BenchOptions

    workers = tuple(args.workers) if args.workers else None
    options = BenchOptions(args.params, args.rounds, workers, args.rate)
    rows = importlib.import_module(f"gradkit.bench.{args.kind}").report(console, options)
    if args.out:
        args.out.write_text(json.dumps([vars(r) for r in rows], indent=2))
    return 0


COMMANDS = {
    "reproduce": _reproduce,
    "train": _train,
    "analyze": _analyze,
    "simulate": _simulate,
    "list": _list,
    "bench": _bench,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_command_of(argv)).parse_args(argv)
    console = Console()
    try:
        return COMMANDS[args.command](args, console)
    except InputError as error:  # bad input; any other exception is a bug, with its traceback
        print(f"gradkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
