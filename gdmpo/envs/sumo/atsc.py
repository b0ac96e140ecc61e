"""Adaptive traffic signal control on real SUMO, for any road network with traffic lights.

Agents are the network's traffic lights (``gdmpo.graph.from_sumo``). Every control interval (5 s)
each agent picks one of its own green phases; a light that changes phase first shows 2 s of yellow
on the links that lose right of way, then 3 s of the new phase (the paper's ATSC task, after NSC / Chu et al.).

- Observation of agent i: for each incoming lane, the vehicles within the last 50 m before the stop
  line ("wave") divided by 5 and clipped to [0, 2]; with ``observe_wait`` also the waiting time of
  the lane's first vehicle (divided by ``wait_scale``, clipped to [0, 2]); with ``observe_phase`` 1 on
  the lanes the phase shown now gives green. Lanes are padded with
  zeros to the largest junction (``lane_mask`` says which are real).
- Action: index of the green phase to hold; phases are padded to the largest programme and
  ``action_mask [n, max_phases]`` marks each agent's real ones (the policy masks the rest).
- Reward of agent i: −Σ over its incoming lanes of the halting vehicles (at most 10 counted per lane),
  minus ``wait_weight`` × the summed waiting time of the lanes' first vehicles.

Both are read with one SUMO call per control step (vehicle subscriptions, :mod:`.lane_reads`).

The scenario (network, one or more route files or a ``.sumocfg``, the time window with a warm-up,
demand scale) is resolved by :mod:`gdmpo.envs.sumo.scenario`. Each episode's traffic figures
(``episode_traffic``) count every vehicle, not only those that finished: see
:meth:`ATSCSimulation.metrics`.

Each copy runs in its own worker process (libsumo allows one simulation per process); see
:mod:`gdmpo.envs.sumo.workers`.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from gdmpo.envs.base import ActionError
from gdmpo.envs.signal_options import SignalOptions, check_positive, resolve_timing
from gdmpo.envs.sumo.base import SimulationSpec, SumoSimulation, SumoVecEnv, check_worker_kind, timed_step
from gdmpo.envs.sumo.delay import resco_delay
from gdmpo.envs.sumo.lane_reads import LaneReader
from gdmpo.envs.sumo.networks import GENERALIST_NETWORKS, NetworkOptions, network_parts, run_random_trips
from gdmpo.envs.sumo.programmes import loaded_programmes, needs_loading
from gdmpo.envs.sumo.scenario import Scenario, first_departure
from gdmpo.envs.sumo.workers import SumoError
from gdmpo.graph.signals import SignalStructure
from gdmpo.graph.sumo import from_sumo, union_of_networks
from gdmpo.resources import shipped_folder


def yellow_state(current: str, target: str) -> str:
    """Links green now and red in ``target`` show yellow; all others keep their current state."""
    return "".join("y" if c in "Gg" and t in "rR" else c for c, t in zip(current, target))


#: SUMO's time-to-teleport (s) where neither the options nor the scenario's configuration set one
DEFAULT_TELEPORT_SECONDS = 600


@dataclass(frozen=True, kw_only=True)
class SignalSpec(SimulationSpec):
    """What a worker builds one network's :class:`ATSCSimulation` from: the scenario, its lights as the
    learner read them from the network (in agent order) and the environment's :class:`SignalOptions`."""

    scenario: Scenario
    signals: SignalOptions
    trip_period: float  # seconds between random trips, where the scenario has no routes
    tls_ids: list[str]
    lanes: list[list[str]]  # each light's incoming lanes, in observation order
    lane_lengths: list[list[float]]
    approaches: Any  # upstream lanes read with each incoming lane (``SignalGraph.approaches``), or None
    phases: list[list[str]]  # each light's green phases (state strings), in action order
    green_lanes: list[dict[str, list[int]]]  # per light: phase state -> indices of the lanes it serves
    max_lanes: int  # lanes are padded to this


def green_lanes(lanes: list[str], links: list[tuple[str, str]], phases: list[str]) -> dict[str, list[int]]:
    """For each green phase (state string) of one light, the indices of its incoming ``lanes`` with a
    green link in it (state position m is signal link ``links[m]``)."""
    index = {lane: k for k, lane in enumerate(lanes)}
    return {state: sorted({index[links[m][0]] for m, c in enumerate(state)
                           if c in "Gg" and m < len(links) and links[m][0] in index})
            for state in phases}


def phase_green_table(phases: list[list[str]], greens: list[dict[str, list[int]]], max_lanes: int) -> np.ndarray:
    """``[n, max_phases, max_lanes]``: 1 where phase p of light i gives lane slot k green (from
    :func:`green_lanes` of each light), so the lanes served now are one gather by the phases shown."""
    table = np.zeros((len(phases), max(map(len, phases), default=0), max_lanes), dtype=np.float32)
    for i, (own, served) in enumerate(zip(phases, greens)):
        for p, state in enumerate(own):
            table[i, p, served[state]] = 1.0
    return table


class ATSCSimulation(SumoSimulation):
    """One SUMO simulation of a signalised network, driven from inside a worker process."""

    spec: SignalSpec

    def __init__(self, spec: SignalSpec) -> None:
        super().__init__(spec)
        self.scenario = spec.scenario
        self.shown = np.zeros(len(spec.phases), dtype=np.int64)  # the phase index each light shows now
        self.green_of_phase = phase_green_table(spec.phases, spec.green_lanes, spec.max_lanes)
        self.time = 0.0
        self.seconds = {"sumo": 0.0, "observe": 0.0}  # where step() spends its time (benchmarks)
        self.reader = LaneReader(self.sim, spec.lanes, spec.lane_lengths, spec.max_lanes,
                                 spec.signals.wave_distance, spec.approaches)

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        spec, scenario = self.spec, self.scenario
        routes = scenario.route_files or [self._random_trips(seed)]
        self.start([*scenario.sumo_args(routes), "--seed", str(seed), *self._stepping_args(),
                    "--tripinfo-output", os.devnull,  # enables SUMO's trip statistics without writing them
                    *spec.sumo_options])
        self.reader.reset()
        self.time = scenario.begin
        if scenario.warmup_seconds:  # the network's own programmes run until control starts
            self._advance(scenario.warmup_seconds, timed=False)
        self.shown[:] = 0
        for tls, state in zip(spec.tls_ids, self.current):
            self.sim.trafficlight.setRedYellowGreenState(tls, state)
        return self._read_lanes()

    @timed_step
    def step(self, actions: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """One control interval; returns ``(obs [n, d], reward [n])``."""
        spec, signals = self.spec, self.spec.signals
        current, targets = self.current, [phases[a] for phases, a in zip(spec.phases, actions)]
        changing = [i for i, (c, t) in enumerate(zip(current, targets)) if c != t]
        try:
            if changing:
                for i in changing:
                    self.sim.trafficlight.setRedYellowGreenState(spec.tls_ids[i],
                                                                 yellow_state(current[i], targets[i]))
                self._advance(signals.yellow_seconds)
                for i in changing:
                    self.sim.trafficlight.setRedYellowGreenState(spec.tls_ids[i], targets[i])
                self._advance(signals.control_interval - signals.yellow_seconds)
            else:
                self._advance(signals.control_interval)
        except Exception as err:
            raise SumoError(f"SUMO failed at t = {self.time:.0f} s: {err}\n{self.stderr()}") from None
        self.shown[:] = actions
        return self._observe()

    def _stepping_args(self) -> list[str]:
        """Step length and teleport time: a scenario's configuration keeps its own, unless the
        environment's ``teleport_seconds`` is given; otherwise 1 s steps and 600 s to teleport."""
        scenario, teleport = self.scenario, self.spec.signals.teleport_seconds
        args = [] if scenario.sets("step-length") else ["--step-length", "1"]
        if teleport is None and not scenario.sets("time-to-teleport"):
            teleport = DEFAULT_TELEPORT_SECONDS
        return args + ([] if teleport is None else ["--time-to-teleport", str(teleport)])

    @property
    def current(self) -> list[str]:
        """The state string each light shows now (its phase ``shown``)."""
        return [phases[p] for phases, p in zip(self.spec.phases, self.shown)]

    def _advance(self, seconds: float, timed: bool = True) -> None:
        self.time += seconds
        start = time.perf_counter()
        self.sim.simulationStep(self.time)
        if timed:
            self.seconds["sumo"] += time.perf_counter() - start
        if self.time >= self.scenario.end - 0.5 and self._nothing_departed():
            first = first_departure(self.scenario.route_files)
            routes = ", ".join(os.path.basename(r) for r in self.scenario.route_files) or "the random trips"
            raise SumoError(f"no vehicle departed in the window {self.scenario.window()} from {routes}"
                            + (f", whose first departure is at {first:g} s" if first is not None else "")
                            + "; set begin (or the sumocfg's <begin>) to where the traffic is")

    def _nothing_departed(self) -> bool:
        """No vehicle has entered the network this episode: none finished and none is driving."""
        return (int(self.sim.simulation.getParameter("", "device.tripinfo.count")) == 0
                and self.sim.vehicle.getIDCount() == 0)

    # ------------------------------------------------------------------ measurements
    def timings(self) -> dict[str, float]:
        """Seconds spent in :meth:`step` since the simulation was built: all of it (``step``), inside
        SUMO's own simulation steps (``sumo``), reading observations and rewards (``observe``) and the
        rest, mostly setting signal states (``signals``)."""
        step = self.busy_seconds()
        return {"step": step, **self.seconds, "signals": max(step - sum(self.seconds.values()), 0.0)}

    def _observe(self) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        try:
            return self._read_lanes()
        finally:
            self.seconds["observe"] += time.perf_counter() - start

    def _read_lanes(self) -> tuple[np.ndarray, np.ndarray]:
        signals = self.spec.signals
        counts = self.reader.read()  # [n, max_lanes] each
        blocks = [np.minimum(counts.near / signals.wave_scale, signals.obs_clip)]
        if signals.observe_wait:
            blocks.append(np.minimum(counts.first_wait / signals.wait_scale, signals.obs_clip))
        if signals.observe_phase:  # 1 on the lanes the phase shown now serves
            blocks.append(self.green_of_phase[np.arange(len(self.shown)), self.shown])
        reward = -(np.minimum(counts.halting, signals.max_halting).sum(1)
                   + signals.wait_weight * counts.first_wait.sum(1))
        return np.concatenate(blocks, axis=1).astype(np.float32), reward.astype(np.float32)

    def tls_states(self) -> list[str]:
        """The signal state strings SUMO shows now, in agent order."""
        return [self.sim.trafficlight.getRedYellowGreenState(tls) for tls in self.spec.tls_ids]

    def metrics(self) -> dict[str, float]:
        """Traffic figures of the episode so far, counting every vehicle, not only finished trips.

        A policy that leaves vehicles stuck must not look better than one that clears them, so the
        leading figures average over all vehicles that departed, with the time so far for those
        still driving: ``delay`` (time lost to driving below the allowed speed, plus the insertion
        delay of waiting to enter), ``trip_time``, and ``waiting_time`` (mean s per vehicle).
        ``resco_delay`` is RESCO's delay (:func:`gdmpo.envs.sumo.delay.resco_delay`): the same mean,
        also over the vehicles due so far that never entered the network (``waiting_to_insert``), each
        charged its wait so far. Also: ``departed``, ``arrived``, ``in_network`` and ``waiting_to_insert`` at the end,
        ``insertion_delay`` (mean s), ``total_waiting`` (vehicle-seconds stopped) and ``throughput``
        (arrivals per hour of control). ``*_completed`` are SUMO's means over finished trips only.
        """
        if not self.running:
            return {}
        sim, stat = self.sim, self.sim.simulation.getParameter
        done = int(stat("", "device.tripinfo.count"))
        means = {key: float(stat("", f"device.tripinfo.{key}")) if done else 0.0
                 for key in ("duration", "timeLoss", "waitingTime", "departDelay")}
        running = sim.vehicle.getIDList()
        now = sim.simulation.getTime()
        trip = sum(now - sim.vehicle.getDeparture(v) for v in running)
        lost = sum(sim.vehicle.getTimeLoss(v) for v in running)
        waited = sum(sim.vehicle.getAccumulatedWaitingTime(v) for v in running)
        inserted_late = sum(sim.vehicle.getDepartDelay(v) for v in running)
        pending = sim.simulation.getPendingVehicles()
        never_inserted = [sim.vehicle.getDepartDelay(v) for v in pending]  # each one's wait so far to enter
        vehicles = done + len(running)
        per_vehicle = max(vehicles, 1)
        hours = max(now - self.scenario.control_start, 1.0) / 3600
        total_waiting = done * means["waitingTime"] + waited
        insertion = done * means["departDelay"] + inserted_late
        delayed = done * means["timeLoss"] + lost + insertion
        return {"delay": delayed / per_vehicle,
                "resco_delay": resco_delay(delayed, vehicles, never_inserted),
                "trip_time": (done * means["duration"] + trip) / per_vehicle,
                "waiting_time": total_waiting / per_vehicle,
                "departed": float(vehicles), "arrived": float(done), "in_network": float(len(running)),
                "waiting_to_insert": float(len(pending)),
                "insertion_delay": insertion / per_vehicle, "total_waiting": total_waiting,
                "throughput": done / hours,
                "trip_time_completed": means["duration"], "delay_completed": means["timeLoss"]}

    @staticmethod
    def combine_metrics(parts: list[dict[str, float]]) -> dict[str, float]:
        """The figures of several networks run as one copy: per-vehicle means weighted by the vehicles
        each network counts (``*_completed`` by its finished trips), counts and totals summed."""
        parts = [p for p in parts if p]
        if len(parts) <= 1:
            return parts[0] if parts else {}
        out = {}
        for key in parts[0]:
            if key in ("delay", "trip_time", "waiting_time", "insertion_delay"):
                weight = "departed"
            elif key == "resco_delay":
                weight = "due"
            elif key.endswith("_completed"):
                weight = "arrived"
            else:
                out[key] = sum(p[key] for p in parts)
                continue
            weights = [p["departed"] + p["waiting_to_insert"] if weight == "due" else p[weight] for p in parts]
            total = sum(weights)
            out[key] = sum(p[key] * w for p, w in zip(parts, weights)) / total if total else 0.0
        return out

    def _random_trips(self, seed: int) -> str:
        """Trips between random edges at the configured rate, generated by SUMO's randomTrips tool."""
        out = Path(self.workdir) / f"trips-{seed}.xml"  # the worker's own folder: no clashes between workers
        if not out.exists():
            run_random_trips(self.scenario.net_file, seed, out, Path(self.workdir) / f"routes-{seed}.rou.xml",
                             self.spec.trip_period, self.scenario.begin, self.scenario.end)
        return str(out)


class ATSCEnv(SumoVecEnv):
    """``B`` copies of a signalised SUMO network, each in its own worker process.

    Args:
        net_file: SUMO ``.net.xml`` with traffic lights (or from ``sumocfg``).
        route_file: routes or flows: one path, several (a list or comma-separated), or None to
            generate random trips (``trip_period`` seconds apart, seeded per episode) with randomTrips.
        sumocfg: a ``.sumocfg``: SUMO runs it as it would (``-c``: its additional files, vehicle types,
            signal programmes and options), gdmpo setting only the window, seed, scale and outputs.
        scenario: a named scenario instead of the files, ``resco:<map>`` (see ``gdmpo scenarios``).
        begin: simulated time SUMO starts at (s); ``warmup_seconds``: the network's own programmes
            run that long before the agents take control.
        end, episode_seconds: when control ends, or for how long it runs (default 3600 s).
        scale: demand scale (SUMO's ``--scale``).
        neighbours, neighbour_distance: the neighbour rule of :func:`gdmpo.graph.from_sumo`.
        timing: ``default`` (5 s decisions with 2 s yellow) or ``resco`` (10 s with 3 s, RESCO's real maps).
        control_interval, yellow_seconds: seconds per decision, of which yellow on a phase change
            (override the timing's).
        observe_wait: add each lane's first-vehicle waiting time to the observation.
        observe_phase: add, per lane, 1 if the phase shown now gives it green (what a controller needs
            to weigh a switch, which costs ``yellow_seconds``, against holding).
        wait_weight: reward weight of the waiting time (0: queue reward only).
        teleport_seconds: SUMO's time-to-teleport; default the configuration's, else 600.
        backend: ``libsumo`` (fast, default) or ``traci``.
        sumo_options: extra SUMO command-line options.
        workers: ``process`` (local worker processes) or ``ray`` (Ray actors anywhere in the cluster);
            ``worker_cpus``: Ray CPUs per actor.
        networks: instead of one network, several (entries of :mod:`gdmpo.envs.sumo.networks`, e.g.
            ``[{grid: 3}, {irregular: 11}, {spider: 5}]``), each with its own demand: every copy is
            their disjoint union, one graph whose lights are the networks' in turn (named
            ``<network>/<light>``), each network simulated by its own worker. They share the control
            window and every other option.
    """

    simulation_class = ATSCSimulation
    #: logged per training iteration (``metrics.csv``): RESCO's delay, delay over departed vehicles,
    #: vehicles never inserted, of the episodes that finished
    episode_figure_names = ("resco_delay", "delay", "waiting_to_insert")

    def __init__(self, num_envs: int = 1, seed: int | None = None, device: str | torch.device = "cpu", *,
                 net_file: str | os.PathLike[str] | None = None, route_file: Any = None,
                 sumocfg: str | os.PathLike[str] | None = None, scenario: str | None = None,
                 begin: float | None = None, end: float | None = None,
                 episode_seconds: int | None = None, warmup_seconds: float = 0.0, scale: float = 1.0,
                 neighbours: str = "road", neighbour_distance: float = 1000.0,
                 trip_period: float = 2.0, timing: str = "default", control_interval: int | None = None,
                 yellow_seconds: int | None = None,
                 wave_distance: float = 50.0, wave_scale: float = 5.0,
                 obs_clip: float = 2.0, max_halting: int = 10, observe_wait: bool = False, observe_phase: bool = False,
                 wait_scale: float = 60.0, wait_weight: float = 0.0, teleport_seconds: int | None = None, backend: str = "libsumo",
                 sumo_options: tuple[str, ...] = (), workers: str = "process", worker_cpus: float = 1.0,
                 networks: list[dict[str, Any]] | None = None) -> None:
        super().__init__(num_envs, seed, device)
        check_worker_kind(workers)  # before the network is read: a typo costs nothing
        for name, value in (("scale", scale), ("trip_period", trip_period), ("neighbour_distance", neighbour_distance)):
            check_positive(name, value)
        control_interval, yellow_seconds = resolve_timing(timing, control_interval, yellow_seconds)
        signals = SignalOptions(control_interval=control_interval, yellow_seconds=yellow_seconds,
                                wave_distance=wave_distance, wave_scale=wave_scale, obs_clip=obs_clip,
                                observe_wait=observe_wait, observe_phase=observe_phase, wait_scale=wait_scale,
                                max_halting=max_halting, wait_weight=wait_weight, teleport_seconds=teleport_seconds)
        self.signal_options = signals
        if scenario is not None:
            if net_file is not None or sumocfg is not None:
                raise ValueError("give the network as scenario, net_file or sumocfg, not several")
            from gdmpo.envs.sumo import resco

            sumocfg = resco.sumocfg(scenario)
        own = NetworkOptions(net_file=None if net_file is None else str(net_file), route_file=route_file,
                             sumocfg=None if sumocfg is None else str(sumocfg), begin=begin, end=end,
                             warmup_seconds=warmup_seconds, scale=scale, trip_period=trip_period)
        parts = network_parts(networks, own, episode_seconds, tuple(sumo_options))
        self.network_names = [part.name for part in parts]
        self.scenarios = [part.scenario for part in parts]
        self.scenario = self.scenarios[0]
        steps = {part.name: int(part.scenario.episode_seconds // control_interval) for part in parts}
        if len(set(steps.values())) > 1:
            raise ValueError(f"networks: every network needs the same control window, got control steps {steps}")
        graphs = [from_sumo(part.net_file, neighbours, neighbour_distance,
                            loaded_programmes(part, sumo_options) if needs_loading(part, sumo_options) else None,
                            approach_distance=wave_distance)
                  for part in self.scenarios]
        self.graph = graphs[0] if len(graphs) == 1 else union_of_networks(graphs, self.network_names)
        self.num_agents = self.graph.num_nodes
        self.max_episode_steps = next(iter(steps.values()))
        self.control_interval = control_interval
        self.has_terminal_states = False
        lanes, phases = self.graph.lanes, self.graph.phases
        self.max_lanes = max(len(x) for x in lanes)
        self.max_phases = max(len(x) for x in phases)
        self.lane_mask = torch.zeros(self.num_agents, self.max_lanes, dtype=torch.bool)
        self.action_mask = torch.zeros(self.num_agents, self.max_phases, dtype=torch.bool)
        for i in range(self.num_agents):
            self.lane_mask[i, : len(lanes[i])] = True
            self.action_mask[i, : len(phases[i])] = True
        self.lane_features = signals.lane_features
        self.observation_space = gym.spaces.Box(0.0, obs_clip, (self.max_lanes * self.lane_features,), dtype=np.float32)
        self.signal_structure = SignalStructure.from_graph(self.graph, self.max_lanes)
        self.action_space = gym.spaces.Discrete(self.max_phases)
        specs = [SignalSpec(backend=backend, sumo_options=tuple(sumo_options), scenario=part.scenario,
                            signals=signals, trip_period=part.trip_period, tls_ids=list(graph.names),
                            lanes=graph.lanes, lane_lengths=graph.lane_lengths, approaches=graph.approaches,
                            phases=graph.phases,
                            green_lanes=[green_lanes(*light) for light in zip(graph.lanes, graph.links, graph.phases)],
                            max_lanes=self.max_lanes)
                 for part, graph in zip(parts, graphs)]
        self._start_workers(specs, workers, worker_cpus, [graph.num_nodes for graph in graphs])

    def _step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        allowed = self.action_mask.to(actions.device)[torch.arange(self.num_agents, device=actions.device), actions]
        if not bool(allowed.all()):
            env, agent = (~allowed).nonzero()[0].tolist()
            raise ActionError(f"agent {agent} ({self.graph.names[agent]}) of copy {env} has "
                              f"{int(self.action_mask[agent].sum())} phases; got phase {int(actions[env, agent])}")
        obs, reward, _ = self._step_workers(actions.tolist())
        length = self._episode_length + 1
        truncated = length >= self.max_episode_steps
        terminated = torch.zeros_like(truncated)
        return obs, reward, terminated, truncated


def shipped_network(name: str) -> tuple[str, str]:
    """``(net_file, route_file)`` of a network shipped in gdmpo's ``graphs/`` folder."""
    graphs = shipped_folder("graphs")
    net, routes = graphs / f"{name}.net.xml", graphs / f"{name}.rou.xml"
    if not net.is_file():
        raise FileNotFoundError(f"{net}: shipped network missing; reinstall gdmpo (or, in a source checkout, run "
                                "`python graphs/make_grid.py`)")
    return str(net), str(routes)


def atsc_shipped(num_envs: int = 1, seed: int | None = None, *, shipped: str, **options: Any) -> ATSCEnv:
    """Entry point of ``atsc-grid{size}x{size}`` (``shipped="grid{size}x{size}"``): a network shipped
    with gdmpo, with its peak-hour flows."""
    net, routes = shipped_network(shipped)
    return ATSCEnv(num_envs, seed, **{"net_file": net, "route_file": routes, **options})


def atsc_grid(size: int):
    """A constructor of the shipped ``size`` x ``size`` grid (what ``atsc-grid{size}x{size}`` builds)."""
    return functools.partial(atsc_shipped, shipped=f"grid{size}x{size}")


def atsc_generalist(num_envs: int = 1, seed: int | None = None, **options: Any) -> ATSCEnv:
    """Entry point of ``atsc-generalist``: every copy is the five networks of
    :data:`~gdmpo.envs.sumo.networks.GENERALIST_NETWORKS` at once (``networks=`` replaces them)."""
    return ATSCEnv(num_envs, seed, **{"networks": [dict(n) for n in GENERALIST_NETWORKS], **options})
