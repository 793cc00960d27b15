"""Random generators for randomised compressors: one per device, all seeded alike."""

from __future__ import annotations

from typing import Any

import torch


class DeviceGenerators:
    """One ``torch.Generator`` per device, each seeded with ``seed``, created on first use.

    Random draws must be made on the device of the tensor they serve (a CPU draw for a CUDA
    gradient costs a copy, and NCCL rejects CPU tensors). Replicas that seed alike and run on the
    same kind of device draw the same numbers; a CUDA stream differs from the CPU stream.
    """

    def __init__(self, seed: int):
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def on(self, device: torch.device | str) -> torch.Generator:
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def state_dict(self) -> dict[str, Any]:
        """The CPU generator's state under ``generator`` (the form saved before per-device
        generators existed) and every device's under ``devices``."""
        state = {"generator": self.on("cpu").get_state()}
        state["devices"] = {str(d): g.get_state() for d, g in self._generators.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for device, generator_state in state.get("devices", {"cpu": state["generator"]}).items():
            self.on(device).set_state(generator_state)
