"""Shampoo, GGT, full-matrix AdaGrad and ``matrix_power`` against plain float64 references
written from the papers' formulas, and against torch's optimizers where Shampoo only grafts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradkit.optim import GGT, FullMatrixAdaGrad, Shampoo
from gradkit.optim.roots import matrix_power

RTOL = 1e-10
ATOL = 1e-12


def gradient_steps(shapes, steps, seed=0, scale=1.0):
    """``steps`` lists of random float64 gradients, one per shape."""
    rng = np.random.default_rng(seed)
    return [[scale * rng.normal(size=shape) for shape in shapes] for _ in range(steps)]


def run(make_optimizer, initial, steps):
    """Drive a gradkit/torch optimizer with given gradients; the parameters after every step."""
    params = [torch.nn.Parameter(torch.tensor(x, dtype=torch.float64)) for x in initial]
    optimizer = make_optimizer(params)
    trajectory = []
    for grads in steps:
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    return trajectory, optimizer, params


def assert_trajectories_close(ours, reference, rtol=RTOL, atol=ATOL):
    assert len(ours) == len(reference) > 0
    for step, (a, b) in enumerate(zip(ours, reference, strict=True), start=1):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"step {step}, p{i}")


def sym_power(a, exponent):
    """a^exponent for a symmetric positive definite float64 matrix, by eigendecomposition."""
    values, vectors = np.linalg.eigh(a)
    return (vectors * values**exponent) @ vectors.T


def algorithm1(w0, grads, lr, eps, momentum=0.0, interval=1, start=0):
    """Shampoo's Algorithm 1 for a matrix, with heavy-ball momentum on the preconditioned
    direction; roots refreshed at each of the steps start+1 .. start+interval and every
    ``interval`` steps after."""
    m, n = w0.shape
    w = w0.copy()
    left, right = eps * np.eye(m), eps * np.eye(n)
    left_root, right_root = eps**-0.25 * np.eye(m), eps**-0.25 * np.eye(n)
    d = np.zeros_like(w0)
    out = []
    for t, g in enumerate(grads, start=1):
        left = left + g @ g.T
        right = right + g.T @ g
        d = momentum * d + g
        if t > start:
            if t - start <= interval or (t - start - 1) % interval == 0:
                left_root, right_root = sym_power(left, -0.25), sym_power(right, -0.25)
            w = w - lr * left_root @ d @ right_root
        else:
            w = w - lr * d
        out.append(w.copy())
    return out


def unfold(x, i):
    """mat_i(x): dimension i as rows, every other dimension flattened into columns."""
    return np.moveaxis(x, i, 0).reshape(x.shape[i], -1)


def mode_product(x, matrix, i):
    """x ×_i matrix: ``matrix`` applied to every dimension-i fibre of x."""
    return np.moveaxis(np.tensordot(matrix, x, axes=([1], [i])), 0, i)


def shampoo_reference(
    w0,
    grads,
    lr,
    eps,
    momentum=0.0,
    interval=1,
    start=0,
    exponent=None,
    grafting=None,
    graft_eps=1e-8,
    graft_beta2=0.999,
    decay=0.0,
):
    """Algorithm 2 for an order-k tensor (the diagonal rule for k <= 1), with grafting and
    decoupled weight decay. Returns the trajectory and, per step, (Shampoo direction or None
    before ``start``, graft step)."""
    k = w0.ndim
    power = -1 / (2 * max(k, 1)) if exponent is None else exponent
    w = w0.copy()
    stats = [eps * np.eye(n) for n in w0.shape]
    roots = [eps**power * np.eye(n) for n in w0.shape]
    diagonal = np.zeros_like(w0)
    d = np.zeros_like(w0)
    adam_m, adam_v, sum_sq = np.zeros_like(w0), np.zeros_like(w0), np.zeros_like(w0)
    trajectory, parts = [], []
    for t, g in enumerate(grads, start=1):
        d = momentum * d + g
        if k <= 1:
            diagonal = diagonal + g * g
        else:
            stats = [s + unfold(g, i) @ unfold(g, i).T for i, s in enumerate(stats)]
        if grafting == "adagrad":
            sum_sq = sum_sq + g * g
            graft = d / (np.sqrt(sum_sq) + graft_eps)
        elif grafting == "adam":
            adam_m = momentum * adam_m + (1 - momentum) * g
            adam_v = graft_beta2 * adam_v + (1 - graft_beta2) * g * g
            m_hat = adam_m / (1 - momentum**t)
            v_hat = adam_v / (1 - graft_beta2**t)
            graft = m_hat / (np.sqrt(v_hat) + graft_eps)
        else:
            graft = d
        direction = None
        if t > start:
            if k <= 1:
                direction = d * (eps + diagonal) ** power
            else:
                if t - start <= interval or (t - start - 1) % interval == 0:
                    roots = [sym_power(s, power) for s in stats]
                direction = d
                for i, root in enumerate(roots):
                    direction = mode_product(direction, root, i)
            step = direction
            if grafting is not None:
                step = direction * np.linalg.norm(graft) / np.linalg.norm(direction)
        else:
            step = graft
        w = w * (1 - lr * decay) - lr * step
        trajectory.append(w.copy())
        parts.append((direction, graft))
    return trajectory, parts


def single(trajectory):
    return [[w] for w in trajectory]


W0 = np.random.default_rng(1).normal(size=(5, 3))


@pytest.mark.parametrize(
    ("momentum", "interval", "start"), [(0.0, 1, 0), (0.9, 1, 0), (0.0, 3, 2), (0.9, 3, 2)]
)
def test_shampoo_matrix_matches_algorithm1(momentum, interval, start):
    grads = [g for (g,) in gradient_steps([(5, 3)], 10)]
    ours, _, _ = run(
        lambda ps: Shampoo(
            ps, lr=0.1, momentum=momentum, epsilon=1e-3, update_interval=interval, start_step=start
        ),
        [W0],
        [[g] for g in grads],
    )
    reference = algorithm1(W0, grads, 0.1, 1e-3, momentum, interval, start)
    assert_trajectories_close(ours, single(reference))


@pytest.mark.parametrize("exponent", [None, -0.25])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_shampoo_order3_tensor_matches_algorithm2(exponent, momentum):
    shape = (3, 4, 2)
    w0 = np.random.default_rng(2).normal(size=shape)
    grads = [g for (g,) in gradient_steps([shape], 8, seed=3)]
    ours, _, _ = run(
        lambda ps: Shampoo(ps, lr=0.05, momentum=momentum, epsilon=1e-3, exponent=exponent),
        [w0],
        [[g] for g in grads],
    )
    reference, _ = shampoo_reference(w0, grads, 0.05, 1e-3, momentum, exponent=exponent)
    assert_trajectories_close(ours, single(reference))


def test_default_order3_exponent_is_minus_one_sixth():
    shape = (3, 4, 2)
    w0 = np.zeros(shape)
    grads = [g for (g,) in gradient_steps([shape], 4, seed=4)]
    ours, _, _ = run(lambda ps: Shampoo(ps, lr=0.1, momentum=0.0), [w0], [[g] for g in grads])
    explicit, _, _ = run(
        lambda ps: Shampoo(ps, lr=0.1, momentum=0.0, exponent=-1 / 6), [w0], [[g] for g in grads]
    )
    assert_trajectories_close(ours, explicit, rtol=0, atol=0)


@pytest.mark.parametrize(("interval", "start"), [(1, 0), (3, 2)])
def test_order2_tensor_path_is_algorithm1(interval, start):
    grads = [g for (g,) in gradient_steps([(5, 3)], 10, seed=5)]
    generic, _ = shampoo_reference(W0, grads, 0.1, 1e-3, 0.9, interval, start)
    matrix = algorithm1(W0, grads, 0.1, 1e-3, 0.9, interval, start)
    assert_trajectories_close(single(generic), single(matrix), rtol=1e-12, atol=1e-14)
    ours, _, _ = run(
        lambda ps: Shampoo(
            ps, lr=0.1, momentum=0.9, epsilon=1e-3, update_interval=interval, start_step=start
        ),
        [W0],
        [[g] for g in grads],
    )
    assert_trajectories_close(ours, single(generic))


def test_long_dimensions_are_cut_into_independent_blocks():
    grads = [g for (g,) in gradient_steps([(5, 3)], 8, seed=6)]
    ours, _, _ = run(
        lambda ps: Shampoo(ps, lr=0.1, momentum=0.9, epsilon=1e-3, max_dim=2),
        [W0],
        [[g] for g in grads],
    )
    expected = [np.empty_like(W0) for _ in grads]
    for rows in (slice(0, 2), slice(2, 4), slice(4, 5)):
        for cols in (slice(0, 2), slice(2, 3)):
            block = algorithm1(W0[rows, cols], [g[rows, cols] for g in grads], 0.1, 1e-3, 0.9)
            for full, part in zip(expected, block, strict=True):
                full[rows, cols] = part
    assert_trajectories_close(ours, single(expected))
    unblocked, _, _ = run(
        lambda ps: Shampoo(ps, lr=0.1, momentum=0.9, epsilon=1e-3), [W0], [[g] for g in grads]
    )
    assert not np.allclose(unblocked[-1][0], ours[-1][0], rtol=1e-3)


def test_order3_tensor_blocks_along_every_dimension():
    shape = (3, 5, 2)
    w0 = np.random.default_rng(7).normal(size=shape)
    grads = [g for (g,) in gradient_steps([shape], 6, seed=8)]
    ours, _, _ = run(
        lambda ps: Shampoo(ps, lr=0.1, momentum=0.0, epsilon=1e-3, max_dim=2),
        [w0],
        [[g] for g in grads],
    )
    expected = [np.empty_like(w0) for _ in grads]
    for a in (slice(0, 2), slice(2, 3)):
        for b in (slice(0, 2), slice(2, 4), slice(4, 5)):
            index = (a, b, slice(0, 2))
            block, _ = shampoo_reference(w0[index], [g[index] for g in grads], 0.1, 1e-3)
            for full, part in zip(expected, block, strict=True):
                full[index] = part
    assert_trajectories_close(ours, single(expected))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_vectors_and_scalars_use_the_diagonal_rule(momentum):
    shapes = [(6,), ()]
    initial = [np.linspace(-1, 1, 6), np.array(0.5)]
    steps = gradient_steps(shapes, 10, seed=9)
    ours, _, _ = run(
        lambda ps: Shampoo(ps, lr=0.1, momentum=momentum, epsilon=1e-3), initial, steps
    )
    expected = []
    for x0, grads in zip(initial, zip(*steps, strict=True), strict=True):
        w, d, total = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
        trajectory = []
        for g in grads:
            d = momentum * d + g
            total = total + g * g
            w = w - 0.1 * d / np.sqrt(1e-3 + total)
            trajectory.append(w.copy())
        expected.append(trajectory)
    assert_trajectories_close(ours, [list(pair) for pair in zip(*expected, strict=True)])


def test_weight_decay_is_decoupled():
    shapes = [(5, 3), (3,)]
    initial = [W0, np.array([1.0, -2.0, 0.5])]
    steps = gradient_steps(shapes, 8, seed=10)
    ours, _, _ = run(
        lambda ps: Shampoo(ps, lr=0.1, momentum=0.9, epsilon=1e-3, weight_decay=0.3),
        initial,
        steps,
    )
    columns = []
    for x0, grads in zip(initial, zip(*steps, strict=True), strict=True):
        trajectory, _ = shampoo_reference(x0, list(grads), 0.1, 1e-3, 0.9, decay=0.3)
        columns.append(trajectory)
    assert_trajectories_close(ours, [list(pair) for pair in zip(*columns, strict=True)])


GRAFT_SHAPES = [(4, 3), (5,), (2, 3, 2)]
GRAFT_INITIAL = [np.random.default_rng(11).normal(size=s) for s in GRAFT_SHAPES]


@pytest.mark.parametrize(
    ("grafting", "momentum", "oracle"),
    [
        ("adagrad", 0.0, lambda ps: torch.optim.Adagrad(ps, lr=0.1, eps=1e-6)),
        ("adam", 0.0, lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.0, 0.99), eps=1e-6)),
        ("adam", 0.9, lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.9, 0.99), eps=1e-6)),
        ("sgd", 0.9, lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
        (None, 0.9, lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
        (None, 0.0, lambda ps: torch.optim.SGD(ps, lr=0.1)),
    ],
)
def test_before_start_step_shampoo_is_its_graft(grafting, momentum, oracle):
    steps = gradient_steps(GRAFT_SHAPES, 12, seed=12)
    ours, _, _ = run(
        lambda ps: Shampoo(
            ps,
            lr=0.1,
            momentum=momentum,
            start_step=1000,
            grafting=grafting,
            graft_eps=1e-6,
            graft_beta2=0.99,
        ),
        GRAFT_INITIAL,
        steps,
    )
    expected, _, _ = run(oracle, GRAFT_INITIAL, steps)
    assert_trajectories_close(ours, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("grafting", ["sgd", "adagrad", "adam"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_grafted_step_has_graft_norm_and_shampoo_direction(grafting, momentum):
    steps = gradient_steps(GRAFT_SHAPES, 10, seed=13)
    start = 3
    kwargs = {"momentum": momentum, "epsilon": 1e-3, "start_step": start, "update_interval": 2}
    kwargs |= {"grafting": grafting, "graft_eps": 1e-6, "graft_beta2": 0.99}
    ours, _, _ = run(lambda ps: Shampoo(ps, lr=0.1, **kwargs), GRAFT_INITIAL, steps)
    before = [GRAFT_INITIAL, *ours[:-1]]
    for i, x0 in enumerate(GRAFT_INITIAL):
        grads = [step[i] for step in steps]
        reference, parts = shampoo_reference(
            x0,
            grads,
            0.1,
            1e-3,
            momentum,
            interval=2,
            start=start,
            grafting=grafting,
            graft_eps=1e-6,
            graft_beta2=0.99,
        )
        for t, (direction, graft) in enumerate(parts, start=1):
            taken = (before[t - 1][i] - ours[t - 1][i]) / 0.1
            np.testing.assert_allclose(
                np.linalg.norm(taken), np.linalg.norm(graft), rtol=1e-9, err_msg=f"p{i} t{t}"
            )
            if direction is None:
                np.testing.assert_allclose(taken, graft, rtol=1e-9, atol=1e-12)
            else:
                unit = direction / np.linalg.norm(direction)
                np.testing.assert_allclose(
                    taken / np.linalg.norm(taken), unit, rtol=1e-9, atol=1e-12
                )
            np.testing.assert_allclose(ours[t - 1][i], reference[t - 1], rtol=RTOL, atol=ATOL)


def shampoo_float32(grafting, momentum, huge_steps, steps=6):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    b = torch.nn.Parameter(torch.randn(3))
    optimizer = Shampoo([w, b], lr=0.1, momentum=momentum, grafting=grafting)
    for t in range(steps):
        scale = 1e30 if t in huge_steps else 1.0
        w.grad = torch.randn(4, 3) * scale
        b.grad = torch.randn(3) * scale
        optimizer.step()
    return optimizer, w, b


@pytest.mark.parametrize("grafting", [None, "sgd", "adagrad", "adam"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_huge_finite_gradient_never_makes_parameters_nan(grafting, momentum):
    optimizer, w, b = shampoo_float32(grafting, momentum, huge_steps={2})
    assert torch.isfinite(w).all(), w
    assert torch.isfinite(b).all(), b
    for p in (w, b):  # the overflowing increment was skipped and counted, not added
        assert int(optimizer.state[p]["skipped_statistics"]) == 1
        assert int(optimizer.state[p]["root_failures"]) == 0
        assert all(torch.isfinite(v).all() for v in optimizer.state[p].values())


def test_a_huge_gradient_does_not_freeze_the_preconditioner():
    """After the skipped increment the statistics keep accumulating and the roots keep
    following them (before, inf statistics froze every later root)."""
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    optimizer = Shampoo([w], lr=0.01, momentum=0.0, update_interval=1)
    roots = []
    for t in range(6):
        w.grad = torch.randn(4, 3) * (1e30 if t == 1 else 1.0)
        optimizer.step()
        roots.append(optimizer.state[w]["root_0_0"].clone())
    assert not torch.equal(roots[-1], roots[-2])  # still refreshed from finite statistics
    assert int(optimizer.state[w]["skipped_statistics"]) == 1


def test_float16_parameters_with_tiny_gradients_take_finite_grafted_steps():
    w = torch.nn.Parameter(torch.randn(8, 4).half())
    for grafting in ("adagrad", "adam"):
        optimizer = Shampoo([w], lr=1e-3, momentum=0.9, grafting=grafting)
        for _ in range(3):
            w.grad = (torch.randn(8, 4) * 1e-7).half()
            optimizer.step()
        assert torch.isfinite(w).all() and w.dtype == torch.float16


def test_huge_gradient_on_the_first_step_with_sgd_graft_stays_finite():
    w = torch.nn.Parameter(torch.zeros(2, 2))
    optimizer = Shampoo([w], lr=0.1, momentum=0.0, grafting="sgd")
    w.grad = torch.full((2, 2), 1e30)
    optimizer.step()
    assert torch.isfinite(w).all(), w


def full_matrix_reference(initial, steps, lr, eps, flatten):
    """x <- x - lr [(sum g g^T)^{1/2} + eps I]^{-1} g, one vector per parameter or for all."""
    sizes = [x.size for x in initial]
    xs = [np.concatenate([x.ravel() for x in initial])] if flatten else [x.ravel() for x in initial]
    sums = [np.zeros((x.size, x.size)) for x in xs]
    trajectory = []
    for grads in steps:
        gs = [np.concatenate([g.ravel() for g in grads])] if flatten else [g.ravel() for g in grads]
        for j, g in enumerate(gs):
            sums[j] = sums[j] + np.outer(g, g)
            values, vectors = np.linalg.eigh(sums[j])
            root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
            xs[j] = xs[j] - lr * np.linalg.solve(root + eps * np.eye(g.size), g)
        pieces = np.split(xs[0], np.cumsum(sizes)[:-1]) if flatten else xs
        trajectory.append([p.reshape(x.shape) for p, x in zip(pieces, initial, strict=True)])
    return trajectory


def decayed_window_reference(initial, steps, lr, window, beta1, beta2, eps):
    """GGT with an explicit d x d matrix: [(G G^T)^{1/2} + eps I]^{-1} m, one vector per
    parameter, with (G G^T)^{1/2} = U diag(s) U^T from the SVD G = U diag(s) V^T (singular
    values to full relative accuracy, where eigh of G G^T would square their error)."""
    columns = []
    for x0, grads in zip(initial, zip(*steps, strict=True), strict=True):
        x, m, seen, out = x0.ravel().copy(), np.zeros(x0.size), [], []
        for g in grads:
            seen.append(g.ravel())
            m = beta1 * m + (1 - beta1) * g.ravel()
            recent = seen[::-1][:window]
            big_g = np.stack([beta2**age * v for age, v in enumerate(recent)], axis=1)
            u, s, _ = np.linalg.svd(big_g, full_matrices=False)
            root = (u * s) @ u.T
            x = x - lr * np.linalg.solve(root + eps * np.eye(x.size), m)
            out.append(x.reshape(x0.shape).copy())
        columns.append(out)
    return [list(pair) for pair in zip(*columns, strict=True)]


VECTOR_SHAPES = [(4, 3), (5,)]
VECTOR_INITIAL = [np.random.default_rng(14).normal(size=s) for s in VECTOR_SHAPES]


@pytest.mark.parametrize("flatten", [False, True])
def test_ggt_without_momentum_or_decay_is_full_matrix_adagrad(flatten):
    steps = gradient_steps(VECTOR_SHAPES, 12, seed=15)
    ggt, _, _ = run(
        lambda ps: GGT(ps, lr=0.05, window=16, betas=(0.0, 1.0), eps=1e-3, flatten=flatten),
        VECTOR_INITIAL,
        steps,
    )
    full, _, _ = run(
        lambda ps: FullMatrixAdaGrad(ps, lr=0.05, eps=1e-3, flatten=flatten), VECTOR_INITIAL, steps
    )
    assert_trajectories_close(ggt, full, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("flatten", [False, True])
def test_full_matrix_adagrad_matches_reference(flatten):
    steps = gradient_steps(VECTOR_SHAPES, 12, seed=16)
    ours, _, _ = run(
        lambda ps: FullMatrixAdaGrad(ps, lr=0.05, eps=1e-3, flatten=flatten), VECTOR_INITIAL, steps
    )
    reference = full_matrix_reference(VECTOR_INITIAL, steps, 0.05, 1e-3, flatten)
    assert_trajectories_close(ours, reference, rtol=1e-9, atol=1e-11)


def test_full_matrix_adagrad_refuses_vectors_longer_than_max_size():
    with pytest.raises(ValueError, match="max_size=10"):
        FullMatrixAdaGrad([torch.nn.Parameter(torch.zeros(11))], lr=0.1, max_size=10)
    with pytest.raises(ValueError, match="max_size=10"):
        FullMatrixAdaGrad(
            [torch.nn.Parameter(torch.zeros(6)), torch.nn.Parameter(torch.zeros(5))],
            lr=0.1,
            max_size=10,
            flatten=True,
        )
    FullMatrixAdaGrad([torch.nn.Parameter(torch.zeros(10))], lr=0.1, max_size=10)


def test_ggt_evicts_and_decays_its_window():
    shapes = [(2, 3), (4,)]
    initial = [np.random.default_rng(17).normal(size=s) for s in shapes]
    steps = gradient_steps(shapes, 10, seed=18)
    ours, _, _ = run(
        lambda ps: GGT(ps, lr=0.05, window=4, betas=(0.9, 0.99), eps=1e-2), initial, steps
    )
    reference = decayed_window_reference(initial, steps, 0.05, 4, 0.9, 0.99, 1e-2)
    assert_trajectories_close(ours, reference, rtol=1e-9, atol=1e-11)


def test_ggt_keeps_small_but_genuine_singular_values():
    """Coordinates scaled from 1 down to 1e-6 give window singular values far below the largest
    one yet far above rounding; they must be inverted, not treated as outside the span.

    GGT takes singular values from an eigh of the r x r Gram matrix, whose eigenvalues carry an
    absolute error of about 1e-16 * sigma_max^2, so the smallest sigma (~1e-4) is known only to
    ~1e-7: the library is up to 5e-7 from a 50-digit mpmath reference here (this SVD-based
    reference: 1e-10), hence rtol 1e-5. Dropping such a sigma moves the step far more."""
    profile = np.array([1.0, 1e-1, 1e-2, 1e-4, 1e-5, 1e-6])
    steps = [[g * profile] for (g,) in gradient_steps([(6,)], 10, seed=22)]
    initial = [np.zeros(6)]
    ours, _, _ = run(
        lambda ps: GGT(ps, lr=0.05, window=4, betas=(0.9, 0.99), eps=1e-5), initial, steps
    )
    reference = decayed_window_reference(initial, steps, 0.05, 4, 0.9, 0.99, 1e-5)
    assert_trajectories_close(ours, reference, rtol=1e-5, atol=1e-12)


def test_ggt_flattened_matches_reference_on_the_concatenation():
    steps = gradient_steps(VECTOR_SHAPES, 10, seed=19)
    ours, optimizer, params = run(
        lambda ps: GGT(ps, lr=0.05, window=4, betas=(0.9, 0.99), eps=1e-2, flatten=True),
        VECTOR_INITIAL,
        steps,
    )
    flat_initial = [np.concatenate([x.ravel() for x in VECTOR_INITIAL])]
    flat_steps = [[np.concatenate([g.ravel() for g in grads])] for grads in steps]
    reference = decayed_window_reference(flat_initial, flat_steps, 0.05, 4, 0.9, 0.99, 1e-2)
    flat_ours = [[np.concatenate([x.ravel() for x in xs])] for xs in ours]
    assert_trajectories_close(flat_ours, reference, rtol=1e-9, atol=1e-11)
    assert "window" in optimizer.state[params[0]]
    assert "window" not in optimizer.state[params[1]]


def test_ggt_incremental_gram_and_window_momentum_stay_exact():
    rng = np.random.default_rng(20)
    p = torch.nn.Parameter(torch.zeros(50, dtype=torch.float64))
    optimizer = GGT([p], lr=1e-3, window=16, betas=(0.9, 0.99), eps=1e-3)
    for _ in range(300):
        p.grad = torch.tensor(rng.normal(size=50) * rng.choice([0.1, 1.0, 10.0]))
        optimizer.step()
    state = optimizer.state[p]
    window = state["window"].numpy()
    np.testing.assert_allclose(state["gram"].numpy(), window @ window.T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        state["window_exp_avg"].numpy(), window @ state["exp_avg"].numpy(), rtol=1e-9, atol=1e-12
    )
    assert int(state["eigh_failures"]) == 0


def random_psd(n, form, seed, scale_exponent):
    rng = np.random.default_rng(seed)
    columns = n if form != "rank_deficient" else int(rng.integers(0, n))
    a = rng.normal(size=(n, columns))
    matrix = a @ a.T
    top = np.abs(matrix).max()
    if top > 0:
        matrix = matrix / top
    return matrix * 10.0**scale_exponent


def integer_power(a, q):
    result = np.eye(a.shape[0])
    for _ in range(q):
        result = result @ a
    return result


EXPONENTS = {-1 / 2: 2, -1 / 4: 4, -1 / 8: 8, -1 / 6: 6}


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 12),
    form=st.sampled_from(["full", "rank_deficient", "tiny", "huge"]),
    seed=st.integers(0, 2**32 - 1),
    tiny=st.integers(-300, -30),
    huge=st.integers(30, 300),
    exponent=st.sampled_from(list(EXPONENTS)),
    ridge=st.sampled_from([1e-12, 1e-4, 1.0]),
)
def test_matrix_power_is_finite_and_accurate(n, form, seed, tiny, huge, exponent, ridge):
    scale_exponent = {"tiny": tiny, "huge": huge}.get(form, 0)
    shape = form if form in ("full", "rank_deficient") else ("full", "rank_deficient")[seed % 2]
    a = random_psd(n, shape, seed, scale_exponent)
    result, ok = matrix_power(torch.tensor(a), exponent, ridge)
    result = result.numpy()
    assert result.dtype == np.float64
    assert bool(ok)
    assert np.isfinite(result).all()
    b = a + ridge * np.eye(n)
    if form == "tiny":
        identity = ridge**exponent * np.eye(n)
        np.testing.assert_allclose(result, identity, rtol=1e-12, atol=1e-14 * ridge**exponent)
        return
    if form == "huge":
        values = np.linalg.eigvalsh(a / 10.0**huge)
        if values[0] > 1e-8 * values[-1]:
            expected = sym_power(a / 10.0**huge, exponent) * 10.0 ** (huge * exponent)
            relative = np.linalg.norm(result - expected) / np.linalg.norm(expected)
            assert relative < 1e-13 * values[-1] / values[0]
        return
    condition = np.linalg.cond(b)
    if condition < 1e8:
        recovered = integer_power(np.linalg.inv(result), EXPONENTS[exponent])
        assert np.linalg.norm(recovered - b) / np.linalg.norm(b) < 1e-10
        expected = scipy.linalg.fractional_matrix_power(b, exponent).real
        relative = np.linalg.norm(result - expected) / np.linalg.norm(expected)
        assert relative < 1e-13 * condition


def test_matrix_power_of_a_batch():
    matrices = np.stack([random_psd(4, "full", seed, 0) for seed in range(3)])
    result, ok = matrix_power(torch.tensor(matrices), -0.25, 1e-4)
    assert ok.tolist() == [True, True, True]
    for got, a in zip(result.numpy(), matrices, strict=True):
        np.testing.assert_allclose(got, sym_power(a + 1e-4 * np.eye(4), -0.25), rtol=1e-9)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_matrix_power_reports_non_finite_input_without_raising(bad):
    matrices = np.stack([random_psd(3, "full", seed, 0) for seed in range(2)])
    matrices[1, 0, 2] = bad
    result, ok = matrix_power(torch.tensor(matrices), -0.5, 1e-4)
    assert ok.tolist() == [True, False]
    np.testing.assert_allclose(
        result[0].numpy(), sym_power(matrices[0] + 1e-4 * np.eye(3), -0.5), rtol=1e-9
    )
    _, ok = matrix_power(torch.tensor(matrices[1]), -0.5, 1e-4)
    assert not bool(ok)


def test_matrix_power_relative_ridge_scales_with_the_largest_eigenvalue():
    a = random_psd(5, "rank_deficient", 21, 0) * 1e6
    result, ok = matrix_power(torch.tensor(a), -0.5, 1e-3, relative=True)
    assert bool(ok)
    top = np.linalg.eigvalsh(a)[-1]
    np.testing.assert_allclose(
        result.numpy(), sym_power(a + 1e-3 * top * np.eye(5), -0.5), rtol=1e-9, atol=1e-15
    )


@pytest.mark.parametrize(("window", "eps"), [(20, 1e-4), (200, 1e-4), (20, 1e-6)])
def test_float32_ggt_follows_the_float64_formula_on_ill_conditioned_gradients(window, eps):
    """Gradients whose singular values spread over four decades (as a recurrent net's do):
    float32 parameters must follow the float64 formula, fed the same float32 gradients, to
    float32 accuracy. Gram rows, the momentum and the in-span term formed in float32 (and a
    cut-off at float32's epsilon) were off by 0.5%-2300% here."""
    rng = np.random.default_rng(23)
    d, steps = 64, 60
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    profile = np.logspace(0, -4, d)
    grads = [((rotation * profile) @ rng.normal(size=d)).astype(np.float32) for _ in range(steps)]
    reference = decayed_window_reference(
        [np.zeros(d)], [[g.astype(np.float64)] for g in grads], 1e-3, window, 0.9, 1.0, eps
    )
    p = torch.nn.Parameter(torch.zeros(d, dtype=torch.float32))
    optimizer = GGT([p], lr=1e-3, window=window, betas=(0.9, 1.0), eps=eps)
    for g, (expected,) in zip(grads, reference, strict=True):
        p.grad = torch.from_numpy(g)
        optimizer.step()
        error = np.linalg.norm(p.detach().double().numpy() - expected)
        assert error <= 1e-5 * np.linalg.norm(expected)


def test_ggt_converts_a_float32_window_in_chunks(monkeypatch):
    """A float32 window is converted to float64 a few columns at a time; the chunked products
    equal the whole ones."""
    from gradkit.optim import window as window_module

    monkeypatch.setattr(window_module, "CHUNK_ELEMENTS", 7)
    rng = np.random.default_rng(24)
    w = torch.tensor(rng.normal(size=(3, 50)), dtype=torch.float32)
    v = torch.tensor(rng.normal(size=50), dtype=torch.float32)
    c = torch.tensor(rng.normal(size=3))
    w64 = w.double()
    torch.testing.assert_close(window_module.window_times(w, v), w64 @ v.double())
    torch.testing.assert_close(window_module.window_transpose_times(w, c), w64.mT @ c)


def largest_shampoo_step(interval, shapes, steps=40, seed=0):
    """The largest per-entry change of any parameter over a run on i.i.d. gradients."""
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in shapes]
    optimizer = Shampoo(params, lr=0.01, momentum=0.9, epsilon=1e-4, update_interval=interval)
    largest = 0.0
    for _ in range(steps):
        before = [p.detach().clone() for p in params]
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        optimizer.step()
        changes = [float((p.detach() - b).abs().max()) for p, b in zip(params, before, strict=True)]
        largest = max(largest, *changes)
    return largest


@pytest.mark.parametrize("shapes", [[(16, 8)], [(8, 4, 3)], [(32, 16), (16, 3, 5)]])
def test_shampoo_with_update_interval_keeps_steps_near_every_step_roots(shapes):
    """Roots recomputed at each of the first k steps: a root reused for k steps has seen k
    gradients. Reusing the root of the first gradient for 10 steps made the largest step 2-44x
    that of roots every step here (directions unseen by one gradient get eps^(-1/4) per side)."""
    ratio = largest_shampoo_step(10, shapes) / largest_shampoo_step(1, shapes)
    assert ratio <= 2.0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_shampoo_statistics_of_low_precision_parameters_are_float32(dtype):
    params = [torch.nn.Parameter(torch.zeros(s, dtype=dtype)) for s in [(6, 4), (5,)]]
    optimizer = Shampoo(params, lr=1e-2, grafting="adagrad", update_interval=2)
    gen = torch.Generator().manual_seed(25)
    for _ in range(3):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen).to(dtype)
        optimizer.step()
    accumulators = Shampoo._saved_dtype_prefixes
    for state in optimizer.state.values():
        kept = [k for k, v in state.items() if k.startswith(accumulators) and v.is_floating_point()]
        assert kept and all(state[key].dtype == torch.float32 for key in kept)
    saved = optimizer.state_dict()
    resumed = Shampoo(params, lr=1e-2, grafting="adagrad", update_interval=2)
    resumed.load_state_dict(saved)
    for p in params:
        for key, value in optimizer.state[p].items():
            assert resumed.state[p][key].dtype == value.dtype, key
            torch.testing.assert_close(resumed.state[p][key], value, rtol=0, atol=0)
    assert all(p.dtype == dtype and torch.isfinite(p).all() for p in params)
