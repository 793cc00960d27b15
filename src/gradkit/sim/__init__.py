"""Virtual-clock cluster simulation (SimPy) of distributed worker programs."""

from gradkit.sim.cluster import SERVER, Cluster, ComputeModel, NetworkModel
from gradkit.sim.simulator import SimulationError, Simulator, simulate

__all__ = [
    "SERVER",
    "Cluster",
    "ComputeModel",
    "NetworkModel",
    "SimulationError",
    "Simulator",
    "simulate",
]
