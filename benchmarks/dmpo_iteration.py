"""Wall-clock of one DMPO iteration and of each of its parts, at the paper's Catch-up settings.

Parts: one 600-step real episode, the model fit of one iteration, one branched rollout of
M x T from real states, one PPO update on those model data (with the KL early stop of the config,
and with all epochs as the authors' code runs), one PPO update on the real episode. The iteration
is then timed for real (``--iterations`` of them, averaged). Reference figures are the authors'
public implementation measured on this 2-core machine (issue 4), at the same settings (the default
config is the authors' ``dmpo-paper.yaml``: M = 2048, T = 25, 10 epochs). It also prints the PPO
update's achieved GFLOP/s (the dense layers' multiply-adds, forward and backward) beside the peak of a
same-shape matrix product timed in the same run. Each part runs as the trainer runs it: one torch thread
for small work, and the PPO update's policy and critic loops side by side with ``--threads 2``::

    python benchmarks/dmpo_iteration.py [--config configs/cacc-catchup/dmpo-paper.yaml] [--threads 2]
    python benchmarks/dmpo_iteration.py --compare BASE.log OTHER.log [--out comparison.md]

``--compare`` reads the parts table that two runs printed (their logs) and writes them side by side with
the speed-up, as ``benchmarks/results/dmpo-iteration/comparison.md`` does for one CPU thread against a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import time
from pathlib import Path

import gdmpo  # first: it sets OpenMP's passive wait policy before torch loads it
import torch
from torch import nn

from gdmpo import config as cfg
from gdmpo.algos import DMPO, branched_rollout, build_agent, collect
from gdmpo.threads import configure_threads, single_thread

REFERENCE = {"real episode (600 steps)": 0.53, "branched rollout": 0.55, "PPO update, model data": 6.35,
             "DMPO iteration": 35.0}


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so that a timer reads the work's end rather than its launch."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeats: int = 1, device: str = "cpu") -> tuple[float, object]:
    """Mean seconds of ``fn()`` and its last result, run as the trainer runs an iteration: on one torch
    thread, with PPO updates taking the configured threads (``gdmpo.threads``)."""
    out, start = None, time.perf_counter()
    with single_thread():
        for _ in range(repeats):
            out = fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeats, out


def dense_flops_per_node(module: nn.Module) -> int:
    """Multiply-adds (x2) of one node's forward pass through every ``Linear`` of ``module``."""
    return sum(2 * m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


def matmul_peak(rows: int, width: int, repeats: int = 30, device: str = "cpu") -> float:
    """GFLOP/s of ``[rows, width] @ [width, width]``, the networks' dominant product, on this machine now."""
    a, b = torch.randn(rows, width, device=device), torch.randn(width, width, device=device)
    for _ in range(3):
        a @ b
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * rows * width * width * repeats / (time.perf_counter() - start) / 1e9


def read_parts(log: Path) -> tuple[str, dict[str, float]]:
    """The device a logged run timed on and its parts table (``part -> seconds``), as :func:`main` prints them."""
    text = log.read_text()
    settings = re.search(r"^\S+, n = .*, (\S+); KL stop", text, re.M)
    table = re.search(r"^part +seconds.*\n((?:.+\n)+)", text, re.M)
    if not settings or not table:
        raise SystemExit(f"{log}: no parts table of benchmarks/dmpo_iteration.py in it")
    parts = {}
    for line in table[1].splitlines():
        name, seconds = re.match(r"^(.+?) {2,}(\d+\.\d+)", line).groups()
        parts[name] = float(seconds)
    return settings[1], parts


def speed_up(ratio: float) -> str:
    """``0.27x``, ``6.1x``: two figures below one, one decimal above."""
    return f"{ratio:.2f}x" if ratio < 1 else f"{ratio:.1f}x"


def comparison(base_log: Path, other_log: Path) -> str:
    """Markdown: every part's seconds in both logs and the second's speed-up over the first."""
    (base, first), (other, second) = read_parts(base_log), read_parts(other_log)
    lines = [f"| part | {base} (s) | {other} (s) | speed-up |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {first[name]:.3f} | {second[name]:.3f} | {speed_up(first[name] / second[name])} |"
              for name in first if name in second]
    lines.append(f"\nFrom `{base_log.name}` and `{other_log.name}`.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", nargs=2, metavar=("BASE_LOG", "OTHER_LOG"),
                        help="write two logged runs' parts side by side (to --out) instead of timing")
    parser.add_argument("--out", default="comparison.md", help="with --compare: the Markdown file to write")
    parser.add_argument("--config", default="configs/cacc-catchup/dmpo-paper.yaml")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where networks and torch environments run (e.g. cuda)")
    args = parser.parse_args()
    if args.compare:
        table = comparison(*map(Path, args.compare))
        Path(args.out).write_text(table)
        print(table, end="")
        return
    configure_threads(args.threads)
    torch.manual_seed(0)
    config = cfg.load(args.config)
    # one real episode per iteration, as the authors
    config = dataclasses.replace(config, rollout_steps=600, device=args.device)
    d = config.dmpo
    env = gdmpo.make(config.env.id, num_envs=1, seed=0, device=args.device, **config.env.options)
    algo = DMPO(build_agent(config, env), env, 600, config.model, d)
    agent = algo.agent
    obs = env.reset()
    rows: dict[str, float] = {}
    for episode in range(12):  # a buffer with held-out columns, as after warm-up
        elapsed, (rollout, obs, _) = timed(lambda: collect(env, agent, obs, 600))
        algo.buffer.add(rollout, agent.policy.to_env(rollout.actions))
        algo.model.update_normalizers(rollout.obs, rollout.next_obs, rollout.rewards)
        if episode == 1:
            rows["real episode (600 steps)"] = elapsed
    rows[f"model fit ({d.model_steps} steps) + errors"] = timed(
        lambda: (algo.model.fit(algo.buffer, d.model_steps), algo.model.evaluate(algo.buffer, d.horizon)))[0]
    start = algo.buffer.start_states(d.rollouts)
    branched_rollout(agent, algo.model, start, d.horizon, algo.buffer)  # warm the graph caches
    rows["branched rollout"], model_data = timed(
        lambda: branched_rollout(agent, algo.model, start, d.horizon, algo.buffer), repeats=3, device=args.device)
    state = {k: v.clone() for k, v in agent.state_dict().items()}
    rows["PPO update, model data"], stats = timed(lambda: agent.update(model_data))
    policy_epochs = stats.policy_epochs
    agent.load_state_dict(state)
    target_kl = agent.config.target_kl
    agent.config = dataclasses.replace(agent.config, target_kl=None)
    all_epochs = f"PPO update, model data, all {config.ppo.epochs} epochs"
    rows[all_epochs] = timed(lambda: agent.update(model_data))[0]
    agent.config = dataclasses.replace(agent.config, target_kl=target_kl)
    rows["PPO update, real episode"] = timed(lambda: agent.update(agent.reevaluate(rollout)))[0]
    algo.model_fitted = True
    algo.env_steps = d.warmup_env_steps
    times = []
    for _ in range(args.iterations):
        elapsed, result = timed(lambda: algo.iteration(env, obs))
        obs = result.obs
        times.append(elapsed)
        print(f"  iteration: {elapsed:.2f} s with {result.metrics['model_updates']} model-data updates "
              f"(env {result.metrics['time_env']:.2f}, model {result.metrics['time_model']:.2f}, rollouts "
              f"{result.metrics['time_rollout']:.2f}, policy {result.metrics['time_policy']:.2f})", flush=True)
    rows["DMPO iteration"] = sum(times) / len(times)
    n = env.num_agents
    print(f"\n{config.env.id}, n = {n}, M = {d.rollouts}, T = {d.horizon}, {config.ppo.epochs} epochs, "
          f"{config.ppo.minibatches} minibatches, policy/value {config.policy_net.hidden}/{config.value_net.hidden}, "
          f"model {config.model.net.hidden}, {args.threads} threads, {args.device}; KL stop ran {policy_epochs} policy epochs")
    print(f"{'part':<44}{'seconds':>10}{'authors':>10}{'speed-up':>10}")
    for name, seconds in rows.items():
        ref = REFERENCE.get(name)
        extra = f"{ref:>10.2f}{ref / seconds:>9.1f}x" if ref else ""
        print(f"{name:<44}{seconds:>10.3f}{extra}")
    samples = d.rollouts * d.horizon * n
    print(f"\nmodel data per update: {samples} agent-steps; rollout {samples / rows['branched rollout']:.3g} "
          f"agent-steps/s")
    per_node = dense_flops_per_node(agent.policy) + dense_flops_per_node(agent.critic)
    update_flops = 3 * per_node * samples * config.ppo.epochs  # forward + backward (about twice the forward)
    width = config.value_net.hidden[-1]
    chunk = min(config.ppo.chunk_nodes or samples, samples)
    peak = matmul_peak(chunk, width, device=args.device)
    achieved = update_flops / rows[all_epochs] / 1e9
    print(f"PPO update ({config.ppo.epochs} epochs): {update_flops / 1e9:.0f} GFLOP of dense layers in "
          f"{rows[all_epochs]:.2f} s = {achieved:.1f} GFLOP/s; peak of a [{chunk}, {width}] x [{width}, {width}] "
          f"product here: {peak:.1f} GFLOP/s ({100 * achieved / peak:.0f} %)")
    env.close()


if __name__ == "__main__":
    main()
