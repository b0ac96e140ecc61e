"""Environments on real SUMO (the eclipse-sumo / libsumo wheels), one worker process per copy."""

from gdmpo.envs.sumo.atsc import ATSCEnv, ATSCSimulation, atsc_grid, shipped_network, yellow_state
from gdmpo.envs.sumo.workers import SumoError, SumoWorkers

__all__ = ["ATSCEnv", "ATSCSimulation", "SumoError", "SumoWorkers", "atsc_grid", "shipped_network", "yellow_state"]
