"""The torch.optim contract, checked for every optimizer in ``optimizer_cases.CASES``."""

from __future__ import annotations

import copy

import pytest
import torch

from gradkit.optim import NonFiniteGradientError
from optimizer_cases import CASES

SHAPES = [(5, 4), (4,), (3, 2, 2), ()]


def make_params(dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=gen, dtype=dtype)) for shape in SHAPES]


def set_random_grads(params, gen):
    for p in params:
        g = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        if g.numel() > 0:
            g.view(-1)[0] = 0.0  # exact zeros exercise sign(0) and empty variance
        p.grad = g


def run(opt, params, steps, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        set_random_grads(params, gen)
        opt.step()
    return gen


def state_tensors_only(opt):
    return all(
        isinstance(value, torch.Tensor) for state in opt.state.values() for value in state.values()
    )


@pytest.fixture(params=CASES, ids=str)
def case(request):
    return request.param


def test_resume_from_state_dict_is_bit_exact(case):
    params = make_params()
    opt = case.build(params)
    gen = run(opt, params, 7)
    saved_params = copy.deepcopy([p.detach().clone() for p in params])
    saved_state = copy.deepcopy(opt.state_dict())
    gen_state = gen.get_state()

    for _ in range(5):
        set_random_grads(params, gen)
        opt.step()

    resumed = [torch.nn.Parameter(p.clone()) for p in saved_params]
    resumed_opt = case.build(resumed)
    resumed_opt.load_state_dict(saved_state)
    gen.set_state(gen_state)
    for _ in range(5):
        set_random_grads(resumed, gen)
        resumed_opt.step()
    for a, b in zip(params, resumed, strict=True):
        assert torch.equal(a, b)
    assert state_tensors_only(resumed_opt)


def test_param_groups_use_their_own_hyperparameters(case):
    params = make_params()
    opt = case.build([{"params": params[:2]}, {"params": params[2:], **case.other_group}])
    first, second = make_params(), make_params()
    opt_first = case.build(first[:2])
    opt_second = case.build(second[2:], **case.other_group)
    gen = torch.Generator().manual_seed(3)
    for _ in range(6):
        set_random_grads(params, gen)
        for a, b, p in zip(first, second, params, strict=True):
            a.grad = p.grad.clone()
            b.grad = p.grad.clone()
        opt.step()
        opt_first.step()
        opt_second.step()
    for p, q in zip(params[:2], first[:2], strict=True):
        assert torch.equal(p, q)
    for p, q in zip(params[2:], second[2:], strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(params[0], make_params()[0])


def test_parameters_without_gradients_are_untouched(case):
    params = make_params()
    frozen = params[1].detach().clone()
    opt = case.build(params)
    gen = torch.Generator().manual_seed(4)
    for _ in range(4):
        set_random_grads(params, gen)
        params[1].grad = None
        opt.step()
    assert torch.equal(params[1], frozen)
    assert params[1] not in opt.state
    assert not torch.equal(params[0], make_params()[0])


def test_zero_sized_parameters_are_accepted_and_stay_empty(case):
    """A parameter with a zero-length dimension (an empty layer) trains alongside the others."""
    params = [*make_params(), *(torch.nn.Parameter(torch.zeros(s)) for s in [(0,), (0, 3), (3, 0)])]
    opt = case.build(params)
    run(opt, params, 3)
    assert all(p.numel() == 0 for p in params[-3:])
    assert all(torch.isfinite(p).all() for p in params)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float32_and_float64(case, dtype):
    params = make_params(dtype)
    opt = case.build(params)
    run(opt, params, 5)
    for p in params:
        assert p.dtype == dtype
        assert torch.isfinite(p).all()
    for state in opt.state.values():
        for key, value in state.items():
            if key == "step" or not value.is_floating_point():
                continue
            assert value.dtype == (torch.float64 if key in case.float64_state else dtype), key


@pytest.mark.parametrize("case", [c for c in CASES if c.has_foreach], ids=str)
def test_foreach_and_per_tensor_paths_are_identical(case):
    a, b = make_params(), make_params()
    opt_a = case.build(a, foreach=False, weight_decay=0.05)
    opt_b = case.build(b, foreach=True, weight_decay=0.05)
    gen_a, gen_b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for _ in range(12):
        set_random_grads(a, gen_a)
        set_random_grads(b, gen_b)
        opt_a.step()
        opt_b.step()
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)


def test_closure_value_is_returned(case):
    params = make_params()
    opt = case.build(params)

    def closure():
        opt.zero_grad()
        loss = sum((p**2).sum() for p in params)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor)
    assert loss.item() == pytest.approx(sum((p**2).sum().item() for p in make_params()))
    assert opt.step() is None


def test_lr_scheduler_drives_the_step_size(case):
    scheduled, manual = make_params(), make_params()
    opt = case.build(scheduled, lr=0.02)
    manual_opt = case.build(manual, lr=0.02)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    gen_s, gen_m = torch.Generator().manual_seed(6), torch.Generator().manual_seed(6)
    for step in range(6):
        manual_opt.param_groups[0]["lr"] = 0.02 * 0.5 ** (step // 2)
        set_random_grads(scheduled, gen_s)
        set_random_grads(manual, gen_m)
        opt.step()
        manual_opt.step()
        scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.02 * 0.5**3)
    for p, q in zip(scheduled, manual, strict=True):
        assert torch.equal(p, q)


def test_invalid_hyperparameters_raise_value_error_naming_them(case):
    assert case.invalid, f"{case} lists no invalid hyper-parameters"
    for name, values in case.invalid.items():
        for value in values:
            with pytest.raises(ValueError, match=name):
                case.build(make_params(), **{name: value})
            # the same check guards groups added later
            opt = case.build(make_params()[:1])
            with pytest.raises(ValueError, match=name):
                opt.add_param_group({"params": make_params()[1:2], name: value})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_gradient_raises_and_changes_nothing(case, bad):
    params = make_params()
    opt = case.build(params)
    run(opt, params, 3)
    before_params = [p.detach().clone() for p in params]
    before_state = copy.deepcopy(opt.state_dict())
    set_random_grads(params, torch.Generator().manual_seed(9))
    params[2].grad[1, 0, 1] = bad
    with pytest.raises(NonFiniteGradientError, match=r"parameter 2 \(shape \(3, 2, 2\)\)"):
        opt.step()
    for p, q in zip(params, before_params, strict=True):
        assert torch.equal(p, q)
    after_state = opt.state_dict()["state"]
    for key, state in before_state["state"].items():
        for name, value in state.items():
            assert torch.equal(after_state[key][name], value)


def test_non_finite_gradient_at_the_first_step_creates_no_state(case):
    params = make_params()
    opt = case.build(params)
    set_random_grads(params, torch.Generator().manual_seed(9))
    params[0].grad[0, 0] = float("nan")
    with pytest.raises(NonFiniteGradientError):
        opt.step()
    assert len(opt.state) == 0 and opt.state_dict()["state"] == {}


def test_non_finite_check_can_be_switched_off(case):
    params = make_params()
    opt = case.build(params, check_finite=False)
    set_random_grads(params, torch.Generator().manual_seed(9))
    params[0].grad[0, 0] = float("nan")
    opt.step()  # no error: the caller took responsibility
    assert torch.isfinite(params[1]).all()


def test_maximize_equals_minimizing_the_negated_gradient(case):
    up, down = make_params(), make_params()
    opt_up = case.build(up, maximize=True)
    opt_down = case.build(down)
    gen = torch.Generator().manual_seed(10)
    for _ in range(5):
        set_random_grads(up, gen)
        for p, q in zip(up, down, strict=True):
            q.grad = -p.grad
        opt_up.step()
        opt_down.step()
    for p, q in zip(up, down, strict=True):
        assert torch.equal(p, q)


def test_state_is_tensor_only_and_deepcopyable(case):
    params = make_params()
    opt = case.build(params)
    run(opt, params, 2)
    assert state_tensors_only(opt)
    clone = copy.deepcopy(opt)
    assert clone.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


def test_complex_parameters_are_rejected(case):
    with pytest.raises(ValueError, match="complex"):
        case.build([torch.nn.Parameter(torch.zeros(2, dtype=torch.complex64))])


@pytest.mark.parametrize("flag", ["foreach", "maximize", "check_finite"])
@pytest.mark.parametrize("value", ["yes", 1, "False"])
def test_boolean_flags_refuse_anything_but_booleans(flag, value):
    from gradkit.optim import Signum

    with pytest.raises(ValueError, match=f"{flag} must be"):
        Signum([torch.nn.Parameter(torch.zeros(2))], lr=0.1, **{flag: value})
