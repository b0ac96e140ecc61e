"""Connected vehicles on closed SUMO tracks, every vehicle an agent: Ring Attenuation and Figure Eight.

The paper's Flow tasks (Wu et al., Flow benchmarks) built directly on the SUMO wheels:

- ``ring-attenuation``: a one-lane ring whose length is drawn uniformly from ``length_range``
  (default [220, 270] m) at every reset, 22 vehicles evenly spaced and at rest, accelerations in
  [-1, 1] m/s², 3000 steps of 0.1 s. Reward of agent i: 4 (20 − |20 − v_i|) / (20 n) − 4 |a_i| / n.
- ``figure-eight``: two loops of radius 30 m joined by two 60 m straights crossing at an
  unsignalised priority junction (track length 4 r + 3 π r ≈ 402.7 m), 14 vehicles, accelerations in
  [-3, 3] m/s², 1500 steps. Reward of agent i: 20 − |20 − v_i|.

Observation of agent i: (speed / speed limit, position along the track / track length). Vehicle i is
agent i for the whole episode; vehicles start in agent order along the track (i + 1 ahead of i) and,
one lane without overtaking, keep it, so the communication graph is the fixed ring i ↔ i ± 1.

Dynamics: each step the agent's acceleration sets its next speed, ``max(0, v + a dt)``, through
SUMO's ``setSpeed`` with speed mode "obey safe speed" (plus right of way at the junction for the
figure eight), so SUMO prevents rear-end collisions and keeps the crossing collision-free. The
agents' vehicle type uses SUMO's Krauss model (σ = 0) only to bound speeds safely. With
:meth:`VehicleEnv.set_car_following` every vehicle is instead driven by SUMO's IDM (a = 1, b = 1.5,
T = 1 s, s0 = 2 m, δ = 4; the reference "human" traffic): actions are then ignored and the reward's
acceleration term uses the realised acceleration. Start positions get a seeded uniform jitter of
``start_jitter`` metres: SUMO's IDM is deterministic, and this perturbation is what lets its
stop-and-go waves form (Flow adds acceleration noise instead).

Teleports are off and collisions are only recorded (SUMO's ``--collision.action warn``), so no vehicle
should leave the track. If one does (e.g. through user ``sumo_options``), its row keeps its last
observation with zero reward, the episode is truncated, and the loss is counted in the episode's
figures (``vehicles_lost``); arrays are never re-ordered or shortened. Episode figures
(``episode_traffic``): mean speed (the authors' Figure Eight measure), speed spread, collisions,
teleports, vehicles lost.
"""

from __future__ import annotations

import math
import os
import subprocess
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from gdmpo.envs.sumo.base import SimulationSpec, SumoSimulation, SumoVecEnv, timed_step
from gdmpo.envs.sumo.workers import SumoError
from gdmpo.graph import ring
from gdmpo.graph.sumo import sumo_binary

SPEED_LIMIT = 30.0
VEHICLE_LENGTH = 5.0
TARGET_SPEED = 20.0
AGENT_TYPE = ('<vType id="agent" carFollowModel="Krauss" sigma="0" accel="3" decel="4.5" emergencyDecel="9" '
              'tau="1" minGap="2.5" length="5" maxSpeed="30" speedFactor="1" speedDev="0"/>')
IDM_TYPE = ('<vType id="idm" carFollowModel="IDM" accel="1" decel="1.5" emergencyDecel="9" tau="1" minGap="2" '
            'delta="4" length="5" maxSpeed="30" speedFactor="1" speedDev="0"/>')
SPEED_MODE = {"ring": 1, "figure-eight": 1 | 8}  # bit 0: safe speed; bit 3: right of way at junctions


@dataclass(frozen=True)
class Track:
    """A closed track as plain SUMO XML: the edges of one lap in driving order and their lengths."""

    nodes: str
    edges: str
    lap: tuple[str, ...]
    lengths: tuple[float, ...]
    crossing_exits: frozenset[str] = frozenset()  # edges leaving a junction with crossing traffic

    @property
    def length(self) -> float:
        return float(sum(self.lengths))

    def locate(self, position: float) -> tuple[int, float]:
        """(index in ``lap``, position on that edge) of a distance along the lap."""
        position %= self.length
        for k, edge_length in enumerate(self.lengths):
            if position < edge_length or k == len(self.lengths) - 1:
                return k, min(position, edge_length - 1e-3)
            position -= edge_length
        raise AssertionError("unreachable")


def _arc(cx: float, cy: float, radius: float, start: float, sweep: float, points: int = 12) -> str:
    """Shape points of a circular arc (angles in radians), for drawing only: lengths are explicit."""
    return " ".join(f"{cx + radius * math.cos(start + sweep * k / points):.2f},"
                    f"{cy + radius * math.sin(start + sweep * k / points):.2f}" for k in range(points + 1))


def ring_track(length: float) -> Track:
    """A one-lane ring of ``length`` metres as four quarter-circle edges."""
    radius = length / (2 * math.pi)
    names = ("bottom", "right", "top", "left")
    nodes = [f'<node id="n{k}" x="{radius * math.cos(-math.pi / 2 + k * math.pi / 2):.2f}" '
             f'y="{radius * math.sin(-math.pi / 2 + k * math.pi / 2):.2f}" type="priority"/>' for k in range(4)]
    edges = [f'<edge id="{names[k]}" from="n{k}" to="n{(k + 1) % 4}" numLanes="1" speed="{SPEED_LIMIT}" '
             f'length="{length / 4:.4f}" shape="{_arc(0, 0, radius, -math.pi / 2 + k * math.pi / 2, math.pi / 2)}"/>'
             for k in range(4)]
    return Track(_xml("nodes", nodes), _xml("edges", edges), names, (round(length / 4, 4),) * 4)


def figure_eight_track(radius: float = 30.0) -> Track:
    """Two loops of ``radius`` joined by two straights (each 2 × radius) crossing at node ``centre``."""
    r = radius
    loop = 1.5 * math.pi * r  # three quarters of a circle
    nodes = ['<node id="centre" x="0" y="0" type="priority"/>', f'<node id="east" x="{r}" y="0" type="priority"/>',
             f'<node id="north" x="0" y="{r}" type="priority"/>', f'<node id="south" x="0" y="{-r}" type="priority"/>',
             f'<node id="west" x="{-r}" y="0" type="priority"/>']
    plan = [  # (id, from, to, length, shape)
        ("centre_east", "centre", "east", r, None),
        ("upper_loop", "east", "north", loop, _arc(r, r, r, -math.pi / 2, 1.5 * math.pi)),
        ("north_centre", "north", "centre", r, None),
        ("centre_south", "centre", "south", r, None),
        ("lower_loop", "south", "west", loop, _arc(-r, -r, r, math.pi / 2, 1.5 * math.pi)),
        ("west_centre", "west", "centre", r, None),
    ]
    edges = [f'<edge id="{e}" from="{a}" to="{b}" numLanes="1" speed="{SPEED_LIMIT}" length="{length:.4f}"'
             + (f' shape="{shape}"' if shape else "") + "/>" for e, a, b, length, shape in plan]
    return Track(_xml("nodes", nodes), _xml("edges", edges), tuple(p[0] for p in plan),
                 tuple(round(p[3], 4) for p in plan), frozenset({"centre_east", "centre_south"}))


def _xml(root: str, items: list[str]) -> str:
    return f"<{root}>\n" + "\n".join(items) + f"\n</{root}>\n"


def build_track(kind: str, length: float | None) -> Track:
    if kind == "ring":
        return ring_track(float(length))
    if kind == "figure-eight":
        return figure_eight_track()
    raise ValueError(f"unknown track {kind!r}; expected 'ring' or 'figure-eight'")


@dataclass(frozen=True, kw_only=True)
class VehicleSpec(SimulationSpec):
    """One closed-track simulation (the options of :class:`VehicleEnv`, checked there)."""

    track: str
    num_vehicles: int
    length_range: tuple[float, float]
    max_accel: float
    horizon: int
    dt: float
    reward: str
    start_jitter: float


class VehicleSimulation(SumoSimulation):
    """One closed-track SUMO run in a worker: vehicles ``v0 … v{n-1}`` are the agents, in order."""

    spec: VehicleSpec

    def __init__(self, spec: VehicleSpec) -> None:
        super().__init__(spec)
        self.ids = [f"v{i}" for i in range(spec.num_vehicles)]
        self.car_following = False
        self.track: Track | None = None
        self.offsets: dict[str, float] = {}
        self._nets: dict[float, str] = {}

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        spec, rng = self.spec, np.random.default_rng(seed)
        low, high = spec.length_range
        length = round(float(rng.uniform(low, high)), 2) if spec.track == "ring" else None
        self.track = build_track(spec.track, length)
        self.offsets = dict(zip(self.track.lap, np.cumsum((0.0,) + self.track.lengths[:-1])))
        net = self._network(self.track)
        routes = self._routes(self.track, rng)
        self.start(["-n", net, "-r", routes, "--seed", str(seed), "--step-length", str(spec.dt),
                    "--time-to-teleport", "-1", "--collision.action", "warn", "--collision.check-junctions", "true",
                    *spec.sumo_options])
        self.sim.simulationStep()  # inserts every vehicle at its start position
        absent = self._missing()
        missing = [v for v in self.ids if v in absent]
        if missing:
            raise SumoError(f"{spec.track} of {self.track.length:.1f} m: SUMO could not insert {len(missing)} of "
                            f"{len(self.ids)} vehicles ({', '.join(missing[:5])}); use fewer vehicles\n{self.stderr()}")
        if not self.car_following:
            for vehicle in self.ids:
                self.sim.vehicle.setSpeedMode(vehicle, SPEED_MODE[spec.track])
        self.figures = {"speed_sum": 0.0, "speed_sq_sum": 0.0, "samples": 0, "collisions": 0, "teleports": 0,
                        "vehicles_lost": 0}
        self.last_obs = np.zeros((len(self.ids), 2), dtype=np.float32)
        self.speeds = np.zeros(len(self.ids))  # m/s, as last observed (the next step accelerates from them)
        obs, _, _ = self._observe(np.zeros(len(self.ids)))
        return obs, np.zeros(len(self.ids), dtype=np.float32)

    @timed_step
    def step(self, accelerations: list[float]) -> tuple[np.ndarray, np.ndarray, bool]:
        """Apply one acceleration per vehicle for ``dt``; returns ``(obs [n, 2], reward [n], lost)``."""
        spec, vehicle_api = self.spec, self.sim.vehicle
        commanded = np.clip(np.asarray(accelerations, dtype=np.float64), -spec.max_accel, spec.max_accel)
        try:
            if not self.car_following:
                missing = self._missing()
                for vehicle, speed, a in zip(self.ids, self.speeds, commanded):
                    if vehicle not in missing:
                        vehicle_api.setSpeed(vehicle, max(0.0, speed + a * spec.dt))
            self.sim.simulationStep()
        except Exception as err:
            raise SumoError(f"SUMO failed at t = {self.sim.simulation.getTime():.1f} s: {err}\n{self.stderr()}") from None
        self.figures["collisions"] += self.sim.simulation.getCollidingVehiclesNumber()
        self.figures["teleports"] += self.sim.simulation.getStartingTeleportNumber()
        return self._observe(commanded)

    def _observe(self, commanded: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        vehicle_api, track = self.sim.vehicle, self.track
        obs, reward = self.last_obs.copy(), np.zeros(len(self.ids), dtype=np.float32)
        missing = self._missing()
        for i, vehicle in enumerate(self.ids):
            if vehicle in missing:
                continue
            speed = self.speeds[i] = vehicle_api.getSpeed(vehicle)
            obs[i] = (speed / SPEED_LIMIT, (self._position(vehicle) % track.length) / track.length)
            accel = vehicle_api.getAcceleration(vehicle) if self.car_following else commanded[i]
            reward[i] = self._reward(speed, accel)
            self.figures["speed_sum"] += speed
            self.figures["speed_sq_sum"] += speed * speed
            self.figures["samples"] += 1
        self.figures["vehicles_lost"] = max(self.figures["vehicles_lost"], len(missing))
        self.last_obs = obs
        return obs, reward, bool(missing)

    def _position(self, vehicle: str) -> float:
        """Distance (m) from the start of the lap to the vehicle's front."""
        return self.offsets.get(self.sim.vehicle.getRoadID(vehicle), 0.0) + self.sim.vehicle.getLanePosition(vehicle)

    def _missing(self) -> set[str]:
        """Agent vehicles no longer in the simulation (none in normal operation)."""
        if self.sim.vehicle.getIDCount() == len(self.ids):
            return set()
        return set(self.ids) - set(self.sim.vehicle.getIDList())

    def _reward(self, speed: float, accel: float) -> float:
        n = len(self.ids)
        closeness = TARGET_SPEED - abs(TARGET_SPEED - speed)
        if self.spec.reward == "ring":
            return 4.0 * closeness / (TARGET_SPEED * n) - 4.0 * abs(accel) / n
        return closeness

    def vehicle_states(self) -> tuple[np.ndarray, np.ndarray]:
        """``(gap to the vehicle ahead [n] m, speed [n] m/s)`` along the track (NaN for a lost vehicle)."""
        track, missing = self.track, self._missing()
        position = np.full(len(self.ids), np.nan)
        speed = np.full(len(self.ids), np.nan)
        for i, vehicle in enumerate(self.ids):
            if vehicle not in missing:
                position[i], speed[i] = self._position(vehicle), self.sim.vehicle.getSpeed(vehicle)
        gap = (np.roll(position, -1) - position) % track.length - VEHICLE_LENGTH  # vehicle i + 1 is ahead
        return gap, speed

    def set_car_following(self, enabled: bool) -> None:
        """From the next reset on, SUMO's IDM drives every vehicle (``True``) or the agents do."""
        self.car_following = bool(enabled)

    def metrics(self) -> dict[str, float]:
        f = getattr(self, "figures", None)
        if not f or not f["samples"]:
            return {}
        mean = f["speed_sum"] / f["samples"]
        spread = math.sqrt(max(f["speed_sq_sum"] / f["samples"] - mean * mean, 0.0))
        return {"mean_speed": mean, "speed_std": spread, "track_length": self.track.length,
                "collisions": float(f["collisions"]), "teleports": float(f["teleports"]),
                "vehicles_lost": float(f["vehicles_lost"])}

    # ------------------------------------------------------------------ files
    def _network(self, track: Track) -> str:
        """netconvert the track once per length (cached in the worker's directory)."""
        key = track.length
        if key not in self._nets:
            base = os.path.join(self.workdir, f"track-{len(self._nets)}")
            with open(base + ".nod.xml", "w") as handle:
                handle.write(track.nodes)
            with open(base + ".edg.xml", "w") as handle:
                handle.write(track.edges)
            result = subprocess.run([sumo_binary("netconvert"), "-n", base + ".nod.xml", "-e", base + ".edg.xml",
                                     "-o", base + ".net.xml", "--no-internal-links", "true", "--no-turnarounds", "true"],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise SumoError(f"netconvert failed for the {self.spec.track} track: {result.stderr[-2000:]}")
            self._nets[key] = base + ".net.xml"
        return self._nets[key]

    def _routes(self, track: Track, rng: np.random.Generator) -> str:
        """Vehicle i at i L / n (+ jitter), each on a route of laps starting from its own edge."""
        spec, n = self.spec, len(self.ids)
        spacing = track.length / n
        jitter = min(spec.start_jitter, 0.25 * spacing)
        laps = math.ceil(spec.horizon * spec.dt * SPEED_LIMIT / track.length) + 2
        items, kind = [AGENT_TYPE, IDM_TYPE], "idm" if self.car_following else "agent"
        for i, vehicle in enumerate(self.ids):
            edge, position = track.locate(i * spacing + rng.uniform(-jitter, jitter))
            if track.lap[edge] in track.crossing_exits:  # SUMO refuses a vehicle whose rear is in the crossing
                position = max(position, VEHICLE_LENGTH + 0.5)
            lap = track.lap[edge:] + track.lap[:edge]
            items.append(f'<route id="r{i}" edges="{" ".join(lap)}" repeat="{laps}"/>')
            items.append(f'<vehicle id="{vehicle}" type="{kind}" route="r{i}" depart="0" departPos="{position:.3f}" '
                         f'departSpeed="0" departLane="0" insertionChecks="none"/>')
        path = os.path.join(self.workdir, "vehicles.rou.xml")
        with open(path, "w") as handle:
            handle.write(_xml("routes", items))
        return path


class VehicleEnv(SumoVecEnv):
    """``B`` copies of a closed-track SUMO task with ``num_vehicles`` agents (see the module docstring).

    Args:
        track: ``"ring"`` or ``"figure-eight"``.
        num_vehicles: agents (and vehicles) on the track.
        length_range: the ring's length is drawn uniformly from it at every reset (ring only).
        max_accel: actions are accelerations in ``[-max_accel, max_accel]`` m/s².
        horizon: steps per episode (truncation); ``dt``: seconds per step.
        reward: ``"ring"`` (speed closeness and acceleration penalty, scaled by 1/n) or ``"speed"``.
        start_jitter: half-width (m) of the seeded uniform perturbation of start positions.
        backend, sumo_options, workers, worker_cpus: as for :class:`~gdmpo.envs.sumo.ATSCEnv`.
    """

    simulation_class = VehicleSimulation

    def __init__(self, num_envs: int = 1, seed: int | None = None, device: str | torch.device = "cpu", *,
                 track: str = "ring", num_vehicles: int = 22, length_range: tuple[float, float] = (220.0, 270.0),
                 max_accel: float = 1.0, horizon: int = 3000, dt: float = 0.1, reward: str = "ring",
                 start_jitter: float = 1.0, backend: str = "libsumo", sumo_options: tuple[str, ...] = (),
                 workers: str = "process", worker_cpus: float = 1.0) -> None:
        super().__init__(num_envs, seed, device)
        if track not in SPEED_MODE:
            raise ValueError(f"track must be one of {sorted(SPEED_MODE)}, got {track!r}")
        if reward not in ("ring", "speed"):
            raise ValueError(f"reward must be 'ring' or 'speed', got {reward!r}")
        low, high = (float(x) for x in length_range)
        if not 0 < low <= high:
            raise ValueError(f"length_range must be (low, high) with 0 < low <= high, got {length_range!r}")
        shortest = low if track == "ring" else figure_eight_track().length
        if num_vehicles < 3 or num_vehicles * 7.5 > shortest:  # 5 m vehicles with 2.5 m gaps
            raise ValueError(f"{track}: {num_vehicles} vehicles do not fit a {shortest:.0f} m track "
                             f"(at least 3 and at most {int(shortest // 7.5)})")
        self.num_agents = num_vehicles
        self.graph = ring(num_vehicles)
        self.speed_limit, self.dt = SPEED_LIMIT, dt
        self.max_episode_steps = horizon
        self.has_terminal_states = False
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-max_accel, max_accel, (1,), dtype=np.float32)
        self._start_workers(VehicleSpec(track=track, num_vehicles=num_vehicles, length_range=(low, high),
                                        max_accel=float(max_accel), horizon=horizon, dt=dt, reward=reward,
                                        start_jitter=float(start_jitter), backend=backend,
                                        sumo_options=tuple(sumo_options)), workers, worker_cpus)

    def _step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        obs, reward, extras = self._step_workers(actions[..., 0].tolist())
        lost = torch.tensor([e[0] for e in extras], dtype=torch.bool, device=self.device)
        truncated = (self._episode_length + 1 >= self.max_episode_steps) | lost
        return obs, reward, torch.zeros_like(truncated), truncated

    def vehicle_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gap to the vehicle ahead [B, n] m, speed [B, n] m/s)`` of every vehicle now."""
        states = self.workers.call("vehicle_states", [()] * self.num_envs)
        gap = torch.from_numpy(np.stack([g for g, _ in states])).float()
        speed = torch.from_numpy(np.stack([v for _, v in states])).float()
        return gap, speed

    def set_car_following(self, enabled: bool = True) -> None:
        """Let SUMO's IDM drive every vehicle from the next reset on (the reference traffic), or the agents."""
        self.workers.call("set_car_following", [(enabled,)] * self.num_envs)
        self._needs_reset = True


def ring_attenuation(num_envs: int = 1, seed: int | None = None, **options: Any) -> VehicleEnv:
    """Entry point of ``ring-attenuation`` (22 vehicles, ring of 220–270 m)."""
    return VehicleEnv(num_envs, seed, **{"track": "ring", "num_vehicles": 22, "max_accel": 1.0, "horizon": 3000,
                                         "reward": "ring", **options})


def figure_eight(num_envs: int = 1, seed: int | None = None, **options: Any) -> VehicleEnv:
    """Entry point of ``figure-eight`` (14 vehicles, radius 30 m)."""
    return VehicleEnv(num_envs, seed, **{"track": "figure-eight", "num_vehicles": 14, "max_accel": 3.0,
                                         "horizon": 1500, "reward": "speed", **options})
