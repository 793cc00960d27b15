"""Compression on the device of the tensor it serves: CPU always, CUDA when present (skipped
otherwise), NCCL when two GPUs are present."""

from __future__ import annotations

import pytest
import torch

from distributed_helpers import ddp_compressed, ddp_signum_vote, regression_problem
from gradkit.compress import DGC, QSGD, DeviceGenerators, ErrorFeedback, Sign, TopK
from gradkit.distributed import launch
from gradkit.sim import Cluster, Simulator

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
CODECS = {
    "sign": Sign,
    "qsgd-l2": lambda: QSGD(3, 64, "l2", seed=1),
    "qsgd-max": lambda: QSGD(1, 64, "max", seed=1),
    "topk": lambda: TopK(0.05),
    "dgc": lambda: DGC(0.05, momentum=0.9, clip_norm=1.0, world_size=2, seed=1),
    "ecq": lambda: ErrorFeedback(QSGD(1, 64, "max", seed=1), 1.0, 0.9),
    "topk-feedback": lambda: ErrorFeedback(TopK(0.05)),
}


def decoded(codec, grad):
    """(payload, what the receiver decodes) for one gradient."""
    payload = codec.compress(grad)
    if isinstance(codec, ErrorFeedback):
        return payload[0], payload[1]
    return payload, codec.decompress(payload)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(CODECS))
def test_every_codec_keeps_its_tensors_on_the_gradients_device(device, name):
    codec = CODECS[name]()
    for _ in range(3):  # stateful codecs create their state on the first call
        grad = torch.randn(300, 7, device=device)
        payload, out = decoded(codec, grad)
        assert {t.device.type for t in payload.tensors.values()} == {grad.device.type}
        assert out.device == grad.device and out.shape == grad.shape and out.dtype == grad.dtype
    state = codec.state_dict() if hasattr(codec, "state_dict") else {}
    for value in state.values():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            assert value.device == grad.device


@pytest.mark.parametrize("device", DEVICES)
def test_error_feedback_keeps_a_float64_gradients_precision(device):
    codec = ErrorFeedback(TopK(0.1))
    grad = torch.randn(50, dtype=torch.float64, device=device) * 1e-9 + 1.0
    _, sent = codec.compress(grad)
    assert codec.memory.dtype == torch.float64 and sent.dtype == torch.float64
    torch.testing.assert_close(sent + codec.memory, grad, rtol=0, atol=1e-15)  # nothing lost


@pytest.mark.parametrize("device", DEVICES)
def test_error_feedback_memory_of_a_bfloat16_gradient_is_float32(device):
    codec = ErrorFeedback(TopK(0.1))
    codec.compress(torch.randn(50, device=device).bfloat16())
    assert codec.memory.dtype == torch.float32 and codec.memory.device.type == device


def test_per_device_generators_draw_on_the_cpu_as_one_seeded_generator_did():
    """Replicas and saved runs keep their random streams: the CPU generator is seeded as a
    plain ``torch.Generator().manual_seed(seed)`` was."""
    generators = DeviceGenerators(7)
    reference = torch.Generator().manual_seed(7)
    drawn = torch.rand(5, generator=generators.on("cpu"))
    assert torch.equal(drawn, torch.rand(5, generator=reference))
    restored = DeviceGenerators(0)
    restored.load_state_dict(generators.state_dict())
    assert torch.equal(
        torch.rand(5, generator=restored.on("cpu")), torch.rand(5, generator=reference)
    )


def test_a_state_saved_before_per_device_generators_still_loads():
    qsgd = QSGD(1, seed=3)
    legacy = {"generator": torch.Generator().manual_seed(11).get_state()}
    qsgd.load_state_dict(legacy)
    expected = torch.rand(4, generator=torch.Generator().manual_seed(11))
    assert torch.equal(torch.rand(4, generator=qsgd.generators.on("cpu")), expected)


NCCL = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs two CUDA devices")


@NCCL
@pytest.mark.timeout(180)
def test_nccl_majority_vote_hook_gives_the_simulators_parameters():
    results = launch(ddp_signum_vote, 2, 3, 0.01, 0.9, 0.05, "cuda", backend="nccl")
    simulator = Simulator(
        "signum-vote", regression_problem(), Cluster(2), epochs=3, seed=3, lr=0.01,
        momentum=0.9, weight_decay=0.05,
    )  # fmt: skip
    simulator.run()
    for x in results:
        torch.testing.assert_close(x, simulator.workers[0].x, rtol=1e-10, atol=1e-10)


@NCCL
@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("ecq", {"levels": 1, "bucket_size": 4, "alpha": 1.0, "beta": 0.9}),
        ("dgc", {"density": 0.3, "momentum": 0.5, "clip_norm": 2.0, "warmup_steps": 2}),
    ],
)
def test_nccl_compression_hooks_keep_the_replicas_identical(kind, options):
    """CUDA generators draw other numbers than the CPU simulator's, so the replicas are checked
    against each other and against the start."""
    results = launch(ddp_compressed, 2, kind, 3, 0.05, options, "cuda", backend="nccl")
    (x0, bits0), (x1, bits1) = results
    torch.testing.assert_close(x0, x1, rtol=0, atol=0)
    start = torch.cat(
        [p.detach().reshape(-1) for p in regression_problem().build_model().parameters()]
    )
    assert torch.isfinite(x0).all() and not torch.equal(x0, start) and bits0 > 0 and bits1 > 0
