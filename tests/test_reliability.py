"""Faults a user meets: crafted checkpoints, kills and Ctrl-C, two writers, a full disk, bad input
(each row of docs/reliability.md names the test here that holds it)."""

from __future__ import annotations

import csv
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import gdmpo
from gdmpo import checkpoints
from gdmpo import config as cfg
from gdmpo.checkpoints import CheckpointError, load_checkpoint
from gdmpo.cli import main
from gdmpo.run_lock import RunLock, RunLockedError

SMALL = {"env.num_envs": 2, "rollout_steps": 10, "ppo.epochs": 1, "policy_net.hidden": [8], "value_net.hidden": [8]}
ATSC_FAST = ["--set", "env.options={episode_seconds: 120}", "--set", "rollout_steps=6",
             "--set", "policy_net.hidden=[8]", "--set", "value_net.hidden=[8]"]


def small_config(**extra) -> cfg.RunConfig:
    return cfg.from_dict(cfg.apply_overrides({}, {**SMALL, **extra}))


def start_training(run: Path, *args: str) -> subprocess.Popen:
    """``gdmpo train`` in a child process that takes Ctrl-C as a terminal would deliver it."""
    command = [sys.executable, "-m", "gdmpo.cli", "train", *args, "--out", str(run), "--no-progress"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def wait_for(condition, seconds: float = 120.0) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------ checkpoints never run code
class Payload:
    """Unpickling this object would create ``marker``: the attack a shared checkpoint could carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_is_refused_without_running(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"agent": Payload(marker), "config": {}}, evil)
    with pytest.raises(CheckpointError, match="refused.*asks for posix.system"):
        load_checkpoint(evil)
    assert main(["eval", str(evil)]) == 2
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()


def test_format_1_checkpoints_with_numpy_rng_state_still_load(tmp_path):
    gdmpo.train(small_config(), tmp_path / "run", total_env_steps=40, progress=False)
    last = tmp_path / "run/checkpoints/last.pt"
    state = load_checkpoint(last)
    assert state["format"] == 2 and isinstance(state["rng"]["numpy"]["keys"], torch.Tensor)
    np.random.seed(7)
    state["format"], state["rng"]["numpy"] = 1, np.random.get_state()  # what format 1 stored
    torch.save(state, last)
    trainer = gdmpo.Trainer.resume(tmp_path / "run")
    try:
        assert np.random.randint(1 << 30) == np.random.RandomState(7).randint(1 << 30)
        assert trainer.train(total_env_steps=60, progress=False)["env_steps"] == 60
    finally:
        trainer.close()


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoints.save_checkpoint({"agent": {"w": torch.ones(3)}, "config": {}}, path)

    def full_disk(state, target):
        Path(target).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", full_disk)
    with pytest.raises(CheckpointError, match="disk is full.*previous checkpoint there is intact"):
        checkpoints.save_checkpoint({"agent": {"w": torch.zeros(3)}, "config": {}}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["agent"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


# ------------------------------------------------------------------ one writer per run directory
def test_a_second_writer_is_refused_and_a_dead_holders_lock_is_taken(tmp_path, capsys):
    run = tmp_path / "run"
    first = gdmpo.Trainer(small_config(), run)
    try:
        with pytest.raises(RunLockedError, match=f"in use by another gdmpo run \\(pid {os.getpid()}"):
            gdmpo.Trainer(small_config(), run)
        assert main(["train", "--out", str(run), "--steps", "20"]) == 2
        assert "in use by another gdmpo run" in capsys.readouterr().err
    finally:
        first.close()
    # a holder killed with SIGKILL leaves the file but not the lock
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from gdmpo.run_lock import RunLock; "
                               "lock = RunLock(sys.argv[1]); print('held', flush=True); time.sleep(60)", str(run)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
        RunLock(run)
    holder.kill()
    holder.wait()
    lock = RunLock(run)
    assert lock.held
    lock.release()


def test_two_training_processes_cannot_interleave_one_metrics_file(tmp_path):
    run = tmp_path / "run"
    sets = [a for k, v in SMALL.items() for a in ("--set", f"{k}={v}")]
    first = start_training(run, "--steps", "100000", *sets)
    try:
        wait_for(lambda: (run / "metrics.csv").exists())
        second = subprocess.run([sys.executable, "-m", "gdmpo.cli", "train", "--out", str(run), "--steps", "100",
                                 *sets], capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()
    with open(run / "metrics.csv", newline="") as handle:
        iterations = [int(r["iteration"]) for r in csv.DictReader(handle)]
    assert iterations == list(range(1, len(iterations) + 1))


# ------------------------------------------------------------------ no orphaned simulations
def test_sigkill_of_a_sumo_training_leaves_no_worker(tmp_path):
    process = start_training(tmp_path / "run", "configs/atsc-grid5x5/dppo.yaml", *ATSC_FAST)
    wait_for(lambda: len(children(process.pid)) >= 2)
    workers = children(process.pid)
    process.kill()
    process.wait()
    wait_for(lambda: not any(alive(w) for w in workers), seconds=5)  # the workers notice within a second


def test_ctrl_c_stops_quickly_keeps_the_checkpoint_and_says_how_to_resume(tmp_path):
    run = tmp_path / "run"
    process = start_training(run, "configs/atsc-grid5x5/dppo.yaml", *ATSC_FAST)
    wait_for(lambda: (run / "metrics.csv").exists())
    workers = children(process.pid)
    assert len(workers) == 2
    process.send_signal(signal.SIGINT)
    start = time.time()
    output, _ = process.communicate(timeout=30)
    elapsed = time.time() - start
    assert elapsed < 10 and process.returncode == 130, (elapsed, process.returncode, output)
    assert f"continue with: gdmpo train --resume {run}" in output and "Traceback" not in output
    assert not any(alive(w) for w in workers)
    counters = load_checkpoint(run / "checkpoints/last.pt")["counters"]
    assert f"holds iteration {counters['iteration']}" in output
    assert RunLock(run).held  # nobody holds the lock any more
    assert main(["train", "--resume", str(run), "--steps", str(counters["env_steps"] + 12), "--no-progress"]) == 0


def test_sigterm_behaves_as_ctrl_c_and_leaves_no_worker_or_folder(tmp_path):
    """What ``timeout``, Slurm, systemd and ``docker stop`` send, to the whole process group."""
    run, scratch = tmp_path / "run", tmp_path / "tmp"
    scratch.mkdir()
    command = [sys.executable, "-m", "gdmpo.cli", "train", "configs/atsc-grid5x5/dppo.yaml", *ATSC_FAST, "--out",
               str(run), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, env={**os.environ, "TMPDIR": str(scratch)})
    wait_for(lambda: (run / "metrics.csv").exists())
    workers = children(process.pid)
    assert len(workers) == 2 and any(scratch.iterdir())  # the workers' folder
    os.killpg(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 143, (process.returncode, output)
    assert "gdmpo: terminated (SIGTERM); " in output and f"continue with: gdmpo train --resume {run}" in output
    assert "Traceback" not in output
    wait_for(lambda: not any(alive(w) for w in workers), seconds=5)
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("gdmpo-sumo")]


def test_a_dead_worker_during_training_says_what_is_kept_and_how_to_resume(tmp_path):
    run = tmp_path / "run"
    process = start_training(run, "configs/atsc-grid5x5/dppo.yaml", *ATSC_FAST)
    wait_for(lambda: (run / "metrics.csv").exists())
    os.kill(children(process.pid)[0], signal.SIGKILL)  # a SUMO worker dies (OOM killer, a crash)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2, output
    assert re.search(r"gdmpo: error: SUMO worker 0 (died during|is not running)", output) and "Traceback" not in output
    assert f"continue with: gdmpo train --resume {run}" in output and "this looks like a bug" not in output


# ------------------------------------------------------------------ one clear line for bad input
def sumo_files(tmp_path: Path) -> dict[str, Path]:
    files = {"empty": tmp_path / "empty.net.xml", "truncated": tmp_path / "truncated.net.xml",
             "routes": tmp_path / "ghost.rou.xml"}
    files["empty"].write_text("")
    files["truncated"].write_text(Path("graphs/grid3x3.net.xml").read_text()[:3000])
    files["routes"].write_text('<routes><vehicle id="v0" depart="0"><route edges="no_such_edge"/></vehicle></routes>')
    return files


@pytest.mark.parametrize("case", ["empty", "truncated", "route-as-net", "unknown-edge", "out-is-file", "negative-steps",
                                  "bad-set", "bad-option", "no-episodes", "plot-no-run", "eval-other-layout"])
def test_bad_input_gets_one_clear_line(case, tmp_path, capsys):
    files = sumo_files(tmp_path)
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    argv, expected = {
        "empty": (["graph", str(files["empty"])], "empty.net.xml: not a SUMO network: the file is empty"),
        "truncated": (["graph", str(files["truncated"])], "truncated.net.xml: not a readable SUMO network"),
        "route-as-net": (["graph", str(files["routes"])], "not a SUMO network: its root element is <routes>"),
        "unknown-edge": (["rollout", "atsc", "--option", "net_file=graphs/grid3x3.net.xml", "--option",
                          f"route_file={files['routes']}", "--episodes", "1", "--num-envs", "1"],
                         "ghost.rou.xml): The edge 'no_such_edge' within the route for vehicle 'v0' is not known"),
        "out-is-file": (["train", "--out", str(not_a_dir)], "exists and is not a directory"),
        "negative-steps": (["train", "--steps", "-5", "--out", str(tmp_path / "neg")], "--steps must be >= 0"),
        "bad-set": (["train", "configs/cacc-catchup/dppo.yaml", "--set", "ppo.lr_policy=abc", "--out",
                     str(tmp_path / "x")], "--set: ppo.lr_policy must be float"),
        "bad-option": (["rollout", "--option", "num_vehicles=-3"], "CACC option num_vehicles must be an integer >= 1"),
        "no-episodes": (["eval", "x.pt", "--episodes", "0"], "--episodes must be >= 1"),
        "plot-no-run": (["plot", str(tmp_path), "-o", str(tmp_path / "p.png")],
                        f"{tmp_path}: not a run directory of gdmpo train"),
        "eval-other-layout": (None, "ring-attenuation has continuous actions Box(-1.0, 1.0, (1,), float32): a policy "
                                      "cannot switch action kinds"),
    }[case]
    if argv is None:
        gdmpo.train(small_config(), tmp_path / "run", total_env_steps=20, progress=False)
        argv = ["eval", str(tmp_path / "run/checkpoints/last.pt"), "--env", "ring-attenuation", "--episodes", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "neg").exists() and not (tmp_path / "x").exists()  # a failed train leaves no directory


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="--steps must be >= 0"):
        main(["--debug", "train", "--steps", "-1", "--out", str(tmp_path / "run")])


def test_a_train_that_fails_to_start_removes_its_new_directory(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--set", "env.options={num_vehicles: 0}", "--out", str(run)]) == 2
    assert "num_vehicles must be an integer >= 1" in capsys.readouterr().err
    assert not run.exists()


# ------------------------------------------------------------------ same seed, same run (SUMO too)
def metrics_without_timings(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k not in ("wall_s", "steps_per_s") and not k.startswith("time_")}
                for row in csv.DictReader(handle)]


@pytest.mark.parametrize("base,overrides", [
    ("configs/atsc-grid5x5/dppo.yaml", {"env.options": {"episode_seconds": 120}, "rollout_steps": 12}),
    ("configs/ring-attenuation/dppo.yaml", {"env.options": {"horizon": 60}, "rollout_steps": 30}),
])
def test_same_seed_same_run_on_sumo_with_two_workers(base, overrides, tmp_path):
    small = {"policy_net.hidden": [8], "value_net.hidden": [8], "ppo.epochs": 2, **overrides}
    runs = []
    for name in ("a", "b"):
        config = cfg.load(base, small)
        assert config.env.num_envs == 2
        gdmpo.train(config, tmp_path / name, total_env_steps=3 * 2 * small["rollout_steps"], progress=False)
        runs.append(metrics_without_timings(tmp_path / name))
    assert runs[0] == runs[1] and len(runs[0]) == 3
    assert any(row["policy_loss"] not in ("", "0.0") for row in runs[0])


# ------------------------------------------------------------------ threads that neither oversubscribe nor spin
def test_thread_settings_are_respected(tmp_path):
    from gdmpo.threads import available_cpus

    probe = ("import os, gdmpo, torch; from gdmpo.threads import configure_threads; "
             "print(os.environ['OMP_WAIT_POLICY'], configure_threads(), torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env).stdout.split()
    assert out == ["PASSIVE", str(available_cpus()), str(available_cpus())]
    assert available_cpus() <= len(os.sched_getaffinity(0))
    own = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env={**env, "OMP_WAIT_POLICY": "ACTIVE"}).stdout.split()
    assert own[0] == "ACTIVE"  # a user's own choice is kept
    threads = torch.get_num_threads()
    try:
        trainer = gdmpo.Trainer(small_config(threads=1), tmp_path / "run")
        trainer.close()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        gdmpo.Trainer(small_config(threads=0), tmp_path / "run0")


def test_side_by_side_runs_both_at_once_and_hands_back_results_and_errors(monkeypatch):
    import gdmpo.threads as threads
    from gdmpo.threads import side_by_side, stop_requested

    monkeypatch.setattr(threads, "_configured", 2)
    meet = threading.Barrier(2, timeout=10)  # passes only if both functions run at the same time
    assert side_by_side(lambda: (meet.wait(), "policy")[1], lambda: (meet.wait(), "critic")[1]) == ("policy", "critic")

    def second_until_stopped():  # a long loop that ends only when asked to
        while not stop_requested():
            time.sleep(0.01)
        return "stopped"

    with pytest.raises(KeyError, match="first failed"):
        side_by_side(lambda: {}["first failed"], second_until_stopped)
    with pytest.raises(ZeroDivisionError):
        side_by_side(lambda: "fine", lambda: 1 / 0)
    monkeypatch.setattr(threads, "_configured", 1)  # one thread: in turn, both on the caller's thread
    caller = threading.get_ident()
    assert side_by_side(threading.get_ident, threading.get_ident) == (caller, caller)


def test_small_work_runs_on_one_thread_and_ppo_loops_side_by_side(tmp_path, monkeypatch):
    from gdmpo.algos import collect
    from gdmpo.algos.ppo import PPO
    from gdmpo.threads import PARALLEL_MIN_ROWS, single_thread

    seen = {}  # (rows, torch threads, python thread) of each policy and value minibatch step
    policy_step, value_step = PPO._policy_step, PPO._value_step

    def spy(name, step):
        def spied(agent, data, target, idx):
            seen.setdefault(name, set()).add((idx.numel() * agent.num_agents, torch.get_num_threads(),
                                              threading.get_ident()))
            return step(agent, data, target, idx)
        return spied

    monkeypatch.setattr(PPO, "_policy_step", spy("policy", policy_step))
    monkeypatch.setattr(PPO, "_value_step", spy("value", value_step))
    threads = torch.get_num_threads()
    trainer = gdmpo.Trainer(small_config(threads=2), tmp_path / "run")
    iteration = trainer.algorithm.iteration
    trainer.algorithm.iteration = lambda env, obs: (seen.setdefault("iteration", torch.get_num_threads()),
                                                    iteration(env, obs))[1]
    try:
        trainer.train(100, progress=False)  # 4 copies x 25 steps x n agents / 4 minibatches: small
        assert seen["iteration"] == 1
        for name in ("policy", "value"):
            assert {t for _, t, _ in seen[name]} == {1}
            assert max(rows for rows, _, _ in seen[name]) < PARALLEL_MIN_ROWS
        main = threading.get_ident()
        # the policy's loop on the caller's thread, the critic's on a helper beside it
        assert {who for _, _, who in seen["policy"]} == {main} and main not in {who for _, _, who in seen["value"]}
        env, agent = trainer.env, trainer.algorithm.agent
        steps = PARALLEL_MIN_ROWS * agent.config.minibatches // (env.num_envs * env.num_agents)  # minibatch at the bar
        data = agent.reevaluate(collect(env, agent, env.reset(), steps)[0])
        seen.clear()
        with single_thread():  # as inside an iteration: a large update takes the configured 2, one per loop
            agent.update(data)
        assert {t for _, t, _ in seen["policy"] | seen["value"]} == {1}
        assert min(rows for rows, _, _ in seen["policy"]) >= PARALLEL_MIN_ROWS
        assert torch.get_num_threads() == 2  # restored after the blocks
    finally:
        trainer.close()
        torch.set_num_threads(threads)


def test_a_checkpoints_sumo_options_are_not_applied_unless_passed_again(tmp_path, capsys):
    """A shared checkpoint whose config asks SUMO to write a file must not write it when evaluated."""
    run = tmp_path / "run"
    assert main(["train", "configs/ring-attenuation/dppo.yaml", "--out", str(run), "--no-progress",
                 "--set", "env.num_envs=1", "--set", "env.options={horizon: 10}", "--set", "rollout_steps=10",
                 "--set", "total_env_steps=10"]) == 0
    state = load_checkpoint(run / "checkpoints/last.pt")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    state["config"]["env"]["options"]["sumo_options"] = ["--summary-output", str(victim)]
    state["config"]["env"]["options"]["backend"] = "traci"
    checkpoints.save_checkpoint(state, tmp_path / "crafted.pt")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "crafted.pt"), "--episodes", "1", "--out", str(tmp_path / "eval")]) == 0
    assert victim.read_text() == "precious"
    assert "not applied from the checkpoint: backend, sumo_options" in capsys.readouterr().out


@pytest.mark.parametrize("text,message", [
    ("ppo:\n  gamma: 0.9\nppo:\n  epochs: 2\n", r"line 3: duplicate key 'ppo' \(first at line 1\)"),
    ("ppo:\n  gamma: 0.9\n  gamma: 0.5\n", r"line 3: duplicate key 'gamma'"),
    ("a: &a [1, 1, 1]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n", r"line 2: YAML aliases \(\*a\) are not accepted"),
])
def test_duplicate_keys_and_aliases_in_a_config_are_refused(tmp_path, capsys, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(cfg.ConfigError, match=rf"run.yaml: {message}"):
        cfg.load(path)
    assert main(["train", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "gdmpo: error: " in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_a_closed_environment_refuses_reset_and_step():
    env = gdmpo.make("atsc-grid3x3", num_envs=1, seed=0, episode_seconds=60)
    env.reset()
    env.close()
    with pytest.raises(RuntimeError, match=r"ATSCEnv.reset\(\) called after close\(\)"):
        env.reset()
    with pytest.raises(RuntimeError, match=r"ATSCEnv.step\(\) called after close\(\)"):
        env.step(torch.zeros(1, env.num_agents, dtype=torch.long))
    env.close()  # still safe twice


def test_diverged_training_stops_before_saving_and_a_nan_checkpoint_is_refused(tmp_path, capsys, monkeypatch):
    from gdmpo.algos.ppo import PPO

    assert main(["train", "configs/cacc-catchup/dppo.yaml", "--out", str(tmp_path / "x"), "--no-progress",
                 "--set", "ppo.lr_policy=.inf"]) == 2  # an infinite rate never starts
    assert "ppo.lr_policy must be a finite number >= 0 (0 freezes the policy), got inf" in capsys.readouterr().err
    updates, real_update = [], PPO.update

    def diverging_update(self, data):  # the second iteration's update leaves NaN weights, as a blown-up step does
        stats = real_update(self, data)
        updates.append(1)
        if len(updates) == 2:
            with torch.no_grad():
                next(self.policy.parameters()).fill_(float("nan"))
        return stats

    monkeypatch.setattr(PPO, "update", diverging_update)
    updates.append(1)  # diverge at the first iteration of a fresh run: nothing is kept
    first = tmp_path / "first"
    assert main(["train", "configs/cacc-catchup/dppo.yaml", "--out", str(first), "--no-progress",
                 "--steps", "1200", "--set", "rollout_steps=75", "--set", "env.num_envs=8"]) == 2
    err = capsys.readouterr().err
    assert "iteration 1: training diverged" in err and f"nothing was kept ({first} is removed)" in err
    assert not first.exists()
    updates.clear()
    run = tmp_path / "run"
    code = main(["train", "configs/cacc-catchup/dppo.yaml", "--out", str(run), "--no-progress",
                 "--steps", "1200", "--set", "rollout_steps=75", "--set", "env.num_envs=8"])
    err = capsys.readouterr().err
    assert code == 2 and "iteration 2: training diverged" in err and "keeps iteration 1" in err
    state = load_checkpoint(run / "checkpoints/last.pt")  # iteration 1's weights: finite, loadable
    assert state["counters"]["iteration"] == 1
    name = next(iter(state["agent"]))
    state["agent"][name] = torch.full_like(state["agent"][name], float("nan"))
    checkpoints.save_checkpoint(state, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match=rf"nan.pt: refused: 1 of the policy's tensors hold NaN .*\({name}\)"):
        load_checkpoint(tmp_path / "nan.pt")
    assert main(["eval", str(tmp_path / "nan.pt"), "--deterministic"]) == 2


# ------------------------------------------------------------------ resume never rewrites another run's history
def test_resume_refuses_an_edited_config_or_a_foreign_checkpoint_and_keeps_the_history(tmp_path):
    run, other = tmp_path / "run", tmp_path / "other"
    gdmpo.train(small_config(), run, 40, progress=False)
    gdmpo.train(small_config(**{"algo": "cppo", "seed": 5}), other, 60, progress=False)
    history = (run / "metrics.csv").read_text()
    config_text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config_text.replace("lr_policy: 0.0003", "lr_policy: 0.001"))
    assert main(["train", "--resume", str(run), "--steps", "80", "--no-progress"]) == 2
    with pytest.raises(ValueError, match=r"config.yaml does not describe .*last.pt \(ppo.lr_policy: 0.0003 in the "
                                         r"checkpoint, 0.001 in config.yaml\). --resume continues"):
        gdmpo.Trainer.resume(run)
    (run / "config.yaml").write_text(config_text)
    shutil.copy(other / "checkpoints/last.pt", run / "checkpoints/last.pt")  # another run's checkpoint
    with pytest.raises(ValueError, match=r"\(algo: 'cppo' in the checkpoint, 'dppo' in config.yaml; .*seed"):
        gdmpo.Trainer.resume(run)
    assert (run / "metrics.csv").read_text() == history and (run / "config.yaml").read_text() == config_text


def test_a_fresh_run_that_fails_before_its_first_iteration_leaves_nothing(tmp_path, monkeypatch):
    from gdmpo.algos.ppo import PPO

    run = tmp_path / "run"
    monkeypatch.setattr(PPO, "update", lambda self, data: (_ for _ in ()).throw(RuntimeError("broken update")))
    with pytest.raises(RuntimeError, match="broken update"):
        gdmpo.train(small_config(), run, 40, progress=False)
    assert not run.exists()  # before: config.yaml and an iteration-0 checkpoint that blocked the same --out
    monkeypatch.undo()
    gdmpo.train(small_config(), run, 40, progress=False)  # the same --out works
    assert (run / "checkpoints/last.pt").is_file()


@pytest.mark.parametrize("assignment, message", [
    ("ppo.gamma=1.5", "ppo.gamma must be in (0, 1], got 1.5"),
    ("ppo.minibatches=0", "ppo.minibatches must be >= 1, got 0"),
    ("ppo.lr_value=-1e-3", "ppo.lr_value must be a finite number >= 0 (0 freezes the critic), got -0.001"),
    ("policy_net.hidden=[-8]", "policy_net.hidden must be a non-empty list of widths >= 1, got [-8]"),
    ("rollout_steps=0", "rollout_steps must be >= 1, got 0"),
    ("env.num_envs=0", "env.num_envs must be >= 1, got 0"),
])
def test_out_of_range_values_name_their_key(tmp_path, capsys, assignment, message):
    assert main(["train", "configs/cacc-catchup/dppo.yaml", "--set", assignment, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "x").exists()


def test_zero_copies_on_the_command_line_is_refused(capsys):
    assert main(["rollout", "cacc-catchup", "--num-envs", "0"]) == 2  # before: silently 4 copies
    assert "--num-envs must be >= 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["max_halting=0", "wave_distance=0", "wave_scale=-1", "obs_clip=.nan"])
def test_out_of_range_signal_options_name_the_option(capsys, option):
    assert main(["rollout", "atsc-grid3x3", "--episodes", "1", "--option", option]) == 2
    name = option.split("=")[0]
    assert f"atsc option {name} must be a number > 0" in capsys.readouterr().err


def test_a_damaged_metrics_file_is_named(tmp_path, capsys):
    run = tmp_path / "run"
    gdmpo.train(small_config(), run, 40, progress=False)
    (run / "metrics.csv").write_text("garbage,,\n1,2\n")
    assert main(["plot", str(run), "-o", str(tmp_path / "c.png")]) == 2
    assert f"{run / 'metrics.csv'}: not a gdmpo metrics table (no env_steps, episode_return column" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--steps", "60", "--no-progress"]) == 2
    assert "not a gdmpo metrics table (no iteration column" in capsys.readouterr().err
    (run / "metrics.csv").write_text("iteration,env_steps,episode_return\n1,abc,3\n")
    assert main(["plot", str(run), "-o", str(tmp_path / "c.png")]) == 2
    assert "metrics.csv: line 2: env_steps is 'abc', not a number" in capsys.readouterr().err
    for argv in (["train", "--set", "ppo.lr_policy=[1,", "--out", str(tmp_path / "x")],
                 ["sweep", "cacc-catchup/dppo", "--grid", "ppo.lr_policy=[1,2", "--out", str(tmp_path / "s")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is not a YAML value" in err and err.count("\n") == 1, err


def test_a_sweep_runs_in_local_processes_without_ray_and_skips_finished_trials_when_rerun(tmp_path, capsys):
    config = str(Path(__file__).parents[1] / "configs/cacc-catchup/dppo.yaml")
    out = tmp_path / "local"
    args = ["sweep", config, "--seeds", "0", "1", "--steps", "300", "--episodes", "1", "--out", str(out),
            "--processes", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2 local processes" in printed and "Ray" not in printed
    assert (out / "base/s0/result.json").exists() and (out / "base/s1/result.json").exists()
    assert main(args) == 0
    assert "2 trials (2 finished before)" in capsys.readouterr().out
    assert main(["sweep", config, "--processes", "0", "--out", str(out)]) == 2
    assert "--processes runs trials locally without Ray" in capsys.readouterr().err
