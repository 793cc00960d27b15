"""Local losses: the baseline DDG is measured against (greedy, DNI-like decoupling).

The model, an ``nn.Sequential``, is cut into K consecutive stages as for :class:`DDG`. Every
stage but the last gets an auxiliary head, and each stage learns from its own loss only: with
h_0 = x and h_k = f_k(h_(k-1); w_k),

    (w_k, v_k) <- (w_k, v_k) - lr * grad_(w_k, v_k) loss(head_k(h_k; v_k), y),   h_(k-1) fixed,

and the last stage on loss(h_K, y). No gradient crosses a cut, so no stage waits for another
(no backward locking), but the lower stages never learn what the upper ones need: Huo et al.
(ICML 2018) cite this family (DNI and related) as degrading when networks are deep. K = 1 is
plain backpropagation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from gradkit.checks import InputError
from gradkit.model_parallel.ddg import OptimizerFactory
from gradkit.model_parallel.split import split_sequential


class LocalLosses:
    """Train ``model`` (an ``nn.Sequential``) on ``stages`` stages balanced by parameter count,
    or cut before ``split_points``, each stage on its own local loss. ``optimizer`` builds each
    stage's optimizer from its parameters and its head's; ``loss_fn(output, target)`` is every
    stage's loss.

    ``heads``: one module per stage but the last, mapping that stage's output to the model's
    output space. Without them, ``example`` (a batch of inputs) sizes the default heads: a
    flatten and a linear map to the width of the model's output (a classifier's logits),
    created with torch's random state on the example's device and dtype. The example runs
    in eval mode without gradients, so no running statistic changes.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: OptimizerFactory,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        stages: int | None = None,
        split_points: Sequence[int] | None = None,
        heads: Sequence[nn.Module] | None = None,
        example: Tensor | None = None,
    ):
        if stages is None and split_points is None:
            stages = 1
        self.parts = split_sequential(model, stages, split_points)
        if heads is None:
            if example is None and len(self.parts) > 1:
                raise InputError("give heads, or an example batch to size the default heads")
            heads = default_heads(self.parts, example) if len(self.parts) > 1 else []
        heads = list(heads)
        if len(heads) != len(self.parts) - 1:
            raise InputError(
                f"{len(self.parts)} stages need {len(self.parts) - 1} heads, got {len(heads)}"
            )
        self.heads = heads
        self.optimizers = [
            optimizer([*part.parameters(), *(head.parameters() if head else [])])
            for part, head in zip(self.parts, [*heads, None], strict=True)
        ]
        self.model, self.loss_fn = model, loss_fn

    @property
    def num_stages(self) -> int:
        return len(self.parts)

    def step(self, inputs: Tensor, targets: Tensor) -> float:
        """One iteration on the batch (``inputs``, ``targets``): every stage forwards the
        previous stage's output, detached, and steps on its local loss. Returns the last
        stage's loss (the model's, at the weights before this step)."""
        h = inputs
        for part, head, optimizer in zip(self.parts, [*self.heads, None], self.optimizers,
                                         strict=True):  # fmt: skip
            out = part(h.detach())
            loss = self.loss_fn(out if head is None else head(out), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            h = out
        return loss.item()


def default_heads(parts: Sequence[nn.Sequential], example: Tensor) -> list[nn.Module]:
    """A flatten and a linear map from each stage's output (but the last's) to the width of
    the model's output, sized by one forward of ``example`` in eval mode without gradients."""
    widths, modes = [], [part.training for part in parts]
    with torch.no_grad():
        h = example
        for part in parts:
            part.eval()
            h = part(h)
            widths.append(h[0].numel())
    for part, mode in zip(parts, modes, strict=True):
        part.train(mode)
    return [
        nn.Sequential(nn.Flatten(), nn.Linear(width, h.shape[-1])).to(example.device, h.dtype)
        for width in widths[:-1]
    ]
