"""Distributed algorithms written once as worker programs, and the torch.distributed driver."""

from gradkit.distributed import ops
from gradkit.distributed.algorithms import ALGORITHMS, Algorithm, get_algorithm
from gradkit.distributed.gradients import GradientEngine, NonFiniteLossError
from gradkit.distributed.launch import WorkerFailedError, free_port, init_process_group, launch
from gradkit.distributed.problem import Problem
from gradkit.distributed.torch_comm import PeerFailedError, TorchComm
from gradkit.distributed.trace import Trace
from gradkit.distributed.worker import StepRecord, Worker

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "GradientEngine",
    "NonFiniteLossError",
    "PeerFailedError",
    "Problem",
    "StepRecord",
    "TorchComm",
    "Trace",
    "Worker",
    "WorkerFailedError",
    "free_port",
    "get_algorithm",
    "init_process_group",
    "launch",
    "ops",
]
