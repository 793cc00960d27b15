"""Virtual-clock cluster simulation (SimPy) of distributed worker programs."""

from gradkit.sim.cluster import Cluster, ComputeModel, NetworkModel
from gradkit.sim.simulator import SimulationError, Simulator, simulate

__all__ = [
    "Cluster",
    "ComputeModel",
    "NetworkModel",
    "SimulationError",
    "Simulator",
    "simulate",
]
