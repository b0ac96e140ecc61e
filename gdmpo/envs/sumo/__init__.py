"""Environments on real SUMO (the eclipse-sumo / libsumo wheels), one worker process per copy."""

from gdmpo.envs.sumo.atsc import ATSCEnv, ATSCSimulation, yellow_state
from gdmpo.envs.sumo.workers import SumoError, SumoWorkers

__all__ = ["ATSCEnv", "ATSCSimulation", "SumoError", "SumoWorkers", "yellow_state"]
