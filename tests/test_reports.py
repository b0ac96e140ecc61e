"""Readable evaluation output: eval reports (JSON + Markdown), per-agent maps, vehicle profiles."""

from __future__ import annotations

import csv
import json

import pytest

import gdmpo
from gdmpo import config as cfg
from gdmpo.cli import main
from gdmpo.graph import chain, grid
from gdmpo.plot import plot_agent_map, plot_profiles
from gdmpo.reports import agent_layout, markdown_table


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    run = tmp_path_factory.mktemp("reports") / "run"
    gdmpo.train(cfg.load("configs/cacc-catchup/dppo.yaml"), run, total_env_steps=600, progress=False)
    return run / "checkpoints/last.pt"


def test_eval_writes_json_and_markdown_then_the_map_draws_it(checkpoint, tmp_path, capsys):
    assert main(["eval", str(checkpoint), "--episodes", "2", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "eval-cacc-catchup.json").read_text())
    assert report["episodes"] == 2 and len(report["agent_returns"]) == 2 and len(report["agent_returns"][0]) == 8
    assert len(report["layout"]["pos"]) == 8 and len(report["layout"]["edges"]) == 7  # a chain of 8
    table = (tmp_path / "eval-cacc-catchup.md").read_text()
    assert "| learned |" in table and "Per-agent return" in table
    assert "report:" in capsys.readouterr().out
    assert plot_agent_map(tmp_path / "eval-cacc-catchup.json", tmp_path / "map.png").stat().st_size > 0
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="not an eval or transfer report"):
        plot_agent_map(tmp_path / "other.json", tmp_path / "bad.png")


def test_profiles_follow_the_platoon_from_its_start(checkpoint, tmp_path):
    png = plot_profiles(checkpoint, tmp_path / "fig7.png", vehicles=[0, 7])
    assert png.stat().st_size > 0
    with (tmp_path / "fig7.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    steps = len(rows) // 8  # every vehicle at every step, until the time limit or a collision ends it
    assert len(rows) == 8 * steps and 1 <= steps <= 600
    start = {int(r["vehicle"]): (float(r["headway_m"]), float(r["speed_mps"])) for r in rows if r["step"] == "0"}
    # Catch-up starts every follower at 15 m/s and 20 m behind its leader, except the first: 30-50 m
    assert all(speed == pytest.approx(15.0) for _, speed in start.values())
    assert 30.0 <= start[0][0] < 50.0 and all(start[i][0] == pytest.approx(20.0) for i in range(1, 8))
    with pytest.raises(ValueError, match="agent indices"):
        plot_profiles(checkpoint, tmp_path / "bad.png", vehicles=[8])


def test_layouts_and_tables():
    layout = agent_layout(grid(2, 3))
    assert len(layout["pos"]) == 6 and len(layout["edges"]) == 7
    assert agent_layout(chain(3))["names"] == ["0", "1", "2"]
    row = {"mean_return": -12.5, "std_return": 0.5, "mean_step_return": -0.25, "traffic": {"delay": 17.94}}
    table = markdown_table("t", [("a", row)])
    assert "| a | 17.9 | -12.5 ± 0.5 | -0.25 |" in table and "| policy | delay (s, departed vehicles) | team return | per-step |" in table


def test_agent_map_against_a_reference_is_the_per_agent_difference():
    from gdmpo.plot import agent_map_values

    report = {"layout": {"pos": [[0, 0], [1, 0]], "edges": []},
              "zero_shot": {"agent_returns": [[-10.0, -4.0], [-12.0, -6.0]]},
              "references": {"greedy": {"agent_returns": [[-8.0, -7.0], [-8.0, -7.0]]}}}
    assert agent_map_values(report).tolist() == [-11.0, -5.0]
    assert agent_map_values(report, "greedy").tolist() == [-3.0, 2.0]  # agent 0 loses to greedy, agent 1 wins
    with pytest.raises(ValueError, match=r"r.json: no 'max-pressure' reference to compare with \(it has: greedy\)"):
        agent_map_values(report, "max-pressure", "r.json")
