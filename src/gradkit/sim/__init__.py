"""Virtual-clock cluster simulation (SimPy) of distributed worker programs."""

from gradkit.sim.cluster import Cluster, ComputeModel, NetworkModel
from gradkit.sim.pipeline import PipelineTiming, backprop_time, simulate_ddg
from gradkit.sim.simulator import SimulationError, Simulator, simulate

__all__ = [
    "Cluster",
    "ComputeModel",
    "NetworkModel",
    "PipelineTiming",
    "SimulationError",
    "Simulator",
    "backprop_time",
    "simulate",
    "simulate_ddg",
]
