"""Local losses (the DNI-like baseline of DDG) against a plain reference of their update rule."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call

from gradkit.cli import main
from gradkit.model_parallel import LocalLosses, default_heads, split_sequential
from gradkit.tasks import train


def mlp(dtype=torch.float64, batchnorm=False):
    torch.manual_seed(0)
    layers = [nn.Linear(6, 16), nn.Tanh()]
    if batchnorm:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3)]
    return nn.Sequential(*layers).to(dtype)


def heads_for(widths, dtype):
    torch.manual_seed(1)
    return [nn.Linear(w, 3).to(dtype) for w in widths]


def batches(steps, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 6, generator=g, dtype=dtype), torch.randint(0, 3, (8,), generator=g))
            for _ in range(steps)]  # fmt: skip


def reference_local(model, heads, points, data, lr):
    """(w_k, v_k) <- (w_k, v_k) - lr grad loss(head_k(f_k(h_(k-1); w_k); v_k), y) with
    h_(k-1) = f_(k-1)(... f_1(x)) at the weights before the step, held fixed; the last stage on
    loss(f_K(h_(K-1)), y). Plain float64 tensors and functional calls."""
    bounds = [0, *points, len(model)]
    stages = [[model[i] for i in range(bounds[k], bounds[k + 1])] for k in range(len(bounds) - 1)]
    weights = [[{n: p.detach().double().clone() for n, p in m.named_parameters()} for m in s]
               for s in stages]  # fmt: skip
    head_weights = [{n: p.detach().double().clone() for n, p in h.named_parameters()}
                    for h in heads]  # fmt: skip
    loss_fn = nn.CrossEntropyLoss()
    for x, y in data:
        h = x.double()
        for k, stage in enumerate(stages):
            live = [{n: v.clone().requires_grad_(True) for n, v in w.items()} for w in weights[k]]
            out = h
            for module, w in zip(stage, live, strict=True):
                out = functional_call(module.double(), w, (out,))
            tensors = [v for w in live for v in w.values()]
            if k < len(heads):
                head = {n: v.clone().requires_grad_(True) for n, v in head_weights[k].items()}
                loss = loss_fn(functional_call(heads[k].double(), head, (out,)), y)
                tensors += list(head.values())
            else:
                loss = loss_fn(out, y)
            grads = iter(torch.autograd.grad(loss, tensors))
            weights[k] = [{n: v - lr * next(grads) for n, v in w.items()} for w in weights[k]]
            if k < len(heads):
                head_weights[k] = {n: v - lr * next(grads) for n, v in head_weights[k].items()}
            h = out.detach()
    return weights, head_weights


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("points", "widths"), [([4], [16]), ([2, 6], [16, 12])])
def test_each_stage_steps_on_its_own_local_loss(points, widths, dtype):
    model, heads, lr, data = mlp(dtype), heads_for(widths, dtype), 0.1, batches(10, dtype)
    weights, head_weights = reference_local(
        copy.deepcopy(model), copy.deepcopy(heads), points, data, lr
    )
    local = LocalLosses(model, lambda p: torch.optim.SGD(p, lr=lr), nn.CrossEntropyLoss(),
                        split_points=points, heads=heads)  # fmt: skip
    for x, y in data:
        local.step(x, y)
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == torch.float64 else {"rtol": 2e-5, "atol": 2e-6}
    for part, expected in zip(local.parts, weights, strict=True):
        for module, w in zip(part, expected, strict=True):
            for n, p in module.named_parameters():
                assert p.dtype == dtype
                torch.testing.assert_close(p.detach().double(), w[n], **tol)
    for head, expected in zip(heads, head_weights, strict=True):
        for n, p in head.named_parameters():
            torch.testing.assert_close(p.detach().double(), expected[n], **tol)


def test_one_stage_is_plain_backprop_step_for_step():
    model, data = mlp(), batches(5)
    plain = copy.deepcopy(model)
    sgd = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9)
    local = LocalLosses(model, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                        nn.CrossEntropyLoss())  # fmt: skip
    for x, y in data:
        loss = local.step(x, y)
        sgd.zero_grad()
        expected = nn.CrossEntropyLoss()(plain(x), y)
        expected.backward()
        sgd.step()
        assert loss == pytest.approx(expected.item(), rel=1e-12)
    for a, b in zip(model.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_default_heads_map_each_cut_to_the_output_width_without_touching_statistics():
    model = mlp(torch.float32, batchnorm=True)
    parts = split_sequential(model, split_points=[3, 7])
    norm = model[2]
    before = norm.running_mean.clone()
    heads = default_heads(parts, torch.randn(5, 6))
    assert [h[1].in_features for h in heads] == [16, 12]
    assert all(h[1].out_features == 3 and h[1].weight.dtype == torch.float32 for h in heads)
    assert torch.equal(norm.running_mean, before) and model.training


def test_missing_or_miscounted_heads_are_clear_errors():
    sgd = lambda p: torch.optim.SGD(p, lr=0.1)  # noqa: E731
    with pytest.raises(ValueError, match="give heads, or an example batch"):
        LocalLosses(mlp(), sgd, nn.CrossEntropyLoss(), stages=2)
    with pytest.raises(ValueError, match="3 stages need 2 heads, got 1"):
        LocalLosses(mlp(), sgd, nn.CrossEntropyLoss(), split_points=[2, 6],
                    heads=heads_for([16], torch.float64))  # fmt: skip


def test_train_runs_local_losses_as_a_pipeline_variant(monkeypatch, capsys):
    result = train("mnist1d-resmlp", "msgd", lr=0.05, epochs=1, pipeline=2, variant="local",
                   max_steps=5)  # fmt: skip
    assert result.optimizer == "msgd, local losses K=2, cut before layers 7"
    assert len(result.step_losses) == 5
    with pytest.raises(ValueError, match="unknown variant 'locl'; choose from stash, recompute"):
        train("mnist1d-resmlp", "msgd", pipeline=2, variant="locl")
    monkeypatch.setenv("RANK", "0")
    argv = ["train", "--task", "mnist1d-resmlp", "--optimizer", "msgd", "--pipeline", "2"]
    assert main([*argv, "--variant", "local"]) == 2
    assert "--variant local trains in one process" in capsys.readouterr().err


def test_a_local_loss_run_depends_on_its_seed_only():
    """The default heads are initialised from the run's seed, not from whatever state torch's
    global generator is in (a cached run must be reproducible in any worker process)."""
    runs = []
    for state in (1, 2):
        torch.manual_seed(state)
        result = train("mnist1d-resmlp", "msgd", lr=0.05, epochs=1, pipeline=2, variant="local",
                       max_steps=3, seed=7)  # fmt: skip
        runs.append(result.step_losses)
    assert runs[0] == runs[1]
