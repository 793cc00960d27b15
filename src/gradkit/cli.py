"""The ``gradkit`` command line: argument parsing and output only; the work lives in the library.

Errors in arguments print one line naming the argument and what is allowed, and exit with 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

LIST_KINDS = ("claims", "optimizers", "tasks")
BENCH_KINDS = ("optim",)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive {kind.__name__}, got {text!r}"
            ) from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _directory(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a directory")
    return path


def build_parser() -> argparse.ArgumentParser:
    from gradkit.claims import CLAIMS, SCALES
    from gradkit.optim import OPTIMIZERS
    from gradkit.tasks import TASKS

    parser = _Parser(prog="gradkit", description="Methods and claims of the ICML 2018 notes.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    rep = commands.add_parser("reproduce", help="run the notes' claims and write a report")
    rep.add_argument(
        "--claims",
        nargs="+",
        choices=list(CLAIMS),
        metavar="ID",
        help=f"claims to run (default: all): {', '.join(CLAIMS)}",
    )
    rep.add_argument("--scale", choices=SCALES, default="quick", help="quick (minutes) or full")
    rep.add_argument(
        "--seeds", type=_positive(int), default=3, help="seeds per configuration (default 3)"
    )
    rep.add_argument(
        "--out",
        type=_directory,
        default=Path("gradkit-report"),
        help="output directory (default ./gradkit-report)",
    )

    tr = commands.add_parser("train", help="train one task with one optimizer")
    tr.add_argument(
        "--task",
        required=True,
        choices=list(TASKS),
        metavar="TASK",
        help=f"one of: {', '.join(TASKS)}",
    )
    tr.add_argument(
        "--optimizer",
        required=True,
        choices=list(OPTIMIZERS),
        metavar="NAME",
        help=f"one of: {', '.join(OPTIMIZERS)}",
    )
    tr.add_argument("--lr", type=_positive(float), help="learning rate (default: the optimizer's)")
    tr.add_argument("--epochs", type=_positive(int), help="epochs (default: the task's)")
    tr.add_argument("--batch-size", type=_positive(int), help="batch size (default: the task's)")
    tr.add_argument("--seed", type=int, default=0, help="seed of the model and the batches")
    tr.add_argument(
        "--out", type=_directory, help="output directory (default ./gradkit-train/TASK-NAME)"
    )

    ls = commands.add_parser("list", help="list claims, optimizers or tasks")
    ls.add_argument("kind", nargs="?", choices=LIST_KINDS, help="what to list (default: all)")

    bench = commands.add_parser("bench", help="performance benchmarks")
    bench.add_argument("kind", choices=BENCH_KINDS, help="which benchmark")
    bench.add_argument(
        "--params", type=_positive(float), default=10.0, help="millions of parameters (default 10)"
    )
    bench.add_argument(
        "--rounds", type=_positive(int), default=30, help="timed rounds (default 30)"
    )
    bench.add_argument("--out", type=Path, help="also write the rows as JSON to this file")
    return parser


def _reproduce(args, console: Console) -> int:
    from gradkit.claims import CLAIMS
    from gradkit.claims.reproduce import reproduce

    claim_ids = args.claims or list(CLAIMS)
    entries = reproduce(claim_ids, args.scale, args.seeds, args.out, console)
    return 1 if any(e.verdict == "error" for e in entries) else 0


def _train(args, console: Console) -> int:
    from rich.progress import Progress

    from gradkit.report.training import write_training_outputs
    from gradkit.tasks import train

    out = args.out or Path("gradkit-train") / f"{args.task}-{args.optimizer}"
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


def _list(args, console: Console) -> int:
    from gradkit.claims import CLAIMS
    from gradkit.optim import OPTIMIZERS
    from gradkit.tasks import TASKS

    listings = {
        "claims": [(c.id, c.statement) for c in CLAIMS.values()],
        "optimizers": [
            (o.name, f"{o.description}; default lr {o.default_lr:g}") for o in OPTIMIZERS.values()
        ],
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
    from gradkit.bench import bench_optimizers, total_parameters

    console.print(
        f"Timing optimizer steps on {total_parameters(args.params) / 1e6:.1f}M parameters, "
        f"{args.rounds} rounds..."
    )
    rows = bench_optimizers(args.params, args.rounds)
    table = Table(title="median step time vs torch.optim.Adam(foreach=True), same run")
    for column in ("optimizer", "median ms", "ratio to Adam", "goal"):
        table.add_column(column)
    for row in rows:
        goal = (
            ""
            if row.goal is None
            else f"<= {row.goal}: " + ("[green]met[/]" if row.meets_goal else "[red]missed[/]")
        )
        table.add_row(row.name, f"{row.median_ms:.2f}", f"{row.ratio:.2f}", goal)
    console.print(table)
    if args.out:
        args.out.write_text(json.dumps([vars(r) for r in rows], indent=2))
    return 0


COMMANDS = {"reproduce": _reproduce, "train": _train, "list": _list, "bench": _bench}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    try:
        return COMMANDS[args.command](args, console)
    except (ValueError, OSError) as error:
        print(f"gradkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
