"""The parameter server's state and the rule that applies a push, one implementation for both
drivers (the simulator, and the server rank's service thread in real runs).

- rule ``add``: s <- s + t (EASGD's centre; DAve-PG's average of iterates);
- rule ``sgd``: s <- s - step(n) t at the n-th update (asynchronous SGD: the server applies each
  gradient at once, whatever its staleness), then s <- prox(s, step(n)) if a ``prox`` is given
  (naive asynchronous proximal gradient).

The server counts its updates n and records, for each one, the staleness of what it applied:
the updates made between the pusher's last pull and this push. With imposed ``delays`` a pull
returns the iterate the next update reads, X_{m - d_m} for m = n + 1 (X_1 the start), from a
ring buffer of past states; then a worker that pulls, computes and pushes with nobody pushing
in between makes update m from exactly the gradient of X_{m - d_m}, and its staleness is d_m.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from gradkit.checks import InputError
from gradkit.distributed.delays import DelayProfile

RULES = ("add", "sgd")


class ParameterServer:
    """State ``state`` (a flat tensor), ``updates`` applied so far, and ``staleness`` per
    update when the pushes are the run's updates (``record``; EASGD's elastic pushes are not:
    its workers' own steps are). ``step(n)`` is rule ``sgd``'s step at update n; ``delays`` and
    ``capacity`` (the run's most updates) set up imposed delays."""

    def __init__(
        self,
        start: Tensor,
        rule: str = "add",
        step: Callable[[int], float] | None = None,
        delays: DelayProfile | None = None,
        capacity: int = 0,
        record: bool = True,
        prox: Callable[[Tensor, float], Tensor] | None = None,
    ) -> None:
        if rule not in RULES:
            raise InputError(f"unknown server rule {rule!r}; choose from {', '.join(RULES)}")
        if rule == "sgd" and step is None:
            raise InputError("the sgd rule needs a step schedule step(n)")
        if delays is not None and (not isinstance(capacity, int) or capacity < 1):
            raise InputError(f"imposed delays need the run's number of updates, got {capacity!r}")
        self.state = start.clone()
        self.rule, self.step, self.delays, self.record = rule, step, delays, record
        self.prox = prox
        self.updates = 0
        self.staleness: list[int] = []
        self._pulled_at: dict[int, int] = {}  # rank -> version it last read
        if delays is not None:
            self._ring = start.new_empty((delays.reach(capacity) + 1, start.numel()))
            self._ring[0] = start.flatten()

    def pull(self, rank: int) -> Tensor:
        """A copy of what ``rank`` should compute on: the state, or under imposed delays the
        iterate the next update reads."""
        if self.delays is None:
            self._pulled_at[rank] = self.updates
            return self.state.clone()
        delay = self.delays(self.updates + 1)
        if delay >= len(self._ring):
            raise RuntimeError(
                f"update {self.updates + 1} reads {delay} updates back, beyond the "
                f"{len(self._ring) - 1} kept for a run of at most its capacity of updates"
            )
        version = self.updates - delay
        self._pulled_at[rank] = version
        return self._ring[version % len(self._ring)].reshape(self.state.shape).clone()

    def push(self, rank: int, tensor: Tensor, reply: bool = False) -> Tensor:
        """Apply ``tensor`` by the rule as update n = updates + 1; returns the new state. With
        ``reply`` the pusher receives that state, which counts as its next read."""
        self.updates += 1
        if self.rule == "add":
            self.state.add_(tensor)
        else:
            step = self.step(self.updates)
            self.state.add_(tensor, alpha=-step)
            if self.prox is not None:
                self.state.copy_(self.prox(self.state, step))
        if self.record:
            self.staleness.append(self.updates - 1 - self._pulled_at.get(rank, 0))
        if self.delays is not None:
            self._ring[self.updates % len(self._ring)] = self.state.flatten()
        if reply:
            self._pulled_at[rank] = self.updates
        return self.state
