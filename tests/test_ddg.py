"""DDG (decoupled parallel backpropagation) against a plain reference of its update rule."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call

from gradkit.model_parallel import (
    DDG,
    balanced_by,
    balanced_split_points,
    layer_times,
    split_sequential,
)


def mlp(dtype=torch.float64, dropout=0.0, batchnorm=False):
    torch.manual_seed(0)
    layers = [nn.Linear(6, 16), nn.Tanh()]
    if batchnorm:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.Linear(16, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 12), nn.Tanh()]
    layers += [nn.Linear(12, 3)]
    return nn.Sequential(*layers).to(dtype)


def batches(steps, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 6, generator=g, dtype=dtype), torch.randint(0, 3, (8,), generator=g))
            for _ in range(steps)]  # fmt: skip


def reference_ddg(model, points, data, lr):
    """w_k^(t+1) = w_k^t - lr grad_(w_k) f_(x_s)(w^s), s = t - (K - 1 - k), with every
    iterate w^t kept: the formula, in float64."""
    names = [n for n, _ in model.named_parameters()]
    stage_of = {}
    bounds = [0, *points, len(model)]
    for k in range(len(bounds) - 1):
        for i in range(bounds[k], bounds[k + 1]):
            for n, _ in model[i].named_parameters():
                stage_of[f"{i}.{n}"] = k
    K = len(bounds) - 1
    history = [{n: p.detach().double().clone() for n, p in model.named_parameters()}]
    loss_fn = nn.CrossEntropyLoss()
    for t in range(len(data)):
        current = history[-1]
        new = {n: v.clone() for n, v in current.items()}
        for k in range(K):
            s = t - (K - 1 - k)
            if s < 0:
                continue
            weights = {n: v.clone().requires_grad_(True) for n, v in history[s].items()}
            x, y = data[s]
            loss = loss_fn(functional_call(model.double(), weights, (x.double(),)), y)
            grads = torch.autograd.grad(loss, [weights[n] for n in names])
            for n, g in zip(names, grads, strict=True):
                if stage_of[n] == k:
                    new[n] = current[n] - lr * g
        history.append(new)
    return history[-1]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("points", [[], [4], [2, 5]])  # K = 1, 2, 3
def test_ddg_applies_each_stages_delayed_gradient_of_its_own_forward(points, dtype):
    model, lr, data = mlp(dtype), 0.1, batches(12, dtype)
    reference = reference_ddg(copy.deepcopy(model), points, data, lr)
    ddg = DDG(model, lambda p: torch.optim.SGD(p, lr=lr), nn.CrossEntropyLoss(),
              split_points=points)  # fmt: skip
    for x, y in data:
        ddg.step(x, y)
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == torch.float64 else {"rtol": 2e-5, "atol": 2e-6}
    for name, p in model.named_parameters():
        assert p.dtype == dtype
        torch.testing.assert_close(p.detach().double(), reference[name], **tol)


def test_one_stage_is_plain_backprop_step_for_step():
    model, data = mlp(), batches(5)
    plain = copy.deepcopy(model)
    sgd = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9)
    ddg = DDG(model, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), nn.CrossEntropyLoss())
    for x, y in data:
        loss = ddg.step(x, y)
        sgd.zero_grad()
        expected = nn.CrossEntropyLoss()(plain(x), y)
        expected.backward()
        sgd.step()
        assert loss == pytest.approx(expected.item(), rel=1e-12)
        for a, b in zip(model.parameters(), plain.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def ddg_after(model, steps, variant, points=(4,), lr=0.1, data=None):
    ddg = DDG(model, lambda p: torch.optim.SGD(p, lr=lr), nn.CrossEntropyLoss(),
              split_points=list(points), variant=variant)  # fmt: skip
    for x, y in (data or batches(steps))[:steps]:
        ddg.step(x, y)
    return ddg


def test_recompute_differs_from_stash_exactly_where_the_weights_moved():
    """K = 2: stage 0 first updates at iteration 1 with batch 0, whose forward ran at w_0^0 =
    w_0^1, so both variants agree for two steps; at iteration 2 recompute evaluates batch 1's
    gradient at w_0^2 instead of w_0^1: only stage 0 differs, by exactly that."""
    lr, data = 0.1, batches(3)
    two = [ddg_after(mlp(), 2, v, data=data).model for v in ("stash", "recompute")]
    for a, b in zip(*(m.parameters() for m in two), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    stash, recompute = (ddg_after(mlp(), 3, v, data=data).model for v in ("stash", "recompute"))
    for i, (a, b) in enumerate(zip(stash, recompute, strict=True)):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(p, q) == (i >= 4), f"layer {i}"
    # recompute's stage 0 step at iteration 2, written out: the gradient of batch 1 at w_0^2
    # with the upstream gradient stage 1 computed at iteration 1 (at w_1^1, on stage0(x_1; w_0^1))
    ddg = DDG(mlp(), lambda p: torch.optim.SGD(p, lr=lr), nn.CrossEntropyLoss(),
              split_points=[4], variant="recompute")  # fmt: skip
    head, tail = ddg.parts
    snapshots = []
    for x, y in data:
        snapshots.append({n: p.detach().clone() for n, p in ddg.model.named_parameters()})
        ddg.step(x, y)
    w1, w2 = snapshots[1], snapshots[2]  # before iterations 1 and 2

    def part(weights, first, last):
        return {f"{int(n[0]) - first}{n[1:]}": v for n, v in weights.items()
                if first <= int(n[0]) < last}  # fmt: skip

    x1, y1 = data[1]
    h = functional_call(head, part(w1, 0, 4), (x1,)).detach().requires_grad_(True)
    loss = nn.CrossEntropyLoss()(functional_call(tail, part(w1, 4, 9), (h,)), y1)
    (upstream,) = torch.autograd.grad(loss, h)
    current = {n: v.clone().requires_grad_(True) for n, v in part(w2, 0, 4).items()}
    torch.autograd.backward(functional_call(head, current, (x1,)), upstream)
    for name, v in current.items():
        torch.testing.assert_close(
            dict(head.named_parameters())[name].detach(), v.detach() - lr * v.grad,
            rtol=1e-12, atol=1e-14,
        )  # fmt: skip


@pytest.mark.parametrize("variant", ["stash", "recompute"])
def test_batch_norm_statistics_are_updated_once_per_batch(variant):
    model = mlp(batchnorm=True)
    plain = copy.deepcopy(model)
    data = batches(6)
    ddg_after(model, 6, variant, points=(5,), lr=0.0, data=data)  # weights fixed: same inputs
    for x, _ in data:  # one training-mode forward per batch
        plain[:3](x)
    bn, expected = model[2], plain[2]
    assert int(bn.num_batches_tracked) == 6
    torch.testing.assert_close(bn.running_mean, expected.running_mean, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(bn.running_var, expected.running_var, rtol=1e-12, atol=1e-14)


def test_recompute_replays_the_forwards_dropout_mask():
    """With stage 0 unchanged between a batch's forward and its backward (K = 2, iterations 0
    and 1), recompute must reproduce the forward exactly, dropout included."""
    data = batches(2)
    models = []
    for variant in ("stash", "recompute"):
        torch.manual_seed(5)
        models.append(ddg_after(mlp(dropout=0.5), 2, variant, points=(5,), data=data).model)
    for a, b in zip(*(m.parameters() for m in models), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"stages": 5}, ValueError, "cannot cut 4 layers with parameters into 5 stages"),
        ({"stages": 20}, ValueError, "20 stages need 20 layers; the model has 8"),
        ({"stages": 0}, ValueError, "stages must be a positive integer, got 0"),
        (
            {"split_points": [5, 2]},
            ValueError,
            r"strictly increasing integers in 1\.\.7, got \[5, 2\]",
        ),
        ({"split_points": [0]}, ValueError, r"strictly increasing integers in 1\.\.7, got \[0\]"),
        ({"split_points": [8]}, ValueError, r"strictly increasing integers in 1\.\.7, got \[8\]"),
        ({"split_points": [1, 2]}, ValueError, r"stage 1 \(layers 1\.\.1\) has no parameters"),
        ({"stages": 2, "split_points": [2]}, ValueError, "either stages"),
        ({"model": nn.Linear(3, 3), "stages": 1}, TypeError, "must be an nn.Sequential"),
    ],
)
def test_bad_splits_are_clear_errors(kwargs, error, message):
    model = kwargs.pop("model", mlp())
    with pytest.raises(error, match=message):
        DDG(model, lambda p: torch.optim.SGD(p, lr=0.1), nn.CrossEntropyLoss(), **kwargs)


def test_balanced_split_gives_each_stage_a_share_of_the_parameters():
    model = nn.Sequential(*[nn.Linear(32, 32) for _ in range(8)])
    for stages in (1, 2, 4, 8):
        parts = split_sequential(model, stages)
        assert [len(p) for p in parts] == [8 // stages] * stages


def test_stages_balance_any_cost_per_layer():
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(6)])
    assert balanced_split_points(model, 2, [5, 1, 1, 1, 1, 1]) == [1]
    assert balanced_split_points(model, 3, [1, 1, 1, 1, 1, 7]) == [2, 5]  # 7 alone, then even
    assert balanced_split_points(model, 3, [1, 1, 1, 1, 1, 1]) == [2, 4]
    # a costly layer without parameters weighs in, but stages still begin at parameter layers
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.Linear(4, 4))
    assert balanced_split_points(model, 2, [1, 4, 1, 1]) == [2]
    assert [len(p) for p in split_sequential(model, 2, costs=[1, 0, 1, 4])] == [3, 1]


@pytest.mark.parametrize(
    ("costs", "balance", "message"),
    [
        ([1, 2], "parameters", "give one cost per layer: 8 layers, 2 costs"),
        ([1, 1, 1, -1, 1, 1, 1, 1], "parameters", r"finite numbers >= 0, got \[1, 1, 1, -1"),
        ([1, 1, 1, float("nan"), 1, 1, 1, 1], "parameters", r"finite numbers >= 0"),
        (None, "flops", "unknown balance 'flops'; choose from parameters, time"),
    ],
)
def test_bad_layer_costs_and_balances_are_clear_errors(costs, balance, message):
    with pytest.raises(ValueError, match=message):
        if costs is None:
            balanced_by(mlp(), 2, balance, batches(1)[0][0])
        else:
            balanced_split_points(mlp(), 2, costs)


def test_layer_times_leave_the_model_and_the_random_state_as_they_were():
    model = mlp(batchnorm=True, dropout=0.5)
    before = copy.deepcopy(model.state_dict())
    torch.manual_seed(7)
    times = layer_times(model, batches(1)[0][0], repeats=2)
    drawn_after = torch.rand(3)
    torch.manual_seed(7)
    torch.testing.assert_close(drawn_after, torch.rand(3), rtol=0, atol=0)
    assert len(times) == len(model) and all(t > 0 for t in times)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    assert all(p.grad is None for p in model.parameters())
    points = balanced_by(model, 3, "time", batches(1)[0][0])
    assert len(split_sequential(model, split_points=points)) == 3


def test_an_unknown_variant_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown variant 'lazy'; choose from stash, recompute"):
        DDG(mlp(), lambda p: torch.optim.SGD(p, lr=0.1), nn.CrossEntropyLoss(), stages=2,
            variant="lazy")  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("points", "variant"), [([4], "stash"), ([2, 5], "stash"),
                                                 ([2, 5], "recompute")])  # fmt: skip
def test_a_real_run_with_one_stage_per_process_equals_the_single_process_one(points, variant):
    from distributed_helpers import ddg_stage_run
    from gradkit.distributed import launch

    results = launch(ddg_stage_run, len(points) + 1, points, 10, variant)
    ddg = DDG(mlp(), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), nn.CrossEntropyLoss(),
              split_points=points, variant=variant)  # fmt: skip
    losses = [ddg.step(x, y) for x, y in batches(10)]
    for part, (parameters, _) in zip(ddg.parts, results, strict=True):
        for mine, theirs in zip(part.parameters(), parameters, strict=True):
            torch.testing.assert_close(theirs, mine.detach(), rtol=0, atol=0)
    assert results[-1][1] == losses and results[0][1] == [None] * 10


@pytest.mark.timeout(120)
def test_a_silent_stage_ends_the_run_with_an_error_naming_it_within_its_timeout():
    import time

    from distributed_helpers import ddg_stage_stops
    from gradkit.distributed import WorkerFailedError, launch

    started = time.monotonic()
    with pytest.raises(WorkerFailedError, match=r"rank 1 did not answer within 3 s"):
        launch(ddg_stage_stops, 3, 1, 4, 3.0, timeout=60)
    assert time.monotonic() - started < 30


@pytest.mark.timeout(60)
def test_distributed_ddg_needs_an_initialised_process_group_and_one_stage_per_rank():
    from distributed_helpers import ddg_stage_run
    from gradkit.distributed import WorkerFailedError, launch
    from gradkit.model_parallel.distributed import DistributedDDG

    with pytest.raises(RuntimeError, match=r"torch\.distributed is not initialised"):
        DistributedDDG(mlp(), lambda p: torch.optim.SGD(p, lr=0.1), nn.CrossEntropyLoss())
    with pytest.raises(WorkerFailedError, match="2 stages need 2 processes; the run has 3"):
        launch(ddg_stage_run, 3, [4], 1)


def test_simulated_ddg_time_is_backprops_over_k_on_balanced_stages_and_a_free_network():
    from gradkit.model_parallel.costs import StageCost
    from gradkit.sim import NetworkModel
    from gradkit.sim.pipeline import backprop_time, simulate_ddg

    free = NetworkModel(latency=0.0, bandwidth=1e18)
    for k in (1, 2, 4, 8):
        costs = [StageCost(1.0 / k, 2.0 / k, 1000)] * k
        timing = simulate_ddg(costs, 1000, free)
        # the pipeline fills in about K iterations, then every stage is busy all the time
        assert backprop_time(costs, 1000) / timing.total == pytest.approx(k, rel=k / 1000)
        assert min(timing.busy) > 0.99
    slowest = [StageCost(0.1, 0.2, 10), StageCost(0.3, 0.9, 10), StageCost(0.1, 0.2, 10)]
    assert simulate_ddg(slowest, 1000, free).per_iteration == pytest.approx(1.2, rel=0.01)
    # a message costs latency + bytes / bandwidth on the critical path of the forward chain
    slow_link = NetworkModel(latency=0.05, bandwidth=1e4)
    halves = [StageCost(0.5, 1.0, 1000)] * 2
    assert simulate_ddg(halves, 1000, slow_link).per_iteration > 1.5 + 0.1
    with pytest.raises(ValueError, match="iterations must be a positive integer, got 0"):
        simulate_ddg(halves, 0)
    with pytest.raises(ValueError, match="forward time must be a number >= 0, got -1"):
        StageCost(-1, 0, 0)


def test_measured_stage_costs_are_positive_and_leave_the_weights_as_they_were():
    from gradkit.model_parallel.costs import measure_stage_costs

    model = mlp()
    before = copy.deepcopy(model.state_dict())
    parts = split_sequential(model, split_points=[2, 5])
    costs = measure_stage_costs(parts, batches(1)[0][0], repeats=3)
    assert len(costs) == 3 and all(c.forward > 0 and c.backward > 0 for c in costs)
    assert [c.output_bytes for c in costs] == [8 * 16 * 8, 8 * 16 * 8, 8 * 3 * 8]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


def test_train_with_a_one_stage_pipeline_is_plain_training_and_k_stages_train():
    from gradkit.tasks import train

    plain = train("mnist1d-resmlp", "msgd", lr=0.05, epochs=1)
    one = train("mnist1d-resmlp", "msgd", lr=0.05, epochs=1, pipeline=1)
    assert one.step_losses == pytest.approx(plain.step_losses, rel=1e-6)
    assert one.optimizer == "msgd, DDG K=1 (stash)" and one.lr == 0.05
    four = train("mnist1d-resmlp", "msgd", lr=0.01, epochs=2, pipeline=4)
    assert four.final("train_loss") < 0.8 * four.evals[0]["train_loss"]
    with pytest.raises(ValueError, match="pbqn cannot train a pipeline"):
        train("mnist1d-resmlp", "pbqn", epochs=1, pipeline=2)


@pytest.mark.timeout(120)
def test_time_balanced_stages_are_measured_on_rank_0_and_shared():
    """With balance="time" only rank 0 measures; the ranks agree on its cuts (they could not
    exchange activations otherwise), and the run names them like a single-process one."""
    from distributed_helpers import pipeline_rank_run
    from gradkit.distributed import launch
    from gradkit.tasks import train

    (name, losses), none = launch(pipeline_rank_run, 2, "time")
    assert none is None and len(losses) == 40 and all(loss > 0 for loss in losses)
    assert name.startswith("msgd, DDG K=2 (stash), cut before layers ")
    single = train("mnist1d-resmlp", "msgd", lr=0.01, epochs=1, pipeline=2, balance="time")
    assert single.optimizer.startswith("msgd, DDG K=2 (stash), cut before layers ")
