"""benchmarks/paper.py: finished runs are skipped, stopped runs resume, result files are written."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from gdmpo.experiments import train_one
from gdmpo.threads import machine_description

from benchmark_scripts import load



def test_resume_skips_finished_runs_and_continues_stopped_ones(tmp_path, capsys, monkeypatch):
    paper = load("paper")

    args = ["--envs", "cacc-catchup", "--algos", "dppo", "--seeds", "0", "--episodes", "1", "--out", str(tmp_path)]
    first = paper.main([*args, "--steps", "4800"])
    run = tmp_path / "runs/cacc-catchup/dppo-s0"
    assert len(first) == 1 and first[0]["env_steps"] == 4800
    result = (run / "result.json").read_text()
    assert {"summary.md", "curves.csv", "fig4.png"} <= {p.name for p in tmp_path.iterdir()}
    summary = (tmp_path / "summary.md").read_text()
    assert "## cacc-catchup (threshold -100000)" in summary and "| dppo | 0 |" in summary
    assert json.loads(result)["machine"] == machine_description()  # where the run finished, in its summary
    assert f"Machines: {machine_description()}: 1 run." in summary
    capsys.readouterr()
    again = paper.main([*args, "--steps", "4800"])
    assert "1 of 1 runs finished; 0 to run" in capsys.readouterr().out
    assert (run / "result.json").read_text() == result and again == first
    # a run stopped before its end (no result.json) resumes from its checkpoint instead of restarting
    (run / "result.json").unlink()
    resumed = paper.main([*args, "--steps", "5400"])
    assert resumed[0]["env_steps"] == 5400
    with open(run / "metrics.csv", newline="") as handle:
        assert [int(r["iteration"]) for r in csv.DictReader(handle)] == list(range(1, 10))
    with open(tmp_path / "curves.csv", newline="") as handle:
        curve = list(csv.DictReader(handle))
    assert curve and {row["algo"] for row in curve} == {"dppo"} and int(curve[-1]["env_steps"]) <= 5400
    assert json.loads((run / "result.json").read_text())["final_return"] == resumed[0]["final_return"]
    # a command for another algorithm keeps the finished runs of earlier commands in the result files
    paper.main(["--envs", "cacc-catchup", "--algos", "cppo", "--seeds", "0", "--episodes", "1", "--out", str(tmp_path),
                "--steps", "4800"])
    summary = (tmp_path / "summary.md").read_text()
    assert "| dppo | 0 |" in summary and "| cppo | 0 |" in summary
    with open(tmp_path / "curves.csv", newline="") as handle:
        assert {row["algo"] for row in csv.DictReader(handle)} == {"dppo", "cppo"}
    # in a fresh clone without the run directories of earlier sittings, the result files are kept as they are
    files = {name: (tmp_path / name).read_bytes() for name in ("summary.md", "curves.csv", "fig4.png")}
    (tmp_path / "runs/cacc-catchup/dppo-s0/result.json").unlink()
    capsys.readouterr()
    paper.main(["--envs", "cacc-catchup", "--algos", "cppo", "--seeds", "0", "--out", str(tmp_path), "--summary-only"])
    assert "1 run(s) in" in capsys.readouterr().out
    assert all((tmp_path / name).read_bytes() == data for name, data in files.items())


def test_summary_names_each_machine_and_the_runs_it_made(monkeypatch):
    paper = load("paper")

    runs = [{"machine": "AMD EPYC, 2 CPUs"}, {"machine": "Intel Xeon, 2 CPUs"}, {"machine": "AMD EPYC, 2 CPUs"}, {}]
    assert paper.machines_line(runs) == ("Machines: AMD EPYC, 2 CPUs: 2 runs; Intel Xeon, 2 CPUs: 1 run; not recorded "
                                         "(runs made before results named their machine): 1 run.")


def test_step_ratio_is_a_bound_where_only_one_algorithm_reaches_the_threshold(monkeypatch):
    paper = load("paper")

    nan, head = math.nan, "DPPO / DMPO real steps to threshold: "
    assert paper.step_ratio_line(2.5e4, 1e4, 100_000) == head + "2.50"
    # DPPO never got there in 1e5 steps, DMPO did at 8e4: DPPO needs more than 1e5, so the ratio exceeds 1.25
    assert paper.step_ratio_line(nan, 8e4, 100_000) == head + "more than 1.25 (DPPO did not reach it in 1e+05 real steps)"
    assert paper.step_ratio_line(4e4, nan, 100_000) == head + "less than 0.40 (DMPO did not reach it in 1e+05 real steps)"
    assert paper.step_ratio_line(nan, nan, 100_000) == head + "neither reached it in 1e+05 real steps"


def test_last_and_best_are_means_of_three_logged_returns(tmp_path, monkeypatch):
    paper = load("paper")

    rows = [(1, 100, 1, 2), (2, 200, 5, 2), (3, 300, 5, 0), (4, 400, 9, 2), (5, 500, 1, 2), (6, 600, -2, 2)]
    (tmp_path / "metrics.csv").write_text("iteration,env_steps,episode_return,episodes\n"
                                          + "".join(f"{i},{s},{r},{e}\n" for i, s, r, e in rows))
    # iteration 3 finished no episode (repeats the last return) and is left out: logs 1, 5, 9, 1, -2
    # means of three: (1+5+9)/3 = 5, (5+9+1)/3 = 5, (9+1-2)/3 = 8/3
    last, best = paper.last_and_best(str(tmp_path))
    assert best == 5.0 and abs(last - 8 / 3) < 1e-12
    assert all(map(math.isnan, paper.last_and_best(str(tmp_path), window=6)))


def test_fig6_draws_atsc_curves_beside_dmpo_model_error(tmp_path, monkeypatch):
    paper = load("paper")

    from gdmpo.plot import read_metric

    header = "iteration,env_steps,episode_return,episodes,model_state_mse\n"
    dmpo, dppo = tmp_path / "dmpo", tmp_path / "dppo"
    for run in (dmpo, dppo):
        run.mkdir()
    # DMPO logs no model error before its models train (iteration 1), then one per iteration
    (dmpo / "metrics.csv").write_text(header + "1,720,-50,2,\n2,1440,-40,2,0.5\n3,2160,-30,2,0.25\n")
    (dppo / "metrics.csv").write_text("iteration,env_steps,episode_return,episodes\n1,720,-55,2\n2,1440,-45,2\n")
    steps, mse = read_metric(dmpo, "model_state_mse")
    assert steps.tolist() == [1440.0, 2160.0] and mse.tolist() == [0.5, 0.25]
    assert [len(a) for a in read_metric(dppo, "model_state_mse")] == [0, 0]  # never logged: empty, not an error
    results = [{"env": "atsc-grid5x5", "name": "dmpo", "run_dir": str(dmpo)},
               {"env": "atsc-grid5x5", "name": "dppo", "run_dir": str(dppo)}]
    assert paper.plot_fig6(results, tmp_path / "fig6.png") and (tmp_path / "fig6.png").stat().st_size > 0
    # no 5x5-grid run: nothing drawn
    assert not paper.plot_fig6([{**r, "env": "cacc-catchup"} for r in results], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_signal_tasks_report_delay_and_trip_time_per_algorithm(monkeypatch):
    paper = load("paper")

    runs = [{"name": "dppo", "traffic": {"delay": 16.0, "trip_time": 86.0}},
            {"name": "dppo", "traffic": {"delay": 18.0, "trip_time": 88.0}},
            {"name": "cppo", "traffic": {"delay": 30.0, "trip_time": 100.0}}]
    lines = paper.traffic_lines(runs)
    assert "- cppo: delay 30.0 ± 0.0, trip time 100.0 ± 0.0 (1 seed)" in lines
    assert "- dppo: delay 17.0 ± 1.0, trip time 87.0 ± 1.0 (2 seeds)" in lines  # std over seeds, by hand
    assert paper.traffic_lines([{"name": "dppo", "traffic": {}}, {"name": "cppo"}]) == []  # vehicle tasks: none


def test_other_benchmarks_runs_resume_too(tmp_path, monkeypatch):

    job = {"env": "cacc-catchup", "algo": "dppo", "name": "dppo-kappa1", "kappa": 1, "seed": 0, "steps": 1200,
           "episodes": 1, "out": str(tmp_path), "overrides": {"ppo.value_hops": 1}}
    first = train_one(job)
    assert first["kappa"] == 1 and first["env_steps"] == 1200 and "final_return" in first
    run = Path(first["run_dir"])
    assert train_one(job) == first  # finished: returned as recorded, not trained again
    (run / "result.json").unlink()  # stopped after training, before its evaluation was recorded
    again = train_one({**job, "steps": 1800})  # was: FileExistsError (the run directory holds a run)
    with open(run / "metrics.csv", newline="") as handle:
        assert again["env_steps"] == 1800 and len(list(csv.DictReader(handle))) == 3


def test_a_run_another_process_trains_is_skipped_and_the_others_run(tmp_path, capsys, monkeypatch):
    paper = load("paper")

    from gdmpo.run_lock import RunLock

    held = RunLock(tmp_path / "runs/cacc-catchup/dppo-s0")  # as a second command training seed 0 would
    try:
        results = paper.main(["--envs", "cacc-catchup", "--algos", "dppo", "--seeds", "0", "1", "--episodes", "1",
                              "--steps", "1200", "--out", str(tmp_path)])
    finally:
        held.release()
    out = capsys.readouterr().out
    assert f"skipped: {tmp_path / 'runs/cacc-catchup/dppo-s0'} is in use by another gdmpo run (pid " in out
    assert [(r["seed"], r["env_steps"]) for r in results] == [(1, 1200)]  # the other seed trained and is summarised
    assert not (tmp_path / "runs/cacc-catchup/dppo-s0/metrics.csv").exists()
