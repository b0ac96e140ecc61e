"""A peer library's algorithms on gdmpo's environments: BenchMARL's MAPPO and IPPO beside DPPO and DMPO.

    pip install -e ".[benchmarl]"
    python benchmarks/peers.py [--tasks catchup grid] [--algos mappo ippo] [--seeds 0 1 2] [--steps 100000]
        [--episodes 16] [--out benchmarks/results/peers] [--summary-only]

Each run trains BenchMARL's algorithm (its own default YAML: networks, learning rates, PPO settings) on the
same environment gdmpo trains on (:mod:`gdmpo.ecosystem.benchmarl`, the batched TorchRL view), with the
same real-step budget, copies and steps per batch as gdmpo's config for that task, one torch thread. Its
final policy then plays ``--episodes`` episodes of the environment as gdmpo evaluates (the config's
``eval_options``: Catch-up without the training-only shaping term), sampling its actions, and the team
return (sum over agents and steps, gdmpo's ``episode_return``) is recorded in ``runs/<task>-<algo>-s<seed>.json``;
a run whose file exists is skipped. ``summary.md`` puts the runs beside gdmpo's DPPO and DMPO from
``benchmarks/results/paper/runs`` (same tasks, steps and evaluation).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from gdmpo import config as cfg
from gdmpo.threads import configure_threads

#: the tasks: BenchMARL task name, gdmpo environment id, and the gdmpo config whose budget and copies they share
TASKS = {"catchup": ("CACC_CATCHUP", "cacc-catchup", "configs/cacc-catchup/dppo.yaml"),
         "grid": ("ATSC_GRID5X5", "atsc-grid5x5", "configs/atsc-grid5x5/dppo.yaml")}
ALGORITHMS = {"mappo": "MappoConfig", "ippo": "IppoConfig"}


def experiment_config(gdmpo_config: cfg.RunConfig, steps: int, folder: Path):
    """BenchMARL's default experiment, with gdmpo's budget, copies and batch, and no logging of its own."""
    from benchmarl.experiment import ExperimentConfig

    config = ExperimentConfig.get_from_yaml()
    batch = gdmpo_config.rollout_steps * gdmpo_config.env.num_envs
    for key, value in {"max_n_frames": steps, "on_policy_collected_frames_per_batch": batch,
                       "on_policy_n_envs_per_worker": gdmpo_config.env.num_envs, "evaluation": False,
                       "loggers": [], "create_json": False, "checkpoint_interval": 0, "render": False,
                       "save_folder": str(folder), "sampling_device": "cpu", "train_device": "cpu",
                       "buffer_device": "cpu"}.items():
        setattr(config, key, value)
    return config


@torch.no_grad()
def team_returns(policy, env_id: str, options: dict, episodes: int, seed: int) -> list[float]:
    """Sampled play of ``policy`` on ``episodes`` copies of gdmpo's batched TorchRL environment: each
    copy's team return (sum over agents and steps) over its first episode."""
    from torchrl.envs.utils import ExplorationType, set_exploration_type

    from gdmpo.ecosystem.torchrl import GROUP, batched_env

    env = batched_env(env_id, num_envs=episodes, seed=seed, **options)
    try:
        steps = int(env.env.max_episode_steps)
        with set_exploration_type(ExplorationType.RANDOM):
            rollout = env.rollout(steps, policy=policy, break_when_any_done=False)
        reward = rollout["next", GROUP, "reward"].squeeze(-1)  # [B, T, n]
        done = rollout["next", "done"].squeeze(-1)  # [B, T]
        first_end = torch.where(done.any(1), done.float().argmax(1), torch.full_like(done[:, 0], steps - 1,
                                                                                     dtype=torch.long))
        alive = torch.arange(reward.shape[1])[None, :] <= first_end[:, None]  # up to each copy's first end
        return (reward.sum(-1) * alive).sum(1).tolist()
    finally:
        env.close()


def run_one(task: str, algo: str, seed: int, steps: int, episodes: int, out: Path) -> dict:
    """Train BenchMARL's ``algo`` on ``task`` and evaluate its final policy as gdmpo evaluates."""
    import benchmarl.algorithms
    from benchmarl.experiment import Experiment
    from benchmarl.models.mlp import MlpConfig

    from gdmpo.ecosystem.benchmarl import GdmpoTask

    name, env_id, config_path = TASKS[task]
    gdmpo_config = cfg.load(config_path)
    configure_threads(1)
    options = dict(gdmpo_config.env.options)
    bench_task = getattr(GdmpoTask, name).get_task({"env_id": env_id, "options": options})
    folder = out / "benchmarl" / f"{task}-{algo}-s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    experiment = Experiment(task=bench_task, algorithm_config=getattr(benchmarl.algorithms, ALGORITHMS[algo]).get_from_yaml(),
                            model_config=MlpConfig.get_from_yaml(), critic_model_config=MlpConfig.get_from_yaml(),
                            seed=seed, config=experiment_config(gdmpo_config, steps, folder))
    experiment.run()
    train_s = time.perf_counter() - start
    returns = team_returns(experiment.policy, env_id, {**options, **gdmpo_config.env.eval_options}, episodes,
                           1000 + seed)
    return {"task": task, "env": env_id, "algo": algo, "library": "BenchMARL", "seed": seed,
            "env_steps": int(experiment.total_frames), "final_return": sum(returns) / len(returns),
            "returns": returns, "train_s": train_s}


def gdmpo_rows(paper: Path, env_id: str) -> dict[str, list[dict]]:
    """gdmpo's DPPO and DMPO runs on ``env_id``: the paper benchmark's ``result.json`` files."""
    rows: dict[str, list[dict]] = {}
    for algo in ("dppo", "dmpo"):
        for path in sorted((paper / "runs" / env_id).glob(f"{algo}-s*/result.json")):
            rows.setdefault(algo.upper(), []).append(json.loads(path.read_text()))
    return rows


def summary(out: Path, paper: Path) -> str:
    results = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    lines = ["# Peers: BenchMARL's MAPPO and IPPO beside gdmpo's DPPO and DMPO", "",
             "Final return: the team return (sum over agents and steps) of the final policy, sampled play, "
             "gdmpo's evaluation options; mean ± std over seeds (per seed in brackets).", "",
             "| task | algorithm | library | seeds | real steps | final return | per seed | training time per run |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def line(task, algo, library, finals, steps, seconds):
        mean = sum(finals) / len(finals)
        std = math.sqrt(sum((f - mean) ** 2 for f in finals) / len(finals))
        return (f"| {task} | {algo} | {library} | {len(finals)} | {steps} | {mean:.4g} ± {std:.3g} | "
                f"{', '.join(f'{f:.4g}' for f in finals)} | {seconds} |")

    for task, (_, env_id, _) in TASKS.items():
        peers = [(algo.upper(), "BenchMARL", [r for r in results if r["task"] == task and r["algo"] == algo])
                 for algo in ALGORITHMS]
        for algo, library, runs in [(a, "gdmpo", r) for a, r in gdmpo_rows(paper, env_id).items()] + peers:
            if runs:
                lines.append(line(task, algo, library, [r["final_return"] for r in runs], f"{runs[0]['env_steps']:.0f}",
                                  f"{sum(r['train_s'] for r in runs) / len(runs) / 60:.1f} min"))
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--algos", nargs="+", default=list(ALGORITHMS), choices=list(ALGORITHMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/peers"))
    parser.add_argument("--paper", type=Path, default=Path("benchmarks/results/paper"),
                        help="gdmpo's runs on the same tasks (runs/<env>/<algo>-s<seed>/result.json)")
    parser.add_argument("--summary-only", action="store_true", help="rebuild summary.md from the run files")
    args = parser.parse_args()
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    for seed in [] if args.summary_only else args.seeds:
        for task in args.tasks:
            for algo in args.algos:
                path = args.out / "runs" / f"{task}-{algo}-s{seed}.json"
                if path.is_file():
                    continue
                result = run_one(task, algo, seed, args.steps, args.episodes, args.out)
                path.write_text(json.dumps(result, indent=1))
                print(f"{task} {algo} seed {seed}: final return {result['final_return']:.4g} "
                      f"({result['train_s']:.0f} s)", flush=True)
    print(summary(args.out, args.paper), end="")


if __name__ == "__main__":
    main()
