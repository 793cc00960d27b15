"""The parameter server's rules, staleness records and imposed delays."""

from __future__ import annotations

import pytest
import torch

from gradkit.distributed.delays import DelayProfile, delayed_sgd
from gradkit.distributed.server import ParameterServer
from gradkit.optim.schedules import Schedule


def test_add_rule_sums_pushes_and_records_staleness_per_update():
    server = ParameterServer(torch.zeros(3))
    a = server.pull(rank=0)
    server.pull(rank=1)
    server.push(1, torch.ones(3))
    server.push(1, torch.ones(3))  # rank 1 did not pull again: one update in between
    state = server.push(0, a + 2)  # rank 0 read before both
    torch.testing.assert_close(state, torch.full((3,), 4.0))
    assert server.updates == 3 and server.staleness == [0, 1, 2]
    server.push(0, torch.zeros(3), reply=True)  # the reply is rank 0's next read
    server.push(1, torch.zeros(3))
    server.push(0, torch.zeros(3))
    assert server.staleness[-3:] == [3, 4, 1]


def test_one_worker_without_delays_is_plain_sgd():
    schedule = Schedule("polynomial", 0.5, 0.6)
    server = ParameterServer(torch.ones(4, dtype=torch.float64), "sgd", schedule)
    x = torch.ones(4, dtype=torch.float64)
    for n in range(1, 30):
        server.push(0, 2 * server.pull(0))
        x = x - schedule(n) * 2 * x
    torch.testing.assert_close(server.state, x, rtol=0, atol=0)
    assert server.staleness == [0] * 29


@pytest.mark.parametrize("profile", ["bounded:4", "power:0.5", "linear:0.5"])
def test_imposed_delays_apply_the_gradient_of_iterate_n_minus_d_n(profile):
    delays, schedule = DelayProfile.parse(profile), Schedule("quasilinear", 0.2)
    a = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    start = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    server = ParameterServer(start, "sgd", schedule, delays, capacity=80)
    for _ in range(80):
        server.push(0, a * server.pull(0))
    expected = delayed_sgd(lambda x, n: a * x, start, schedule, delays, 80)
    torch.testing.assert_close(server.state, expected, rtol=1e-13, atol=1e-16)  # fused add
    single = ParameterServer(start.float(), "sgd", schedule, delays, capacity=80)
    for _ in range(80):
        single.push(0, a.float() * single.pull(0))
    assert single.state.dtype == torch.float32
    torch.testing.assert_close(single.state, expected.float(), rtol=1e-5, atol=1e-6)
    assert server.staleness == [delays(n) for n in range(1, 81)]


def test_bad_servers_are_refused():
    with pytest.raises(ValueError, match="unknown server rule 'mean'; choose from add, sgd"):
        ParameterServer(torch.zeros(2), "mean")
    with pytest.raises(ValueError, match="the sgd rule needs a step schedule"):
        ParameterServer(torch.zeros(2), "sgd")
    with pytest.raises(ValueError, match="imposed delays need the run's number of updates"):
        ParameterServer(torch.zeros(2), "sgd", Schedule("constant"), DelayProfile("bounded", 2))
    short = ParameterServer(torch.zeros(2), "sgd", Schedule("constant"),
                            DelayProfile("linear", 0.5), capacity=4)  # fmt: skip
    for _ in range(5):
        short.push(0, short.pull(0))
    with pytest.raises(RuntimeError, match="reads 3 updates back, beyond the 2 kept"):
        short.pull(0)
    elastic = ParameterServer(torch.zeros(2), record=False)
    elastic.push(0, torch.ones(2))
    assert elastic.staleness == [] and elastic.updates == 1
