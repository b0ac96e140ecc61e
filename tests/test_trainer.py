"""Run directories, checkpoints, resume after a kill, and the CLI contract."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import gdmpo
from gdmpo import config as cfg
from gdmpo.cli import main

SMALL = {"env.num_envs": 4, "rollout_steps": 25, "ppo.epochs": 2, "policy_net.hidden": [16, 16],
         "value_net.hidden": [16, 16]}


def small_config(**extra):
    return cfg.from_dict(cfg.apply_overrides({}, {**SMALL, **extra}))


def rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_run_directory_contents(tmp_path):
    summary = gdmpo.train(small_config(), tmp_path / "run", total_env_steps=700, progress=False)
    run = tmp_path / "run"
    assert summary["env_steps"] == 700 and summary["iterations"] == 7
    assert cfg.load(run / "config.yaml") == small_config()
    table = rows(run)
    assert [int(r["iteration"]) for r in table] == list(range(1, 8))
    assert [int(r["env_steps"]) for r in table] == [100 * i for i in range(1, 8)]
    assert {"episode_return", "wall_s", "policy_loss", "value_loss", "approx_kl"} <= set(table[0])
    assert float(table[-1]["wall_s"]) > float(table[0]["wall_s"])
    assert (run / "checkpoints" / "last.pt").is_file() and any((run / "tb").iterdir())
    assert not list((run / "checkpoints").glob("*.tmp"))
    with pytest.raises(FileExistsError, match="already holds a run"):
        gdmpo.Trainer(small_config(), run)


def test_same_seed_same_run(tmp_path):
    a = gdmpo.train(small_config(), tmp_path / "a", total_env_steps=300, progress=False)
    b = gdmpo.train(small_config(), tmp_path / "b", total_env_steps=300, progress=False)
    assert a["env_steps"] == b["env_steps"]
    losses = [[r["policy_loss"] for r in rows(tmp_path / d)] for d in ("a", "b")]
    assert losses[0] == losses[1]
    wa = torch.load(tmp_path / "a/checkpoints/last.pt", weights_only=True)["agent"]
    wb = torch.load(tmp_path / "b/checkpoints/last.pt", weights_only=True)["agent"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_after_kill_has_no_duplicate_or_missing_rows(tmp_path):
    run = tmp_path / "killed"
    sets = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    command = [sys.executable, "-m", "gdmpo.cli", "train", "--out", str(run), "--steps", "100000",
               "--no-progress", *sets]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (run / "metrics.csv").exists() and len(rows(run)) >= 4:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = len(rows(run))
    assert killed_at >= 4
    target = (killed_at + 3) * 100
    assert main(["train", "--resume", str(run), "--steps", str(target), "--no-progress"]) == 0
    table = rows(run)
    assert [int(r["iteration"]) for r in table] == list(range(1, len(table) + 1))
    assert int(table[-1]["env_steps"]) == target
    state = torch.load(run / "checkpoints/last.pt", weights_only=True)
    assert state["counters"]["iteration"] == len(table)


def test_cli_train_eval_plot_envs(tmp_path, capsys):
    run = tmp_path / "cli"
    sets = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    assert main(["train", "configs/cacc-catchup/cppo.yaml", "--steps", "1200", "--seed", "3", "--out", str(run),
                 "--no-progress", *sets]) == 0
    assert cfg.load(run / "config.yaml").seed == 3
    capsys.readouterr()
    assert main(["eval", str(run / "checkpoints/last.pt"), "--episodes", "2", "--json", "--deterministic"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 2 and len(result["returns"]) == 2
    assert result["mean_return"] == pytest.approx(sum(result["returns"]) / 2)
    assert {"mean_return", "std_return", "episodes"} <= set(result)
    assert main(["eval", str(run / "checkpoints/last.pt"), "--episodes", "1", "--env", "cacc-slowdown"]) == 0
    assert main(["plot", str(run), "-o", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").stat().st_size > 1000
    assert main(["envs"]) == 0
    assert "cacc-slowdown" in capsys.readouterr().out


def test_cli_errors_are_specific(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ppo:\n  clip_ratio: 0.2\n")
    assert main(["train", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "unknown key ppo.'clip_ratio'" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    assert main(["eval", str(garbage)]) == 2
    assert "not a readable gdmpo checkpoint" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert main(["train", "cacc-catchup/dmpp"]) == 2  # a shipped name, mistyped: the names it could be
    err = capsys.readouterr().err
    assert "cacc-catchup/dmpp: no such config file, nor a shipped config" in err and "cacc-catchup/dmpo," in err


def test_cli_help_envs_and_argument_errors_answer_without_importing_torch():
    """A fresh interpreter: --help, envs, a command's --help and a mistyped option load no torch, numpy or SUMO."""
    script = """
import contextlib, io, sys
from gdmpo.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    assert main(["envs"]) == 0
    for argv in (["--help"], ["train", "--help"], ["train", "--bogus"], ["eval"]):
        try:
            main(argv)
        except SystemExit as exit:
            assert exit.code == (0 if "--help" in argv else 2), argv
assert "atsc-grid5x5" in out.getvalue() and "unrecognized arguments: --bogus" in out.getvalue()
print(sorted(m for m in ("torch", "numpy", "traci", "libsumo", "gymnasium") if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_plot_groups_runs_that_differ_only_by_seed(tmp_path):
    from gdmpo.plot import group_runs

    for name, extra in (("a0", {"seed": 0}), ("a1", {"seed": 1}), ("k3", {"ppo.value_hops": 3})):
        run = tmp_path / name
        run.mkdir()
        cfg.save(small_config(**extra), run / "config.yaml")
    groups = group_runs([tmp_path / "a0", tmp_path / "a1", tmp_path / "k3"])
    assert sorted(len(d) for d in groups.values()) == [1, 2]
    assert "dppo on cacc-catchup (ppo.value_hops=3)" in groups
    assert sorted(p.name for p in groups["dppo on cacc-catchup (ppo.value_hops=2)"]) == ["a0", "a1"]


def test_plot_groups_a_run_saved_before_a_knob_existed_with_the_knob_off(tmp_path):
    """A config without ``ppo.reward_clip`` (saved before the knob) groups with one that sets it null;
    one that sets it to 100 stays apart, and no group's runs are lost to another's label."""
    from gdmpo.plot import group_runs

    for name, extra in (("old", {}), ("new", {"seed": 1}), ("clip", {"ppo.reward_clip": 100.0})):
        run = tmp_path / name
        run.mkdir()
        cfg.save(small_config(**extra), run / "config.yaml")
    old = tmp_path / "old" / "config.yaml"
    old.write_text("\n".join(line for line in old.read_text().splitlines() if "reward_clip" not in line))
    groups = group_runs([tmp_path / "old", tmp_path / "new", tmp_path / "clip"])
    assert sorted(p.name for p in groups["dppo on cacc-catchup (ppo.reward_clip=None)"]) == ["new", "old"]
    assert [p.name for p in groups["dppo on cacc-catchup (ppo.reward_clip=100.0)"]] == ["clip"]


def test_iterations_without_a_finished_episode_repeat_the_last_return(tmp_path):
    """Episodes of 50 steps, iterations of 25: every other iteration finishes episodes; the rows between
    repeat the last mean (``episodes`` 0), and curves keep only the rows that measured something."""
    from gdmpo.plot import read_curve

    config = small_config(**{"env.options": {"terminate_on_collision": True, "episode_steps": 50}})
    gdmpo.train(config, tmp_path / "run", total_env_steps=600, progress=False)
    table = rows(tmp_path / "run")
    assert [int(r["episodes"]) for r in table] == [0, 4] * 3
    assert table[0]["episode_return"] == ""  # nothing finished yet
    assert table[2]["episode_return"] == table[1]["episode_return"] and table[4]["episode_return"] == table[3]["episode_return"]
    steps, _ = read_curve(tmp_path / "run")
    assert steps.tolist() == [200, 400, 600]


def test_rollout_runs_as_many_copies_as_episodes_asked(capsys, monkeypatch):
    made = []
    make = gdmpo.make
    monkeypatch.setattr(gdmpo, "make", lambda *a, **kw: made.append(kw["num_envs"]) or make(*a, **kw))
    assert main(["rollout", "cacc-catchup", "--episodes", "1", "--json"]) == 0
    assert main(["rollout", "cacc-catchup", "--episodes", "9", "--json"]) == 0
    assert made == [1, 4]  # one episode asked, one copy run; more episodes share at most 4 copies
    assert json.loads(capsys.readouterr().out.splitlines()[0])["episodes"] == 1


def test_evaluation_with_a_seed_seeds_the_policys_sampling_and_leaves_torchs_rng_alone():
    from toy_envs import Drift

    from gdmpo.evaluation import run_episodes

    def noisy(obs):  # a stochastic policy drawing from torch's global RNG, as PPO's sampling does
        return torch.rand(obs.shape[0], 3, 1) * 2 - 1

    env = Drift(num_envs=2, horizon=4)
    first = run_episodes(env, noisy, 4, seed=7)
    torch.rand(1000)  # the process's RNG has moved on: the same evaluation must not notice
    before = torch.random.get_rng_state()
    second = run_episodes(env, noisy, 4, seed=7)
    assert second["returns"] == first["returns"]
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's stream (e.g. training) is untouched
    assert run_episodes(env, noisy, 4, seed=8)["returns"] != first["returns"]


def test_bare_train_runs_the_shipped_catchup_dppo_recipe(tmp_path):
    assert main(["train", "--steps", "600", "--out", str(tmp_path / "bare"), "--no-progress"]) == 0
    bare = cfg.load(tmp_path / "bare/config.yaml")
    shipped = cfg.load("configs/cacc-catchup/dppo.yaml")
    assert bare.ppo == shipped.ppo and bare.env == shipped.env and bare.algo == "dppo"
    assert main(["train", "--steps", "600", "--set", "ppo.reward_clip=null", "--out", str(tmp_path / "own"),
                 "--no-progress"]) == 0
    assert cfg.load(tmp_path / "own/config.yaml").ppo.reward_clip is None  # --set still wins
