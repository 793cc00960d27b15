"""Who talks to whom: the communication graphs of the decentralized algorithms and AD-PSGD's
bipartite labelling of the ranks."""

from __future__ import annotations

from typing import Literal

from gradkit.checks import InputError

Topology = Literal["ring", "complete"]
TOPOLOGIES: tuple[str, ...] = ("ring", "complete")


def neighbors(rank: int, world_size: int, topology: Topology) -> tuple[int, ...]:
    """Graph neighbours of ``rank``: ring (rank +- 1 mod n) or complete (every other rank)."""
    if topology == "ring":
        return tuple(sorted({(rank - 1) % world_size, (rank + 1) % world_size} - {rank}))
    if topology == "complete":
        return tuple(r for r in range(world_size) if r != rank)
    raise InputError(f"unknown topology {topology!r}; choose from {', '.join(TOPOLOGIES)}")


def is_active(rank: int) -> bool:
    """Bipartite labelling used by AD-PSGD: odd ranks are active (initiate averaging), even ranks
    passive (only respond), as in the stochastic-gradient-push reference."""
    return rank % 2 == 1


def check_bipartite(world_size: int, topology: Topology) -> None:
    """Raise unless every edge of the graph joins an active and a passive rank."""
    for rank in range(world_size):
        for peer in neighbors(rank, world_size, topology):
            if is_active(peer) == is_active(rank):
                raise InputError(
                    f"this algorithm needs a bipartite graph (odd ranks active, even passive); "
                    f"{topology} with {world_size} workers joins ranks {rank} and {peer}: use an "
                    f"even number of workers on a ring, or 2 workers"
                )
