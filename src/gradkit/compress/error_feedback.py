"""Error feedback: a small stateful memory around any compressor (ECQ-SGD's form)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gradkit.checks import InputError
from gradkit.compress.compressors import Compressor
from gradkit.compress.payload import Payload
from gradkit.compress.signs import check_finite


class ErrorFeedback:
    r"""Compress the compensated gradient and remember what was not sent (Wu et al., ECQ-SGD):

    .. math::
        \hat g_t = Q(g_t + \alpha h_t), \qquad h_{t+1} = \beta h_t + (g_t - \hat g_t),
        \qquad h_0 = 0.

    With alpha = beta = 1 this is classic error feedback, h <- (g + h) - Q(g + h), and
    sum_t ghat_t + h_T = sum_t g_t exactly. ``h`` lives on the gradient's device in its dtype,
    float32 at least (a bfloat16 memory would round away the small residuals it exists to keep),
    and is saved by ``state_dict``.
    """

    def __init__(self, compressor: Compressor, alpha: float = 1.0, beta: float = 1.0):
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not (isinstance(value, int | float) and 0 <= value <= 1):
                raise InputError(f"{name} must be in [0, 1], got {value!r}")
        self.compressor, self.alpha, self.beta = compressor, alpha, beta
        self.memory: Tensor | None = None

    def compress(self, g: Tensor) -> tuple[Payload, Tensor]:
        """(payload of Q(g + alpha h), its decompressed value ghat); updates h."""
        check_finite(g, "gradient")
        dtype = torch.promote_types(g.dtype, torch.float32)
        if self.memory is None:
            self.memory = torch.zeros(g.shape, dtype=dtype, device=g.device)
        elif self.memory.shape != g.shape:
            raise InputError(
                f"gradient shape {tuple(g.shape)} differs from the memory's "
                f"{tuple(self.memory.shape)}"
            )
        wide = g.detach().to(self.memory.dtype)
        compensated = torch.add(wide, self.memory, alpha=self.alpha)
        if hasattr(self.compressor, "quantize"):  # the value without decoding the payload
            payload, sent = self.compressor.quantize(compensated, check=False)
        else:
            payload = self.compressor.compress(compensated)
            sent = self.compressor.decompress(payload)
        sent = sent.to(self.memory.dtype)
        if self.alpha == self.beta == 1:  # h <- (g + h) - ghat, one pass
            torch.sub(compensated, sent, out=self.memory)
        else:
            self.memory.mul_(self.beta).add_(wide).sub_(sent)
        return payload, sent.to(g.dtype)

    def state_dict(self) -> dict[str, Any]:
        """alpha, beta, the memory h, and the wrapped compressor's state if it has one."""
        state = {"alpha": self.alpha, "beta": self.beta, "memory": self.memory}
        if hasattr(self.compressor, "state_dict"):
            state["compressor"] = self.compressor.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.alpha, self.beta = state["alpha"], state["beta"]
        self.memory = None if state["memory"] is None else state["memory"].clone()
        if "compressor" in state:
            self.compressor.load_state_dict(state["compressor"])
