import pickle

import pytest
import torch

from gdmpo import config as cfg
from gdmpo.config import ConfigError


def write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_every_shipped_config_loads_and_names_its_folder_and_algorithm():
    from pathlib import Path

    paths = sorted(Path("configs").glob("*/*.yaml"))
    assert len(paths) >= 5 * 5
    for path in paths:
        config = cfg.load(path)
        assert config.env.id == path.parent.name, path
        assert config.algo == path.stem.split("-")[0], path  # dmpo-paper.yaml is a dmpo config


def test_shipped_configs_load():
    for name in ("cacc-catchup/dppo", "cacc-catchup/cppo", "cacc-slowdown/dppo", "cacc-slowdown/cppo"):
        config = cfg.load(f"configs/{name}.yaml")
        assert config.env.id == "cacc-" + name.split("/")[0].split("-")[1]
        assert config.ppo.value_hops == 2 and config.ppo.policy_hops == 1


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "ppo:\n  lr_polcy: 0.1\n")
    with pytest.raises(ConfigError, match=r"run.yaml: unknown key ppo.'lr_polcy'"):
        cfg.load(path)


@pytest.mark.parametrize("text,message", [
    ("ppo:\n  epochs: many\n", "ppo.epochs must be int"),
    ("algo: ppo2\n", "algo must be one of 'dppo', 'cppo'"),
    ("policy_net:\n  hidden: [64, x]\n", r"policy_net.hidden\[1\] must be int"),
    ("ppo:\n  target_kl: yes\n", "ppo.target_kl must be float or null"),
    ("env: 3\n", "env must be a mapping"),
    ("- 1\n- 2\n", "top level must be a mapping"),
    ("ppo: {epochs: [\n", "not valid YAML"),
    ("device: gpu\n", "device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 'gpu'"),
    ("device: mps\n", "device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 'mps'"),
])
def test_type_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        cfg.load(write(tmp_path, text))


def test_overrides_and_round_trip(tmp_path):
    path = write(tmp_path, "ppo:\n  lr_policy: 0.001\n  lr_value: 3e-4\n")  # YAML reads 3e-4 as a string
    config = cfg.load(path, {"ppo.epochs": 3, "env.options.start": "nominal", "seed": 7})
    assert config.ppo.lr_policy == 0.001 and config.ppo.epochs == 3 and config.seed == 7
    assert config.ppo.lr_value == 3e-4
    assert config.env.options == {"start": "nominal"}
    assert config.ppo.target_kl == 0.0075  # untouched defaults stay
    cfg.save(config, tmp_path / "back.yaml")
    assert cfg.load(tmp_path / "back.yaml") == config
    assert pickle.loads(pickle.dumps(config)) == config
    with pytest.raises(ConfigError, match="'seed' is not a section"):
        cfg.apply_overrides({"seed": 1}, {"seed.x": 2})


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        cfg.load(tmp_path / "absent.yaml")


def test_device_settings_resolve_to_what_this_machine_has():
    from gdmpo.device import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    absent = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, on any machine
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_device(absent)
    assert resolve_device(absent, fallback=True) == torch.device("cpu")  # playing a policy trained elsewhere


def test_retired_knobs_load_when_off_and_are_refused_when_on():
    """Configs saved before lr_anneal, fresh_update, branch_from_newest and eval_episodes were retired load
    unchanged; turning one on names it and says where its measurement is."""
    old = {"algo": "dmpo", "eval_episodes": 0, "ppo": {"lr_anneal": False},
           "dmpo": {"fresh_update": False, "branch_from_newest": None}}
    assert cfg.from_dict(old, "old.yaml").algo == "dmpo"
    assert old["ppo"] == {"lr_anneal": False}  # the caller's dict is not changed
    for key, value in (("ppo.lr_anneal", True), ("dmpo.fresh_update", True), ("dmpo.branch_from_newest", 40),
                       ("eval_episodes", 2)):
        section, _, name = key.rpartition(".")
        data = {"algo": "dmpo", section: {name: value}} if section else {"algo": "dmpo", name: value}
        with pytest.raises(cfg.ConfigError, match=rf"run.yaml: {key} was retired .*paper-variants/README.md"):
            cfg.from_dict(data, "run.yaml")


def test_command_line_values_are_yaml_with_exponent_numbers_as_numbers():
    """One syntax for --set, --grid, --option and the benchmarks' --set (PyYAML alone reads 1e-4 as text)."""
    parsed = [cfg.parse_value(text, "--set k") for text in ("1e-4", "-2.5E3", "3", "0.5", "[64, 64]", "true", "x1e3", "null")]
    assert parsed == [1e-4, -2500.0, 3, 0.5, [64, 64], True, "x1e3", None]
    with pytest.raises(ConfigError, match=r"--set k: '\[1,' is not a YAML value"):
        cfg.parse_value("[1,", "--set k")
