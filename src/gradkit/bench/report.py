"""What `gradkit bench` hands each benchmark, and the table every benchmark prints itself."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.table import Table


@dataclass(frozen=True)
class BenchOptions:
    """The command line's choices; None leaves a benchmark its own default."""

    params: float | None = None  # millions of parameters
    rounds: int | None = None  # timed rounds
    workers: tuple[int, ...] | None = None  # simulated workers, processes or stages
    rate: str = "1gbit"  # an emulated link's rate, as tc writes it


def rows_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def goal_cell(goal: object, met: bool | None) -> str:
    """ "<goal>: met" (green) or "missed" (red); empty where the row has no goal."""
    return "" if met is None else f"{goal}: " + ("[green]met[/]" if met else "[red]missed[/]")
