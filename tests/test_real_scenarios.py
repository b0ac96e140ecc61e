"""Real scenarios as SUMO runs them: .sumocfg with additional files, programmes SUMO loads, RESCO's maps by
name, timing presets, the greedy controller and RESCO's delay."""

from __future__ import annotations

import dataclasses
import gzip
import importlib
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import pytest
import torch

import gdmpo
from gdmpo.cli import main
from gdmpo.envs.controllers import GreedyPolicy, reference_policy
from gdmpo.envs.sumo import resco
from gdmpo.envs.sumo.delay import resco_delay, tripinfo_delay
from gdmpo.envs.sumo.scenario import make_scenario, read_sumocfg
from gdmpo.graph.sumo import sumo_binary

from benchmark_scripts import load

HAS_SUMO_RL = importlib.util.find_spec("sumo_rl") is not None

NODES = """<nodes>
 <node id="C" x="0" y="0" type="traffic_light"/>
 <node id="N" x="0" y="200"/><node id="S" x="0" y="-200"/><node id="E" x="200" y="0"/><node id="W" x="-200" y="0"/>
</nodes>"""
EDGES = "<edges>" + "".join(
    f'<edge id="{a}C" from="{a}" to="C" numLanes="1" speed="13.9"/><edge id="C{a}" from="C" to="{a}" numLanes="1" speed="13.9"/>'
    for a in "NSEW") + "</edges>"
#: the net's own programme (netconvert's): north-south, then east-west; lanes NC, EC, SC, WC in link order
NET_GREENS = ["GGgrrrGGgrrr", "rrrGGgrrrGGg"]
#: a programme in an additional file that replaces it: north alone, east-west, south alone
CUSTOM_GREENS = ["GGGrrrrrrrrr", "rrrGGgrrrGGg", "rrrrrrGGGrrr"]
CUSTOM = ('<additional><tlLogic id="C" type="static" programID="custom" offset="0">'
          '<phase duration="20" state="GGGrrrrrrrrr"/><phase duration="3" state="yyyrrrrrrrrr"/>'
          '<phase duration="20" state="rrrGGgrrrGGg"/><phase duration="3" state="rrryyyrrryyy"/>'
          '<phase duration="20" state="rrrrrrGGGrrr"/><phase duration="3" state="rrrrrryyyrrr"/>'
          '</tlLogic></additional>')
#: routes whose vehicle type exists only in an additional file
ROUTES = ('<routes>' + "".join(f'<flow id="f{a}{b}" type="private" begin="0" end="600" from="{a}C" to="C{b}" '
                               f'vehsPerHour="400"/>' for a, b in ("NS", "SN", "EW", "WE")) + '</routes>')
VTYPES = '<additional><vType id="private" length="5" maxSpeed="13.9"/></additional>'


@pytest.fixture(scope="module")
def crossing(tmp_path_factory) -> Path:
    """A one-light crossing made with netconvert: ``cross.net.xml`` in its own folder."""
    folder = tmp_path_factory.mktemp("crossing")
    (folder / "n.nod.xml").write_text(NODES)
    (folder / "n.edg.xml").write_text(EDGES)
    subprocess.run([sumo_binary("netconvert"), "-n", "n.nod.xml", "-e", "n.edg.xml", "-o", "cross.net.xml",
                    "--no-turnarounds"], cwd=folder, check=True, capture_output=True)
    return folder / "cross.net.xml"


def scenario_folder(tmp_path: Path, crossing: Path, root: str = "sumoConfiguration", net: str = "cross.net.xml",
                    additional: str = "types.add.xml,programme.add.xml", extra: str = "") -> Path:
    """A user's scenario folder: network, routes, additional files and a .sumocfg naming them by relative path."""
    shutil.copy(crossing, tmp_path / "cross.net.xml")
    if net.endswith(".gz"):
        with gzip.open(tmp_path / net, "wb") as out:
            out.write(crossing.read_bytes())
    (tmp_path / "city.rou.xml").write_text(ROUTES)
    (tmp_path / "types.add.xml").write_text(VTYPES)
    (tmp_path / "programme.add.xml").write_text(CUSTOM)
    cfg = tmp_path / "city.sumocfg"
    cfg.write_text(f'<{root}><input><net-file value="{net}"/><route-files value="city.rou.xml"/>'
                   f'<additional-files value="{additional}"/></input>'
                   f'<time><begin value="0"/><end value="300"/></time>{extra}</{root}>')
    return cfg


def play(env, steps: int, action: int = 0) -> dict:
    env.reset()
    for _ in range(steps):
        env.step(torch.full((env.num_envs, env.num_agents), action, dtype=torch.long))
    return env.traffic_metrics()[0]


def test_a_sumocfg_with_vehicle_types_and_a_programme_in_additional_files_runs_as_sumo_runs_it(tmp_path, crossing):
    cfg = scenario_folder(tmp_path, crossing)
    with gdmpo.make("atsc", num_envs=1, seed=0, sumocfg=str(cfg)) as env:
        # the agent chooses among the additional file's green phases, not the net file's
        assert env.graph.phases == [CUSTOM_GREENS] and env.graph.programs == ["custom"]
        assert env.graph.green_seconds == [[20.0, 20.0, 20.0]]
        assert env.action_mask.tolist() == [[True, True, True]]
        figures = play(env, 30, action=2)  # the "private" vehicles exist only through types.add.xml
        assert env.max_episode_steps == 60
    assert figures["departed"] > 20


def test_without_the_additional_programme_the_net_files_phases_are_the_agents(tmp_path, crossing):
    cfg = scenario_folder(tmp_path, crossing, root="configuration", additional="types.add.xml")
    with gdmpo.make("atsc", num_envs=1, seed=0, sumocfg=str(cfg)) as env:
        assert env.graph.phases == [NET_GREENS]
        assert play(env, 10)["departed"] > 5


def test_a_gzipped_network_and_outputs_never_written_beside_the_configuration(tmp_path, crossing):
    outputs = ('<output><tripinfo-output value="trips.xml"/><summary-output value="summary.xml"/></output>'
               '<report><log value="sumo.log"/></report>')
    cfg = scenario_folder(tmp_path, crossing, net="cross.net.xml.gz", extra=outputs)
    (tmp_path / "cross.net.xml").unlink()
    assert set(make_scenario(sumocfg=cfg).silenced_outputs) == {"summary-output", "log"}  # tripinfo: gdmpo's own
    with gdmpo.make("atsc", num_envs=1, seed=0, sumocfg=str(cfg)) as env:
        assert env.graph.phases == [CUSTOM_GREENS]
        assert play(env, 6)["departed"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["city.rou.xml", "city.sumocfg", "cross.net.xml.gz",
                                                          "programme.add.xml", "types.add.xml"]


def test_the_configurations_step_length_and_teleport_time_are_honoured(tmp_path, crossing):
    cfg = scenario_folder(tmp_path, crossing, extra='<time><step-length value="0.5"/></time>'
                                                    '<processing><time-to-teleport value="77"/></processing>')
    scenario = make_scenario(sumocfg=cfg)
    assert scenario.sets("step-length") and scenario.sets("time-to-teleport")
    from gdmpo.envs.sumo.atsc import ATSCSimulation

    with gdmpo.make("atsc", num_envs=1, seed=0, sumocfg=str(cfg)) as env:
        spec = env.simulation_spec
        assert play(env, 4)["departed"] > 0
    def teleporting(seconds):  # the spec with the environment's teleport_seconds set to ``seconds``
        return dataclasses.replace(spec, signals=dataclasses.replace(spec.signals, teleport_seconds=seconds))

    simulation = ATSCSimulation.__new__(ATSCSimulation)
    simulation.scenario, simulation.spec = scenario, teleporting(None)
    assert simulation._stepping_args() == []  # neither overridden
    simulation.spec = teleporting(300)
    assert simulation._stepping_args() == ["--time-to-teleport", "300"]  # an explicit option wins
    simulation.scenario = make_scenario(net_file=crossing, route_file=tmp_path / "city.rou.xml")
    simulation.spec = teleporting(None)
    assert simulation._stepping_args() == ["--step-length", "1", "--time-to-teleport", "600"]


def test_a_missing_file_the_configuration_names_is_one_line_naming_both(tmp_path, crossing, capsys):
    cfg = scenario_folder(tmp_path, crossing)
    (tmp_path / "types.add.xml").unlink()
    with pytest.raises(FileNotFoundError, match=r"city.sumocfg: <additional-files> names types.add.xml, which does not exist"):
        read_sumocfg(cfg)
    assert main(["rollout", "atsc", "--policy", "greedy", "--episodes", "1", "--option", f"sumocfg={cfg}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "<additional-files> names types.add.xml" in err[0]


def test_gdmpo_graph_shows_the_programme_sumo_loads(tmp_path, crossing, capsys):
    cfg = scenario_folder(tmp_path, crossing)
    assert main(["graph", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "3 green phases (GGGrrrrrrrrr rrrGGgrrrGGg rrrrrrGGGrrr)" in out


def test_timing_presets_and_their_overrides(crossing):
    from gdmpo.envs.signal_options import resolve_timing

    assert resolve_timing("default", None, None) == (5, 2)
    assert resolve_timing("resco", None, None) == (10, 3)
    assert resolve_timing("resco", 12, None) == (12, 3)
    with pytest.raises(ValueError, match="timing must be one of default, resco, got 'fast'"):
        resolve_timing("fast", None, None)
    with pytest.raises(ValueError, match=r"yellow_seconds must be in \[0, control_interval=10\), got 10"):
        resolve_timing("resco", None, 10)


def test_greedy_serves_the_phase_whose_green_lanes_hold_the_most_vehicles():
    # one crossing, lanes NC, EC, SC, WC (link order); phases: north alone, east-west, south alone.
    # A second light with one phase pads the action space: its padded phases are never chosen.
    links = [(lane, "out") for lane in ("NC_0", "NC_0", "NC_0", "EC_0", "EC_0", "EC_0", "SC_0", "SC_0", "SC_0",
                                         "WC_0", "WC_0", "WC_0")]
    graph = SimpleNamespace(lanes=[["NC_0", "EC_0", "SC_0", "WC_0"], ["x_0"]], links=[links, [("x_0", "y")]],
                            phases=[CUSTOM_GREENS, ["G"]], green_seconds=[[20.0] * 3, [30.0]])
    env = SimpleNamespace(graph=graph, num_envs=2, num_agents=2, obs_dim=8, action_space=gym.spaces.Discrete(3),
                          action_mask=torch.tensor([[True, True, True], [True, False, False]]))
    greedy = GreedyPolicy(env)
    obs = torch.zeros(2, 2, 8)
    obs[0, 0, :4] = torch.tensor([0.4, 0.2, 0.0, 0.6])  # north 0.4; east + west 0.8 (each lane once); south 0
    obs[1, 0, :4] = torch.tensor([1.0, 0.2, 0.0, 0.6])  # north 1.0 beats east + west 0.8
    obs[:, 0, 4:] = 5.0  # trailing features (waiting time, phase) are not read
    obs[:, 1, 0] = 2.0
    assert greedy(obs).tolist() == [[1, 0], [0, 0]]
    obs[0, 0, :4] = torch.tensor([0.4, 0.2, 0.4, 0.2])  # all three score 0.4: a tie goes to the first phase
    assert greedy(obs)[0, 0] == 0


def test_greedy_plays_a_sumo_network_and_beats_holding_one_phase(tmp_path, crossing):
    cfg = scenario_folder(tmp_path, crossing)
    figures = {}
    for name in ("constant:0", "greedy"):
        with gdmpo.make("atsc", num_envs=1, seed=0, sumocfg=str(cfg), timing="resco") as env:
            assert env.control_interval == 10
            policy = reference_policy(env, name)
            obs = env.reset()
            for _ in range(env.max_episode_steps - 1):
                obs, *_ = env.step(policy(obs))
            figures[name] = env.traffic_metrics()[0]
    assert figures["greedy"]["resco_delay"] < figures["constant:0"]["resco_delay"]


def test_resco_delay_from_a_hand_made_tripinfo(tmp_path):
    # three trips (one unfinished, written by --tripinfo-output.write-unfinished) and, known from the
    # demand, one vehicle due at 3500 s that never entered before the window's end at 3600 s
    trips = tmp_path / "tripinfo.xml"
    trips.write_text('<tripinfos>'
                     '<tripinfo id="a" depart="10" departDelay="2" duration="100" timeLoss="18"/>'
                     '<tripinfo id="b" depart="20" departDelay="0" duration="60" timeLoss="10"/>'
                     '<tripinfo id="c" depart="3000" departDelay="5" duration="600" timeLoss="45" vaporized="end"/>'
                     '</tripinfos>')
    total, count = tripinfo_delay(trips)
    assert (total, count) == (80.0, 3)  # (18 + 2) + (10 + 0) + (45 + 5)
    assert resco_delay(total, count, [3600 - 3500]) == pytest.approx((80 + 100) / 4)  # 45 s
    assert resco_delay(0.0, 0, []) == 0.0


def test_resco_delay_charges_the_vehicles_a_starved_entry_never_lets_in(tmp_path, crossing):
    cfg = scenario_folder(tmp_path, crossing, additional="types.add.xml")
    (tmp_path / "city.rou.xml").write_text(ROUTES.replace('vehsPerHour="400"', 'vehsPerHour="1500"'))
    with gdmpo.make("atsc", num_envs=1, seed=0, sumocfg=str(cfg)) as env:
        figures = play(env, 50, action=0)  # north-south only: east and west queue back past their entries
    assert figures["waiting_to_insert"] > 0
    assert figures["resco_delay"] > figures["delay"]
    due = figures["departed"] + figures["waiting_to_insert"]
    assert figures["resco_delay"] * due > figures["delay"] * figures["departed"]


def test_named_scenarios_errors_name_the_fault(monkeypatch):
    with pytest.raises(ValueError, match="unknown scenario 'resco:paris'; the RESCO scenarios are resco:cologne1"):
        resco.lookup("resco:paris")
    monkeypatch.setattr(resco.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r'sumo-rl package, which is not installed: pip install -e "\.\[scenarios\]"'):
        gdmpo.make("atsc", scenario="resco:cologne8")
    with pytest.raises(ValueError, match="give the network as scenario, net_file or sumocfg, not several"):
        gdmpo.make("atsc", scenario="resco:cologne8", net_file="x.net.xml")


@pytest.mark.skipif(not HAS_SUMO_RL, reason="the RESCO scenarios come with sumo-rl (the scenarios extra)")
def test_every_resco_map_is_found_with_resco_s_window():
    for name, known in resco.SCENARIOS.items():
        scenario = make_scenario(sumocfg=resco.sumocfg(f"resco:{name}"))
        assert (scenario.begin, scenario.end) == (known.begin, known.end), name
    assert resco.light_count("resco:cologne8") == 8 and resco.light_count("ingolstadt21") == 21


@pytest.mark.skipif(not HAS_SUMO_RL, reason="the RESCO scenarios come with sumo-rl (the scenarios extra)")
def test_a_resco_map_by_name_plays_and_reports_resco_delay(capsys):
    assert main(["rollout", "atsc", "--policy", "greedy", "--episodes", "1", "--option", "scenario=resco:cologne1",
                 "--option", "timing=resco", "--option", "end=26100", "--json"]) == 0
    import json

    summary = json.loads(capsys.readouterr().out)
    assert summary["traffic"]["departed"] > 100 and summary["traffic"]["resco_delay"] > 0
    assert main(["scenarios"]) == 0
    assert "resco:ingolstadt21" in capsys.readouterr().out


def test_a_scenario_sumo_refuses_is_one_line_in_sumo_s_words(tmp_path, crossing, capsys):
    cfg = scenario_folder(tmp_path, crossing, additional="programme.add.xml")  # the vehicle type is missing
    assert main(["graph", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SUMO could not load" in err[0] and "private" in err[0]


@pytest.mark.parametrize("target,declaration", [
    ("city.rou.xml", '<!DOCTYPE routes SYSTEM "file:///etc/hostname">'),
    ("types.add.xml", '<!DOCTYPE a [<!ENTITY who SYSTEM "file:///etc/hostname">]>'),
    ("city.sumocfg", '<!DOCTYPE c [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'),
    ("cross.net.xml", '<!DOCTYPE net>'),
])
def test_xml_with_doctype_or_entities_never_reaches_sumo(tmp_path, crossing, capsys, target, declaration):
    cfg = scenario_folder(tmp_path, crossing)
    path = tmp_path / target
    text = path.read_text()
    # after a long comment, so a check of the file's head alone would miss it
    path.write_text("<!--" + "x" * (1 << 21) + "-->\n" + declaration + text.split("?>", 1)[-1])
    with pytest.raises(ValueError, match=rf"{target}: this .* declares (DOCTYPE|ENTITY) \(byte 20971"):
        gdmpo.make("atsc", num_envs=1, seed=0, sumocfg=str(cfg))
    assert main(["graph", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "declares" in err and "Traceback" not in err


def _real_cities(monkeypatch):
    return load("real_cities")


def test_episodes_to_greedy_needs_five_in_a_row_at_or_below_it(monkeypatch):
    bench = _real_cities(monkeypatch)
    delays = [30, 20, 20, 20, 20, 15, 15, 15, 15, 15, 30]
    # means of 5 in a row ending at episodes 5..11: 22, 19, 18, 17, 16, 15, 18
    assert bench.first_reach(delays, 16.0) == 9
    assert bench.first_reach(delays, 15.0) == 10
    assert bench.first_reach(delays, 14.9) is None
    assert bench.best_window(delays) == 15.0 and bench.best_window([5.0, 3.0]) == 4.0


def test_the_summary_pools_a_learned_rows_seeds_and_keeps_hand_written_first(monkeypatch, tmp_path):
    bench = _real_cities(monkeypatch)
    figures = dict.fromkeys(bench.FIGURES, 0.0)

    def cell(controller, delays, **extra):
        return {"map": "cologne8", "timing": "resco", "controller": controller,
                "episodes": [{**figures, "resco_delay": d} for d in delays], **extra}

    folder = tmp_path / "runs/cologne8/resco"
    folder.mkdir(parents=True)
    for name, content in {"greedy": cell("greedy", [17.0, 19.0]),
                          "dppo-s0": cell("DPPO, argmax", [10.0, 12.0], trained_on="in place", training_seed=0),
                          "dppo-s1": cell("DPPO, argmax", [14.0, 16.0], trained_on="in place", training_seed=1)}.items():
        (folder / f"{name}.json").write_text(json.dumps(content))
    text = bench.summarise(tmp_path)
    rows = [line for line in text.splitlines() if line.startswith("| cologne8 | resco")]
    assert rows[0].startswith("| cologne8 | resco | greedy | 2 | 18.0 ± 1.0 | 21.9 |")
    # two seeds x two episodes: mean 13, population std sqrt(5)
    assert rows[1].startswith("| cologne8 | resco | DPPO, argmax (in place) | 2 × 2 | 13.0 ± 2.2 |  |")


def test_training_variants_are_named_and_keep_their_own_run_folders(monkeypatch):
    training = load("real_city_training")
    plain = training.jobs_for(["cologne8", "ingolstadt21"], ["dppo"], [0, 1], 360, 1, "out")
    assert [(j["name"], j["seed"]) for j in plain] == [("cologne8-dppo", 0), ("ingolstadt21-dppo", 0),
                                                       ("cologne8-dppo", 1), ("ingolstadt21-dppo", 1)]
    wave = training.jobs_for(["cologne8"], ["dmpo"], [0], 360, 1, "out", {"policy_net.prior_score": "wave"}, "wave")
    assert wave[0]["name"] == "cologne8-dmpo-wave" and wave[0]["config"] == "configs/atsc/dmpo.yaml"
    assert wave[0]["overrides"] == {"policy_net.prior_score": "wave", "env.options.scenario": "resco:cologne8"}


def test_run_folder_names_give_map_algorithm_variant_and_seed(monkeypatch):
    bench = _real_cities(monkeypatch)
    assert bench.run_name(Path("x/cologne8-dppo-s2")) == {"city": "cologne8", "algo": "dppo", "tag": "", "seed": "2"}
    assert bench.run_name(Path("ingolstadt21-dmpo-wave-s0")) == {"city": "ingolstadt21", "algo": "dmpo", "tag": "wave",
                                                               "seed": "0"}
    assert bench.run_name(Path("dppo-s0-20261203")) is None  # not a real_city_training.py run


def test_a_learned_cell_is_played_again_when_its_run_trained_further(monkeypatch, tmp_path):
    bench = _real_cities(monkeypatch)
    path = tmp_path / "dppo-inplace-s0-argmax.json"
    assert not bench.is_current(path, 36000, 4)
    path.write_text(json.dumps({"checkpoint_env_steps": 9720, "episodes": [{}, {}]}))  # an earlier checkpoint
    assert not bench.is_current(path, 36000, 2)
    path.write_text(json.dumps({"checkpoint_env_steps": 36000, "episodes": [{}, {}]}))
    assert bench.is_current(path, 36000, 2) and not bench.is_current(path, 36000, 4)  # too few episodes
    path.write_text(json.dumps({"episodes": [{}] * 4}))  # a cell from before cells recorded their checkpoint
    assert not bench.is_current(path, 36000, 4)


def test_learning_curves_take_each_fine_tuning_from_its_longest_budget(monkeypatch, tmp_path):
    bench = _real_cities(monkeypatch)
    figures = dict.fromkeys(bench.FIGURES, 0.0)
    greedy = tmp_path / "out/runs/cologne8/resco/greedy.json"
    greedy.parent.mkdir(parents=True)
    greedy.write_text(json.dumps({"map": "cologne8", "episodes": [{**figures, "resco_delay": 18.0}] * 2}))

    def run(path: Path, delays: list[float]) -> None:
        path.mkdir(parents=True)
        lines = ["iteration,env_steps,wall_s,episode_resco_delay"]
        lines += [f"{k},{360 * k},{60.0 * k},{d}" for k, d in enumerate(delays, 1)]
        (path / "metrics.csv").write_text("\n".join(lines) + "\n")

    training = tmp_path / "training/runs"
    run(training / "atsc/cologne8-dppo-s0", [25.0] * 6)
    run(training / "finetune/e05/cologne8-dmpo-s0", [19.0] * 5)
    run(training / "finetune/e10/cologne8-dmpo-s0", [19.0] * 5 + [17.0] * 5)  # the e05 run, 5 episodes more
    text = bench.learning_curves(tmp_path / "training", tmp_path / "out")
    rows = [line for line in text.splitlines() if line.startswith("| cologne8")]
    # fine-tuned: episodes 4-8 average (2 x 19 + 3 x 17) / 5 = 17.8 <= greedy's 18, the first such five
    assert rows == ["| cologne8 | dppo | 0 | 6 | 18.0 | not reached | 25.0 | 25.0 | 25.0 | 6 |",
                    "| cologne8 | dmpo fine-tuned | 0 | 10 | 18.0 | 8 | 19.0 | 17.0 | 17.0 | 10 |"]


def test_the_overview_puts_each_learned_row_in_its_column_and_a_generalist_on_its_own_maps_nowhere(monkeypatch):
    bench = _real_cities(monkeypatch)
    loo = "atsc-generalist (11 networks: grid, irregular, spider; cologne1, grid4x4)"
    assert bench.seen_maps(loo) == {"cologne1", "grid4x4"}
    assert bench.seen_maps("atsc-generalist (5 networks: grid, irregular, spider)") == set()
    assert bench.seen_maps(f"{loo}, then 5 episodes here") == {"cologne1", "grid4x4"}

    def row(city, controller, trained_on="", **extra):
        return {"map": city, "timing": "resco", "controller": controller, "trained_on": trained_on,
                "resco_delay": 20.0, "waiting_to_insert": 0.0, "trained_episodes": 100, **extra}

    assert bench.overview_column(row("cologne8", "greedy")) == "greedy"
    assert bench.overview_column(row("cologne8", "DMPO, argmax", "in place")) == "DMPO in place"
    assert bench.overview_column(row("cologne8", "DMPO, sampled", "in place")) is None
    assert bench.overview_column(row("cologne8", "DPPO wave, argmax", "in place")) is None
    assert bench.overview_column(row("cologne8", "DMPO, argmax", loo)) == "DMPO generalist, leave-out"
    assert bench.overview_column(row("grid4x4", "DMPO, argmax", loo)) is None  # trained there: not left out
    assert bench.overview_column(row("cologne8", "DPPO, argmax", "atsc-generalist (5 networks: grid)")) == \
        "DPPO generalist, zero-shot"
    assert bench.overview_column(row("cologne8", "DPPO, argmax", f"{loo}, then 10 episodes here")) == \
        "DPPO fine-tuned 10"
    text = bench.overview([row("cologne8", "greedy", waiting_to_insert=12.0),
                           row("cologne8", "DMPO, argmax", "in place", trained_episodes=41),
                           row("cologne8", "DPPO, argmax", f"{loo}, then 10 episodes here"),
                           row("cologne8", "DPPO, argmax", f"{loo}, then 5 episodes here")])
    header = next(line for line in text.splitlines() if line.startswith("| map"))
    assert header.split(" | ")[4:7] == ["DMPO in place", "DPPO fine-tuned 5", "DPPO fine-tuned 10"]
    line = next(line for line in text.splitlines() if line.startswith("| cologne8"))
    assert "| 20.0 (12 never inserted) |" in line and "| 20.0 (after 41 of 100 episodes) |" in line
