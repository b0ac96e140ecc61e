"""Environments on real SUMO (the eclipse-sumo / libsumo wheels), one worker process per copy."""

from gdmpo.envs.sumo.atsc import ATSCEnv, ATSCSimulation, atsc_generalist, atsc_grid, shipped_network, yellow_state
from gdmpo.envs.sumo.base import SumoSimulation, SumoVecEnv
from gdmpo.envs.sumo.vehicles import VehicleEnv, VehicleSimulation, figure_eight, ring_attenuation
from gdmpo.envs.sumo.workers import SumoError, SumoWorkers

__all__ = ["ATSCEnv", "ATSCSimulation", "SumoError", "SumoSimulation", "SumoVecEnv", "SumoWorkers", "VehicleEnv",
           "VehicleSimulation", "atsc_generalist", "atsc_grid", "figure_eight", "ring_attenuation", "shipped_network", "yellow_state"]
