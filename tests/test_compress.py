"""Compressors against plain references, exact bit counts, and properties over shapes/scales."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradkit.compress import (
    DGC,
    QSGD,
    ErrorFeedback,
    Sign,
    TopK,
    majority_vote,
    pack_signs,
    sampled_threshold,
    unpack_signs,
)
from gradkit.optim import NonFiniteGradientError


def plain_pack(values: list[float]) -> list[int]:
    """Bit i of the code is 1 when values[i] >= 0; 8 per byte, most significant first."""
    out = []
    for start in range(0, len(values), 8):
        byte = 0
        for offset, value in enumerate(values[start : start + 8]):
            byte |= (value >= 0) << (7 - offset)
        out.append(byte)
    return out


@pytest.mark.parametrize("numel", [*range(0, 70), 1000, 4097])
def test_pack_matches_a_plain_packer_and_round_trips(numel):
    t = torch.randn(numel, generator=torch.Generator().manual_seed(numel))
    t[::5] = 0.0
    packed = pack_signs(t)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(numel / 8)
    assert packed.tolist() == plain_pack(t.tolist())
    assert torch.equal(unpack_signs(packed, numel), torch.where(t >= 0, 1.0, -1.0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_every_dtype_packs_and_unpacks_alike(dtype):
    """numpy packs float16/64; bfloat16 takes the torch path: same code, -0.0 codes +1."""
    t = torch.randn(203, generator=torch.Generator().manual_seed(1)).to(dtype)
    t[:3] = torch.tensor([0.0, -0.0, -1e-30])
    packed = pack_signs(t)
    assert packed.tolist() == plain_pack(t.float().tolist())
    signs = unpack_signs(packed, t.numel(), dtype)
    assert signs.dtype == dtype and torch.equal(signs, torch.where(t >= 0, 1.0, -1.0).to(dtype))


def test_unpack_into_a_given_buffer():
    t = torch.randn(21, generator=torch.Generator().manual_seed(2))
    out = torch.empty(21, dtype=torch.float64)
    assert unpack_signs(pack_signs(t), 21, out=out) is out
    assert torch.equal(out, torch.where(t >= 0, 1.0, -1.0).double())
    with pytest.raises(ValueError, match="21 contiguous elements"):
        unpack_signs(pack_signs(t), 21, out=torch.empty(22))


def test_pack_agrees_with_numpy_packbits_on_a_large_tensor():
    t = torch.randn(1_000_003, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(pack_signs(t).numpy(), np.packbits(t.numpy() >= 0))


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 7])
def test_majority_vote_matches_a_plain_vote(workers):
    gen = torch.Generator().manual_seed(workers)
    numel = 101
    codes = [torch.randn(numel, generator=gen) for _ in range(workers)]
    expected = []
    for i in range(numel):
        total = sum(1 if c[i] >= 0 else -1 for c in codes)
        expected.append(1.0 if total >= 0 else -1.0)  # a tie goes to +1
    assert majority_vote([pack_signs(c) for c in codes], numel).tolist() == expected


def test_unpack_and_vote_reject_malformed_codes():
    with pytest.raises(ValueError, match="1-D uint8"):
        unpack_signs(torch.zeros(3), 3)
    with pytest.raises(ValueError, match="does not fit"):
        unpack_signs(torch.zeros(1, dtype=torch.uint8), 9)
    with pytest.raises(ValueError, match="differ in length"):
        majority_vote([pack_signs(torch.ones(8)), pack_signs(torch.ones(16))], 8)


def test_qsgd_is_unbiased():
    """The mean of many quantizations approaches v within 5 standard errors; each entry's
    variance is at most (c/s)^2/4, so a biased rounding (e.g. always down) fails."""
    v = torch.randn(300, generator=torch.Generator().manual_seed(1))
    quantizer = QSGD(levels=2, bucket_size=100, seed=7)
    draws = 4000
    total = torch.zeros_like(v, dtype=torch.float64)
    for _ in range(draws):
        total += quantizer.decompress(quantizer.compress(v)).double()
    scale = torch.linalg.vector_norm(v.view(3, 100), dim=1).repeat_interleave(100).double()
    bound = 5 * (scale / quantizer.levels / 2) / math.sqrt(draws)
    assert bool(((total / draws - v.double()).abs() <= bound).all())


def test_qsgd_values_lie_on_the_level_grid_and_bits_are_exact():
    v = torch.randn(1000, generator=torch.Generator().manual_seed(2))
    quantizer = QSGD(levels=3, bucket_size=256, norm="max", seed=0)
    payload = quantizer.compress(v)
    assert payload.bits == 1000 * (1 + 2) + 32 * 4
    restored = quantizer.decompress(payload)
    scales = payload.tensors["scales"].repeat_interleave(256)[:1000]
    levels = restored / scales * 3
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-5)
    assert bool((levels.abs() <= 3 + 1e-5).all())


def test_qsgd_sends_zeros_for_a_zero_bucket_and_resumes_from_its_state():
    quantizer = QSGD(levels=4, bucket_size=4, seed=3)
    assert quantizer.decompress(quantizer.compress(torch.zeros(6))).tolist() == [0.0] * 6
    state = quantizer.state_dict()
    v = torch.randn(6)
    first = quantizer.decompress(quantizer.compress(v))
    quantizer.load_state_dict(state)
    assert torch.equal(quantizer.decompress(quantizer.compress(v)), first)


@pytest.mark.parametrize("compressor", [QSGD(2, 64, norm="max", seed=1), TopK(0.05), Sign()])
def test_error_feedback_with_alpha_beta_one_accounts_for_every_gradient(compressor):
    """sum of everything sent + the residual = sum of all gradients (alpha = beta = 1)."""
    gen = torch.Generator().manual_seed(5)
    feedback = ErrorFeedback(compressor, alpha=1.0, beta=1.0)
    sent_total = torch.zeros(200, dtype=torch.float64)
    grad_total = torch.zeros(200, dtype=torch.float64)
    for _ in range(30):
        g = torch.randn(200, generator=gen)
        _, sent = feedback.compress(g)
        sent_total += sent.double()
        grad_total += g.double()
    torch.testing.assert_close(sent_total + feedback.memory.double(), grad_total, rtol=0, atol=1e-4)


def test_error_feedback_follows_the_ecq_recursion():
    """h_{t+1} = beta h_t + (g_t - Q(g_t + alpha h_t)), written out with the same quantizer."""
    alpha, beta = 0.5, 0.9
    feedback = ErrorFeedback(QSGD(3, 32, seed=11), alpha, beta)
    oracle = QSGD(3, 32, seed=11)
    h = torch.zeros(64)
    gen = torch.Generator().manual_seed(3)
    for _ in range(10):
        g = torch.randn(64, generator=gen)
        _, sent = feedback.compress(g)
        expected_sent = oracle.decompress(oracle.compress(g + alpha * h))
        h = beta * h + (g - expected_sent)
        torch.testing.assert_close(sent, expected_sent)
        torch.testing.assert_close(feedback.memory, h)


def test_topk_selects_the_largest_entries_with_exact_bits():
    t = torch.tensor([0.1, -5.0, 0.3, 2.0, -0.2, 0.0, 4.0, -1.0])
    payload = TopK(0.3).compress(t)
    assert sorted(payload.tensors["indices"].tolist()) == [1, 3, 6]
    assert payload.bits == 3 * 64 + 32
    assert TopK(0.3).decompress(payload).tolist() == [0, -5.0, 0, 2.0, 0, 0, 4.0, 0]


def test_dgc_at_density_one_with_every_trick_off_is_momentum_sgd():
    dgc = DGC(1.0, momentum=0.9, factor_masking=False, warmup_steps=0, sampled=False)
    u = torch.zeros(50, dtype=torch.float64)
    gen = torch.Generator().manual_seed(9)
    for _ in range(20):
        g = torch.randn(50, generator=gen)
        u = 0.9 * u + g.double()
        torch.testing.assert_close(
            dgc.decompress(dgc.compress(g)).double(), u, rtol=1e-6, atol=1e-6
        )


def test_dgc_without_momentum_correction_keeps_what_it_did_not_send():
    """Gradient dropping: sum sent + accumulator = sum of gradients."""
    dgc = DGC(0.01, momentum_correction=False, warmup_steps=0, seed=1)
    sent_total, grad_total = torch.zeros(5000), torch.zeros(5000)
    gen = torch.Generator().manual_seed(4)
    for _ in range(10):
        g = torch.randn(5000, generator=gen)
        sent_total += dgc.decompress(dgc.compress(g))
        grad_total += g
    torch.testing.assert_close(sent_total + dgc.v, grad_total, rtol=0, atol=1e-4)


def test_dgc_masks_momentum_where_it_sent_and_warms_up():
    dgc = DGC(0.001, warmup=(0.25, 0.063), warmup_steps=2, seed=0)
    densities = []
    for _ in range(6):
        payload = dgc.compress(torch.randn(10_000))
        sent = payload.tensors["indices"].long()
        assert bool((dgc.u[sent] == 0).all()) and bool((dgc.v[sent] == 0).all())
        densities.append(payload.tensors["values"].numel() / 10_000)
    assert densities[0] == pytest.approx(0.25, rel=0.3) and densities[2] == pytest.approx(
        0.063, rel=0.3
    )
    assert densities[4] == pytest.approx(0.001, rel=0.3)


def test_sampled_threshold_selects_close_to_the_target_count():
    magnitude = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0)).abs()
    for seed in range(5):
        mask, _ = sampled_threshold(magnitude, 0.001, 0.01, torch.Generator().manual_seed(seed))
        assert 0.8 * 1000 <= int(mask.sum()) <= 1.3 * 1000


def test_dgc_state_dict_resumes_exactly():
    gen = torch.Generator().manual_seed(8)
    grads = [torch.randn(2000, generator=gen) for _ in range(6)]
    a = DGC(0.01, clip_norm=5.0, world_size=4, warmup_steps=1, seed=2)
    for g in grads[:3]:
        a.compress(g)
    b = DGC(0.01, clip_norm=5.0, world_size=4, warmup_steps=1, seed=99)
    b.load_state_dict(a.state_dict())
    for g in grads[3:]:
        assert torch.equal(a.decompress(a.compress(g)), b.decompress(b.compress(g)))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: QSGD(0), "levels must be an integer in"),
        (lambda: QSGD(4, bucket_size=0), "bucket_size"),
        (lambda: QSGD(4, norm="l1"), "norm must be"),
        (lambda: TopK(0.0), "density must be in"),
        (lambda: DGC(2.0), "density must be in"),
        (lambda: DGC(0.1, momentum=1.0), "momentum"),
        (lambda: ErrorFeedback(Sign(), alpha=2.0), "alpha must be in"),
    ],
)
def test_bad_settings_are_clear_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


COMPRESSORS = {
    "sign": Sign,
    "qsgd": lambda: QSGD(4, 16, seed=0),
    "qsgd-max": lambda: QSGD(2, 7, norm="max", seed=0),
    "topk": lambda: TopK(0.2),
    "dgc": lambda: DGC(0.2, warmup_steps=0, seed=0),
}


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(COMPRESSORS)),
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e30]),
    zeros=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_any_shape_and_scale_round_trips_finitely(name, shape, scale, zeros, seed):
    t = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale
    if zeros:
        t.view(-1)[::2] = 0
    compressor = COMPRESSORS[name]()
    payload = compressor.compress(t)
    restored = compressor.decompress(payload)
    assert restored.shape == t.shape and restored.dtype == t.dtype
    assert bool(torch.isfinite(restored).all())
    assert payload.bits > 0
    if name == "sign":
        assert torch.equal(restored, torch.where(t >= 0, 1.0, -1.0))
        assert payload.bits == t.numel()


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_input_is_a_clear_error(name, bad):
    t = torch.ones(10)
    t[3] = bad
    with pytest.raises(NonFiniteGradientError, match="NaN or Inf"):
        COMPRESSORS[name]().compress(t)


def test_compression_benchmarks_report_positive_times_against_their_baselines():
    from gradkit.bench.compress import bench_signs, bench_threshold

    rows = bench_signs(10_000, repeats=1) + bench_threshold(200_000, repeats=1)
    assert [r.baseline for r in rows] == ["numpy packbits+unpackbits", "fp32 copy", "torch.topk"]
    assert all(r.median_ms > 0 and r.baseline_ms > 0 for r in rows)
    assert rows[-1].note.startswith("count/target")
