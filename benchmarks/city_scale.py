"""What one simulated hour costs per traffic light as the network grows: 25, 100, 400 and 1,024 lights.

For each grid (``graphs/make_grid.py`` layout; grids beyond the shipped ones are generated on demand
and cached, :mod:`gdmpo.envs.sumo.networks`; the demand below goes into ``--cache``), one environment copy runs ``--seconds`` of simulated traffic (less one control step)
under max-pressure, while a phase-competition policy (``policy_net.input: movements``; its cost does
not depend on its weights) is also evaluated on every observation to time inference. Demand: local
random trips (SUMO's randomTrips, at most ``--trip-length`` metres, anywhere in the grid) at a rate
proportional to the number of lights, so the traffic per light is the same at every size. It prints,
per light and per control step:

- the environment's step split into SUMO's own simulation step, reading observations and rewards, and
  setting signals (timed inside the worker), and the learner's side (pipe, tensors);
- policy inference;
- simulated seconds per wall second, and the memory of the worker (SUMO) and of the learner.

    python benchmarks/city_scale.py [--sizes 5 10 20 32] [--seconds 3600] [--out benchmarks/results/city-scale]

Writes ``city_scale.csv`` and ``city_scale.md`` into ``--out``; ``--summary-only`` rebuilds the table from the CSV
(with the ``--seconds``, ``--vehicles-per-light-hour`` and ``--trip-length`` it was measured with).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import torch

import gdmpo
from gdmpo import config as cfg
from gdmpo.algos import build_agent
from gdmpo.envs.sumo.networks import grid_files, run_random_trips
from gdmpo.threads import configure_threads

ROOT = Path(__file__).resolve().parents[1]


def memory_mib(pid: int | str = "self") -> float:
    """Resident memory of a process (MiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def local_trips(net: Path, lights: int, seconds: int, per_light_hour: float, length: float, cache: Path) -> Path:
    """Routes of random trips of 300 to ``length`` m anywhere in the network, ``per_light_hour`` per light
    per hour (made once into ``cache``)."""
    period = 3600.0 / (per_light_hour * lights)
    routes = cache / f"{net.name[:-8]}.local-{per_light_hour:g}-{length:g}-{seconds}.rou.xml"
    if not routes.exists():
        with tempfile.TemporaryDirectory(dir=cache) as private:
            made = Path(private) / routes.name
            run_random_trips(net, 1, Path(private) / "trips.xml", made, period, 0.0, seconds,
                             options=("--min-distance", "300", "--max-distance", f"{length:g}"))
            os.replace(made, routes)
    return routes


def measure(size: int, seconds: int, cache: Path, vehicles_per_light_hour: float, trip_length: float) -> dict[str, float]:
    from gdmpo.envs.controllers import reference_policy

    net, _ = grid_files(size)
    lights = size * size
    routes = local_trips(net, lights, seconds, vehicles_per_light_hour, trip_length, cache)
    start = time.perf_counter()
    env = gdmpo.make("atsc", num_envs=1, seed=0, net_file=str(net), route_file=str(routes), episode_seconds=seconds)
    build_s = time.perf_counter() - start
    try:
        config = cfg.load(ROOT / "configs/atsc-grid5x5/dppo.yaml", {"policy_net.input": "movements",
                                                                   "value_net.input": "movements"})
        agent = build_agent(config, env)
        controller = reference_policy(env, "max-pressure")
        start = time.perf_counter()
        obs = env.reset()
        reset_s = time.perf_counter() - start
        steps = env.max_episode_steps - 1  # the last step would reset the copy (a SUMO reload), not time it
        inference = stepping = 0.0
        for _ in range(steps):
            t0 = time.perf_counter()
            agent.act(obs)
            t1 = time.perf_counter()
            obs = env.step(controller(obs))[0]
            t2 = time.perf_counter()
            inference, stepping = inference + t1 - t0, stepping + t2 - t1
        inside = env.workers.call("timings", [()])[0]
        traffic = env.workers.call("metrics", [()])[0]
        worker_mib = memory_mib(env.workers._processes[0].pid)
    finally:
        env.close()
    per = 1e3 / (steps * lights)  # seconds per run -> ms per light-step
    return {"lights": lights, "steps": steps, "build_s": build_s, "reset_s": reset_s,
            "env_step_ms_per_light": stepping * per, "sumo_ms_per_light": inside["sumo"] * per,
            "observe_ms_per_light": inside["observe"] * per, "signals_ms_per_light": inside["signals"] * per,
            "learner_side_ms_per_light": (stepping - inside["step"]) * per,
            "inference_ms_per_light": inference * per,
            "sim_s_per_wall_s": steps * env.control_interval / stepping,
            "with_inference_sim_s_per_wall_s": steps * env.control_interval / (stepping + inference),
            "vehicles": traffic.get("departed", float("nan")),
            # vehicle-seconds driven (trip time counts unfinished trips up to the end): SUMO's work
            "sumo_us_per_vehicle_s": 1e6 * inside["sumo"] / (traffic["trip_time"] * traffic["departed"]),
            "vehicle_s_per_light_step": traffic["trip_time"] * traffic["departed"] / (steps * lights),
            "worker_mib": worker_mib,
            "learner_mib": memory_mib()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20, 32])
    parser.add_argument("--seconds", type=int, default=3600, help="simulated seconds per size (one episode)")
    parser.add_argument("--vehicles-per-light-hour", type=float, default=72.0,
                        help="demand: random trips per light per hour (72: the 5x5 grid's 1,800 veh/h)")
    parser.add_argument("--trip-length", type=float, default=1500.0, help="longest random trip (m)")
    parser.add_argument("--cache", default=str(Path.home() / ".cache/gdmpo/grids"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/city-scale"))
    parser.add_argument("--summary-only", action="store_true",
                        help="rebuild city_scale.md from the city_scale.csv in --out, measuring nothing")
    args = parser.parse_args(argv)
    cache, out = Path(args.cache), Path(args.out)
    if args.summary_only:
        write_table(read_rows(out / "city_scale.csv"), args, out)
        return
    configure_threads(1)
    cache.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        row = measure(size, args.seconds, cache, args.vehicles_per_light_hour, args.trip_length)
        rows.append(row)
        print(f"{row['lights']:5d} lights: env step {row['env_step_ms_per_light']:.3f} ms/light (SUMO "
              f"{row['sumo_ms_per_light']:.3f}, observe {row['observe_ms_per_light']:.3f}, signals "
              f"{row['signals_ms_per_light']:.3f}, learner side {row['learner_side_ms_per_light']:.3f}), "
              f"inference {row['inference_ms_per_light']:.3f} ms/light; {row['sim_s_per_wall_s']:.1f} sim s/s "
              f"({row['with_inference_sim_s_per_wall_s']:.1f} with inference); "
              f"{row['vehicles']:.0f} vehicles; worker {row['worker_mib']:.0f} MiB, learner {row['learner_mib']:.0f} MiB; "
              f"build {row['build_s']:.1f} s, reset {row['reset_s']:.1f} s", flush=True)
    with (out / "city_scale.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_table(rows, args, out)


def read_rows(path: Path) -> list[dict[str, float]]:
    """The rows of a ``city_scale.csv`` as :func:`measure` returned them (counts as integers)."""
    with path.open(newline="") as handle:
        return [{key: int(value) if key in ("lights", "steps") else float(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]


def write_table(rows: list[dict[str, float]], args: argparse.Namespace, out: Path) -> None:
    """``city_scale.md``: the rows per light and control step, with the settings they were measured under."""
    lines = [f"# City scale: {args.seconds} simulated s per grid, {args.vehicles_per_light_hour:g} trips per light "
             f"per hour of at most {args.trip_length:g} m, max-pressure control, one copy, one torch thread", "",
             "Per light and control step (ms): the environment step (SUMO's simulation step, reading observations, "
             "setting signals, the learner's side), and policy inference (phase-competition policy).", "",
             "SUMO's own step grows with the traffic in the network: 'vehicle-s' is the vehicle-seconds driven per "
             "light and control step (longer trips fit in larger grids), 'SUMO per vehicle-s' its cost per "
             "vehicle-second driven (µs).", "",
             "| lights | env step | SUMO | observe | signals | learner side | inference | sim s per wall s (with inference) | "
             "vehicles | vehicle-s | SUMO per vehicle-s | worker MiB | learner MiB | build + reset s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['lights']} | {r['env_step_ms_per_light']:.3f} | {r['sumo_ms_per_light']:.3f} | "
                     f"{r['observe_ms_per_light']:.3f} | {r['signals_ms_per_light']:.3f} | "
                     f"{r['learner_side_ms_per_light']:.3f} | {r['inference_ms_per_light']:.3f} | "
                     f"{r['sim_s_per_wall_s']:.1f} ({r['with_inference_sim_s_per_wall_s']:.1f}) | {r['vehicles']:.0f} | "
                     f"{r['vehicle_s_per_light_step']:.2f} | {r['sumo_us_per_vehicle_s']:.2f} | {r['worker_mib']:.0f} | "
                     f"{r['learner_mib']:.0f} | {r['build_s'] + r['reset_s']:.1f} |")
    (out / "city_scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
