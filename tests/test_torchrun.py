"""`gradkit train --algo` under real torchrun launches: two nodes joined by a c10d rendezvous on
127.0.0.1, and a stopped peer that must end every other rank with one line naming it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradkit.distributed.launch import free_port

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
TRAIN = ["-m", "gradkit", "train", "--task", "breast-cancer-logreg", "--algo", "allreduce"]


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.timeout(180)
def test_two_torchrun_nodes_train_together(tmp_path):
    endpoint = f"127.0.0.1:{free_port()}"
    out = tmp_path / "run"
    nodes = [
        subprocess.Popen(
            [
                *TORCHRUN,
                "--nnodes",
                "2",
                "--node-rank",
                str(node),
                "--nproc-per-node",
                "1",
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                endpoint,
                "--rdzv-id",
                "gradkit",
                *TRAIN,
                "--epochs",
                "2",
                "--out",
                str(out),
            ],
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for node in (0, 1)
    ]
    outputs = [node.communicate(timeout=150)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    trace = json.loads((out / "allreduce.json").read_text())
    assert trace["workers"] == 2
    assert {s["worker"] for s in trace["steps"]} == {0, 1}
    assert (out / "curves.png").exists()


def _worker_pids(agent: int) -> dict[int, int]:
    """{RANK: pid} of the workers torchrun ``agent`` started."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        ranks = [v[5:] for v in environ if v.startswith(b"RANK=")]
        if parent == agent and ranks:
            found[int(ranks[0])] = int(entry.name)
    return found


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", [signal.SIGSTOP, signal.SIGKILL], ids=["stopped", "killed"])
def test_a_stopped_or_dead_peer_ends_every_rank_with_one_line_naming_it(tmp_path, how):
    agent = subprocess.Popen(
        [
            *TORCHRUN,
            "--standalone",
            "--nproc-per-node",
            "3",
            *TRAIN,
            "--epochs",
            "100000",
            "--timeout",
            "5",
            "--out",
            str(tmp_path / "run"),
        ],
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(pids := _worker_pids(agent.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(pids) == 3, "torchrun did not start three workers"
        time.sleep(10)  # imports, rendezvous, and some training steps
        os.kill(pids[2], how)
        started = time.monotonic()
        _, err = agent.communicate(timeout=120)
        elapsed = time.monotonic() - started
    finally:
        for pid in _worker_pids(agent.pid).values():
            os.kill(pid, signal.SIGKILL)
        agent.kill()
        agent.wait()
    assert agent.returncode != 0
    lines = [line for line in err.splitlines() if line.startswith("gradkit train:")]
    for rank in (0, 1):
        mine = [line for line in lines if f"rank {rank}:" in line]
        assert len(mine) == 1, err
        assert f"rank {rank}: lost rank 2 (dead or stopped" in mine[0], err
    frames = [line for line in err.splitlines() if line.strip().startswith("File ")]
    assert not [frame for frame in frames if "/gradkit/" in frame], err
    assert elapsed < 60


@pytest.mark.timeout(180)
def test_torchrun_trains_a_ddg_pipeline_with_one_stage_per_process(tmp_path):
    """`gradkit train --pipeline 2` under torchrun equals the single-process DDG run (both at
    one thread) step for step, and reports the model's metrics."""
    common = ["--task", "mnist1d-resmlp", "--optimizer", "msgd", "--lr", "0.01", "--epochs", "1",
              "--pipeline", "2"]  # fmt: skip
    real = subprocess.run(
        [*TORCHRUN, "--standalone", "--nproc-per-node", "2", "-m", "gradkit", "train", *common,
         "--out", str(tmp_path / "real")],
        env=_environment(), capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert real.returncode == 0, real.stderr
    single = subprocess.run(
        [sys.executable, "-m", "gradkit", "train", *common, "--out", str(tmp_path / "one")],
        env=_environment(), capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    ours, theirs = (json.loads((tmp_path / run / "metrics.json").read_text())
                    for run in ("real", "one"))  # fmt: skip
    assert ours["step_losses"] == theirs["step_losses"] and len(ours["step_losses"]) == 40
    assert ours["evals"][-1]["test_accuracy"] == theirs["evals"][-1]["test_accuracy"]
    assert ours["optimizer"] == "msgd, DDG K=2 (stash), cut before layers 7"


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("algorithm", "params", "settings"),
    [
        ("async-sgd", ["schedule=quasilinear"], {"schedule": "quasilinear"}),
        ("dave-pg", ["rounds=2", "l1=0.001"], {"rounds": 2, "l1": 0.001}),
    ],
)
def test_torchrun_trains_with_a_parameter_server_and_its_params(tmp_path, algorithm, params,
                                                                settings):  # fmt: skip
    """`gradkit train --algo async-sgd|dave-pg --param ...` under torchrun: the
    parameters reach the program, every server update's staleness is recorded, and the epochs
    count the gradients (DAve-RPG's two per message included)."""
    out = tmp_path / "run"
    argv = [*TORCHRUN, "--standalone", "--nproc-per-node", "3", "-m", "gradkit", "train",
            "--task", "breast-cancer-logreg", "--algo", algorithm, "--lr", "0.5", "--epochs", "3",
            *(arg for p in params for arg in ("--param", p)), "--out", str(out)]  # fmt: skip
    run = subprocess.run(argv, env=_environment(), capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stderr
    trace = json.loads((out / f"{algorithm}.json").read_text())
    assert {k: trace["settings"][k] for k in settings} == settings
    assert trace["settings"]["real"] is True and trace["workers"] == 3
    assert len(trace["server_staleness"]) == len(trace["steps"]) > 0
    assert trace["evals"][-1]["epoch"] == pytest.approx(3.0, abs=0.2)
    assert trace["evals"][-1]["train_loss"] < trace["evals"][0]["train_loss"]
