"""Ray: sweeps as Ray tasks and SUMO simulations on Ray actors, on a real two-node cluster on this machine."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from gdmpo.envs import make
from gdmpo.envs.sumo.workers import SumoError
from gdmpo.run_lock import RunLock
from gdmpo.sweep import configurations, parse_grid, plan, run_sweep

from benchmark_scripts import load

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

CONFIG = str(Path(__file__).parents[1] / "configs/cacc-catchup/dppo.yaml")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node, 2 CPUs each (logical), joined by this test process as driver.

    Afterwards no process of the cluster (GCS, raylets, workers) or of its SUMO actors may be left.
    """
    if ray.is_initialized():
        ray.shutdown()
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    made.add_node(num_cpus=2)
    made.wait_for_nodes()
    ray.init(address=made.address, include_dashboard=False, log_to_driver=False)
    pids: set[int] = set()
    yield made, pids
    ray.shutdown()
    for node in made.list_all_nodes():
        pids.update(info.process.pid for infos in node.all_processes.values() for info in infos)
    made.shutdown()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids and not [pid for pid in pids if _alive(pid)]


def test_grid_expands_to_labelled_trials(tmp_path):
    grid = parse_grid(["ppo.lr_policy=3e-4,1e-3", "model.hops=1,2"])
    assert grid == {"ppo.lr_policy": ["3e-4", "1e-3"], "model.hops": [1, 2]}  # as typed: they name the run folders
    labels = [label for label, _ in configurations(grid)]
    assert labels == ["ppo.lr_policy=3e-4,model.hops=1", "ppo.lr_policy=3e-4,model.hops=2",
                      "ppo.lr_policy=1e-3,model.hops=1", "ppo.lr_policy=1e-3,model.hops=2"]
    trials = plan(tmp_path, [0, 1], grid)
    assert len(trials) == 8 and trials[1].run_dir == tmp_path / "ppo.lr_policy=3e-4,model.hops=1" / "s1"
    assert configurations({}) == [("base", {})]
    assert parse_grid(["policy_net.hidden=[64,64],[128]"]) == {"policy_net.hidden": [[64, 64], [128]]}
    with pytest.raises(ValueError, match="--grid expects key=value1,value2"):
        parse_grid(["ppo.lr_policy"])


def test_sweep_runs_every_trial_on_the_cluster_and_skips_them_when_rerun(cluster, tmp_path, capsys):
    made, _ = cluster
    out = tmp_path / "sweep"
    args = dict(seeds=[0, 1], grid={"ppo.lr_policy": [3e-4, 1e-3]}, out=out, steps=1200, episodes=1,
                address=made.address)
    results = run_sweep(CONFIG, **args)
    assert len(results) == 4 and all(r["env_steps"] == 1200 for r in results)
    runs = sorted(p.relative_to(out).as_posix() for p in out.glob("*/s*"))
    assert runs == ["ppo.lr_policy=0.0003/s0", "ppo.lr_policy=0.0003/s1", "ppo.lr_policy=0.001/s0",
                    "ppo.lr_policy=0.001/s1"]
    for run in out.glob("*/s*"):  # each a normal run directory
        assert {"config.yaml", "metrics.csv", "checkpoints", "result.json"} <= {p.name for p in run.iterdir()}
    summary = (out / "summary.md").read_text()
    assert "| ppo.lr_policy=0.0003 | cacc-catchup | 0, 1 |" in summary and (out / "curves.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert [f"{k}/4 " in printed for k in range(1, 5)] == [True] * 4 and "4 trials (0 finished before)" in printed
    again = run_sweep(CONFIG, **args)
    assert "4 trials (4 finished before)" in capsys.readouterr().out
    assert sorted(r["final_return"] for r in again) == sorted(r["final_return"] for r in results)


def test_a_trial_another_sweep_runs_is_skipped_and_the_others_finish(cluster, tmp_path, capsys):
    made, _ = cluster
    out = tmp_path / "sweep"
    held = RunLock(out / "base" / "s0")  # as a second sweep over the same folder, training seed 0, would
    try:
        results = run_sweep(CONFIG, [0, 1], {}, out, steps=1200, episodes=1, address=made.address)
    finally:
        held.release()
    printed = capsys.readouterr().out
    assert f"skipped: {out / 'base' / 's0'} is in use by another gdmpo run (pid {os.getpid()}" in printed
    assert [(r["seed"], r["env_steps"]) for r in results] == [(1, 1200)]  # was: the lock's error stopped it
    assert not (out / "base" / "s0" / "metrics.csv").exists() and "| base | cacc-catchup | 1 |" in printed


def test_the_paper_benchmark_on_ray_skips_a_run_another_command_trains(cluster, tmp_path, capsys, monkeypatch):
    made, _ = cluster
    paper = load("paper")

    held = RunLock(tmp_path / "runs/cacc-catchup/dppo-s0")
    try:
        results = paper.main(["--envs", "cacc-catchup", "--algos", "dppo", "--seeds", "0", "1", "--episodes", "1",
                              "--steps", "1200", "--out", str(tmp_path), "--ray", made.address])
    finally:
        held.release()
    assert f"skipped: {tmp_path / 'runs/cacc-catchup/dppo-s0'} is in use" in capsys.readouterr().out
    assert [(r["seed"], r["env_steps"]) for r in results] == [(1, 1200)]


def test_a_wrapped_function_from_a_module_the_workers_lack_is_shipped_with_it(cluster, tmp_path, monkeypatch):
    from gdmpo.distributed import map_unordered
    from gdmpo.run_lock import SkipLocked

    (tmp_path / "only_here.py").write_text("def double(x):\n    return 2 * x\n")  # as a benchmark script's module
    monkeypatch.syspath_prepend(str(tmp_path))  # importable in this process only, not on the Ray workers
    import only_here

    assert sorted(map_unordered(SkipLocked(only_here.double), [1, 2, 3])) == [2, 4, 6]


def test_a_killed_trial_is_retried_and_resumes_from_its_checkpoint(cluster, tmp_path):
    made, _ = cluster
    out = tmp_path / "sweep"
    run = out / "base" / "s0"
    outcome: dict[str, object] = {}
    sweep = threading.Thread(target=lambda: outcome.update(
        results=run_sweep(CONFIG, [0], {}, out, steps=9000, episodes=1, address=made.address)))
    sweep.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _rows(run) < 3:
        time.sleep(0.2)
    assert _rows(run) >= 3, "the trial never got going"
    pid = json.loads((run / ".lock").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)  # the trial's Ray worker process dies mid-training
    sweep.join(timeout=240)
    assert not sweep.is_alive()
    [result] = outcome["results"]
    assert result["env_steps"] == 9000
    with open(run / "metrics.csv", newline="") as handle:
        iterations = [int(r["iteration"]) for r in csv.DictReader(handle)]
    assert iterations == list(range(1, 16))  # resumed: no iteration twice, none missing
    assert json.loads((run / ".lock").read_text())["pid"] != pid


def _rows(run: Path) -> int:
    try:
        return len((run / "metrics.csv").read_text().splitlines()) - 1
    except OSError:
        return 0


def _trajectory(env, steps: int = 8) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    out = [env.reset()]
    for _ in range(steps):
        actions = torch.randint(0, 2, (env.num_envs, env.num_agents), generator=generator)
        obs, reward, _, _ = env.step(actions)[:4]
        out += [obs, reward]
    return out


def test_atsc_on_ray_actors_spreads_over_both_nodes_and_matches_process_workers(cluster):
    _, pids = cluster
    with make("atsc-grid3x3", num_envs=2, seed=5) as env:
        expected = _trajectory(env)
    with make("atsc-grid3x3", num_envs=2, seed=5, workers="ray") as env:
        assert len(set(env.workers.nodes)) == 2  # one simulation on each node
        got = _trajectory(env)
        pids.update(env.workers.pids)
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


def _wait_until_dead(actor, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            ray.get(actor.__ray_ready__.remote(), timeout=5)
        except ray.exceptions.RayActorError:
            return
        except ray.exceptions.GetTimeoutError:
            continue
        time.sleep(0.1)
    raise AssertionError("the killed actor still answers")


def test_a_dead_actor_is_reported_and_replaced_at_reset(cluster):
    with make("atsc-grid3x3", num_envs=2, seed=5, workers="ray") as env:
        env.reset()
        ray.kill(env.workers._actors[1])
        _wait_until_dead(env.workers._actors[1])  # ray.kill returns before the actor is gone
        with pytest.raises(SumoError, match=r"SUMO actor 1 on Ray node \w+ died during 'step'.*SUMO's error log"):
            env.step(torch.zeros(2, env.num_agents, dtype=torch.long))
        assert not env.workers.alive(1) and env.workers.alive(0)
        env.reset()
        env.step(torch.zeros(2, env.num_agents, dtype=torch.long))


def test_ray_workers_refuse_more_cpus_than_the_cluster_has(cluster):
    with pytest.raises(SumoError, match=r"2 SUMO actors x 3 CPU need 6 CPUs but the Ray cluster offers 4"):
        make("atsc-grid3x3", num_envs=2, workers="ray", worker_cpus=3)
    with pytest.raises(ValueError, match="workers must be one of process, ray, got 'threads'"):
        make("atsc-grid3x3", num_envs=1, workers="threads")


def test_the_sweep_command_runs_on_the_cluster_and_refuses_bad_grids_in_one_line(cluster, tmp_path, capsys):
    from gdmpo.cli import main

    made, _ = cluster
    out = tmp_path / "cli"
    assert main(["sweep", CONFIG, "--seeds", "3", "--steps", "600", "--episodes", "1", "--out", str(out),
                 "--address", made.address]) == 0
    printed = capsys.readouterr().out
    assert "1/1 base seed 3: final return" in printed and (out / "base/s3/result.json").exists()
    assert main(["sweep", CONFIG, "--grid", "ppo.lr_policy", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == ("gdmpo: error: --grid expects key=value1,value2,..., "
                                               "got 'ppo.lr_policy'")
    assert main(["sweep", CONFIG, "--grid", "ppo.no_such_knob=1,2", "--out", str(out / "bad")]) == 2
    assert "no_such_knob" in capsys.readouterr().err and not (out / "bad").exists()


def test_an_address_where_no_cluster_listens_fails_fast_with_what_it_waited_for(tmp_path):
    import subprocess
    import sys

    start = time.perf_counter()  # a fresh process: this one may already be connected to a test cluster
    done = subprocess.run([sys.executable, "-m", "gdmpo.cli", "sweep", CONFIG, "--seeds", "0", "--steps", "1200",
                           "--out", str(tmp_path / "s"), "--address", "127.0.0.1:1"], capture_output=True, text=True)
    err = done.stderr
    assert done.returncode == 2 and time.perf_counter() - start < 30, err
    assert "could not reach the Ray cluster at 127.0.0.1:1 (" in err and "ray start --head" in err
    assert err.count("\n") == 1


def test_an_actor_that_does_not_answer_in_time_is_stopped_and_named(cluster, monkeypatch):
    from toy_envs import Sleeper

    from gdmpo.envs.sumo.ray_workers import RaySumoWorkers

    monkeypatch.setenv("GDMPO_WORKER_TIMEOUT", "2")
    workers = RaySumoWorkers(Sleeper, [(), ()])
    try:
        assert workers.call("nap", [(0.1,), (0.1,)]) == [0.1, 0.1]
        start = time.perf_counter()
        with pytest.raises(SumoError, match=r"SUMO actor\(s\) 1 did not answer 'nap' within 2 s and were stopped"):
            workers.call("nap", [(0.1,), (60.0,)])
        assert time.perf_counter() - start < 30
        assert workers.alive(0) and not workers.alive(1)
        workers.restart_dead([1])  # what the environment's next reset() does
        assert workers.call("nap", [(0.1,), (0.2,)]) == [0.1, 0.2]
    finally:
        workers.close()
