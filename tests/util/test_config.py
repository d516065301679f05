"""Tests of mbrl.util.config: defaults, YAML presets, typed dotted overrides, saving."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
import yaml

from mbrl.util import config as config_mod
from mbrl.util.config import (
    ConfigError,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_overrides,
    preset_path,
    save_config,
)


@dataclass
class PlannerCfg:
    horizon: int = 15
    alpha: float = 0.1
    kind: Literal["cem", "icem", "mppi"] = "cem"


@dataclass
class ModelCfg:
    hidden: tuple[int, ...] = (200, 200)
    ensemble: int = 5
    lr: float = 1e-3


@dataclass(frozen=True)
class Cfg:
    seed: int = 0
    name: str = "run"
    use_tb: bool = True
    device: Optional[str] = None  # noqa: UP045  (checks typing.Optional support)
    max_steps: int | None = None
    gamma: float = 0.99
    bounds: tuple[float, float] = (-1.0, 1.0)
    layers: list[int] = field(default_factory=lambda: [1, 2])
    root: Path = Path("runs")
    extra: dict[str, Any] = field(default_factory=dict)
    planner: PlannerCfg = field(default_factory=lambda: PlannerCfg(horizon=30))
    model: ModelCfg = field(default_factory=ModelCfg)


@dataclass
class Required:
    x: int
    y: float = 2.0


def test_defaults():
    cfg = load_config(Cfg)
    assert cfg == Cfg()
    assert cfg.planner.horizon == 30  # default_factory values are the base, not PlannerCfg()


@pytest.mark.parametrize(
    ("override", "attr", "expected"),
    [
        ("seed=3", ("seed",), 3),
        ("seed=1e3", ("seed",), 1000),
        ("gamma=0.5", ("gamma",), 0.5),
        ("gamma=1", ("gamma",), 1.0),
        ("gamma=3e-4", ("gamma",), 3e-4),
        ("use_tb=false", ("use_tb",), False),
        ("use_tb=True", ("use_tb",), True),
        ("name=pets-cartpole", ("name",), "pets-cartpole"),
        ("name=123", ("name",), "123"),
        ("device=cuda:0", ("device",), "cuda:0"),
        ("device=null", ("device",), None),
        ("max_steps=7", ("max_steps",), 7),
        ("max_steps=", ("max_steps",), None),
        ("bounds=[-2, 2.5]", ("bounds",), (-2.0, 2.5)),
        ("layers=[3,4,5]", ("layers",), [3, 4, 5]),
        ("root=/tmp/x", ("root",), Path("/tmp/x")),
        ("extra.k=1", ("extra",), {"k": 1}),
        ("planner.horizon=20", ("planner", "horizon"), 20),
        ("planner.kind=mppi", ("planner", "kind"), "mppi"),
        ("model.hidden=[64, 64, 64]", ("model", "hidden"), (64, 64, 64)),
        ("planner={horizon: 5}", ("planner", "horizon"), 5),
    ],
)
def test_override_types(override, attr, expected):
    cfg = load_config(Cfg, overrides=[override])
    value = cfg
    for a in attr:
        value = getattr(value, a)
    assert value == expected
    assert type(value) is type(expected)


def test_partial_nested_override_keeps_other_fields():
    cfg = load_config(Cfg, overrides=["planner.alpha=0.5"])
    assert cfg.planner == PlannerCfg(horizon=30, alpha=0.5, kind="cem")
    assert cfg.model == ModelCfg()


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("seed=3.5", "'seed': expected an int"),
        ("seed=abc", "'seed': expected an int"),
        ("seed=true", "'seed': expected an int, got bool"),
        ("gamma=fast", "'gamma': expected a float"),
        ("use_tb=1", "'use_tb': expected a bool"),
        ("use_tb=yesplease", "'use_tb': expected a bool"),
        ("planner.kind=foo", "'planner.kind': expected one of 'cem', 'icem', 'mppi'"),
        ("bounds=[1, 2, 3]", "'bounds': expected 2 items"),
        ("bounds=1", "'bounds': expected a list"),
        ("model.hidden=[1, x]", r"'model.hidden\[1\]': expected an int"),
        ("name=[1]", "'name': expected a string"),
        ("name", "expected 'key=value'"),
        ("=3", "empty key"),
        ("planner..horizon=3", "empty key"),
        ("seed=[1, 2", "not valid YAML"),
        ("planner=3", "'planner': expected a mapping"),
        ("seed.x=3", "'seed' is not a nested config"),
    ],
)
def test_override_errors(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(Cfg, overrides=[override])


def test_misspelt_override_lists_valid_keys():
    with pytest.raises(ConfigError) as info:
        load_config(Cfg, overrides=["planner.horizn=20"])
    msg = str(info.value)
    assert "planner.horizn" in msg and "did you mean 'horizon'" in msg
    assert "valid keys at planner (PlannerCfg): horizon, alpha, kind" in msg
    with pytest.raises(ConfigError) as info:
        load_config(Cfg, overrides=["sed=1"])
    msg = str(info.value)
    assert "valid keys at top level: seed, name, use_tb, device" in msg


def test_misspelt_yaml_key_lists_valid_keys(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("seed: 1\nmodel:\n  ensembel: 7\n")
    with pytest.raises(ConfigError) as info:
        load_config(Cfg, p)
    msg = str(info.value)
    assert "bad.yaml" in msg and "'model.ensembel'" in msg
    assert "valid keys at model (ModelCfg): hidden, ensemble, lr" in msg


def test_preset_then_overrides_precedence(tmp_path):
    p = tmp_path / "preset.yaml"
    p.write_text(
        "seed: 7\nname: from-yaml\nplanner:\n  horizon: 25\n  kind: icem\nmodel:\n  lr: 3.0e-4\n"
    )
    cfg = load_config(Cfg, p)
    assert (cfg.seed, cfg.name, cfg.planner.horizon, cfg.planner.kind) == (
        7,
        "from-yaml",
        25,
        "icem",
    )
    assert cfg.planner.alpha == 0.1  # untouched by the preset: default
    assert cfg.model.lr == 3e-4 and cfg.model.hidden == (200, 200)
    cfg = load_config(Cfg, p, ["planner.horizon=40", "seed=1", "seed=2"])
    assert cfg.planner.horizon == 40 and cfg.planner.kind == "icem"  # override wins, rest kept
    assert cfg.seed == 2  # later override wins
    assert cfg.name == "from-yaml"


def test_preset_type_errors(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("seed: [1, 2]\n")
    with pytest.raises(ConfigError, match="'seed': expected an int"):
        load_config(Cfg, p)
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping at top level"):
        load_config(Cfg, p)
    p.write_text("seed: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Cfg, p)
    p.write_text("")
    assert load_config(Cfg, p) == Cfg()


def test_preset_path_resolution(tmp_path, monkeypatch):
    monkeypatch.setattr(config_mod, "CONFIG_DIR", tmp_path)
    (tmp_path / "pets_toy.yaml").write_text("seed: 11\n")
    assert preset_path("pets_toy") == tmp_path / "pets_toy.yaml"
    assert load_config(Cfg, "pets_toy").seed == 11
    assert preset_path(tmp_path / "pets_toy.yaml") == tmp_path / "pets_toy.yaml"
    assert preset_path(str(tmp_path / "pets_toy.yaml")) == tmp_path / "pets_toy.yaml"
    with pytest.raises(FileNotFoundError, match="available presets: pets_toy"):
        preset_path("pets_tyo")
    with pytest.raises(FileNotFoundError, match="no such file"):
        preset_path(tmp_path / "missing.yaml")


def test_packaged_presets_dir_exists():
    assert config_mod.CONFIG_DIR == Path(config_mod.__file__).resolve().parent.parent / "configs"


def test_required_field():
    assert config_from_dict(Required, {"x": 1}) == Required(1, 2.0)
    with pytest.raises(ConfigError, match="'x' is required"):
        load_config(Required)
    assert load_config(Required, overrides=["x=4"]) == Required(4, 2.0)


def test_parse_overrides():
    assert parse_overrides(["a.b=1", "c=[1, 2]", "d=x=y"]) == [
        ("a.b", 1),
        ("c", [1, 2]),
        ("d", "x=y"),
    ]
    with pytest.raises(TypeError, match="overrides"):
        load_config(Cfg, overrides="seed=1")


def test_not_a_dataclass():
    with pytest.raises(TypeError, match="cls: expected a dataclass type"):
        load_config(dict)
    with pytest.raises(TypeError, match="cls: expected a dataclass type"):
        load_config(Cfg())


def test_save_and_reload_roundtrip(tmp_path):
    cfg = load_config(
        Cfg,
        overrides=["seed=5", "planner.kind=mppi", "bounds=[0, 3]", "device=cpu", "extra.a=[1]"],
    )
    path = save_config(cfg, tmp_path / "sub" / "config.yaml")
    data = yaml.safe_load(path.read_text())
    assert data["planner"] == {"horizon": 30, "alpha": 0.1, "kind": "mppi"}
    assert data["bounds"] == [0.0, 3.0] and data["root"] == "runs"
    assert load_config(Cfg, path) == cfg
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp files left


def test_config_to_dict():
    d = config_to_dict(Cfg())
    assert d["model"] == {"hidden": [200, 200], "ensemble": 5, "lr": 1e-3}
    assert config_to_dict({"a": (1, Path("x"))}) == {"a": [1, "x"]}
    assert dataclasses.is_dataclass(Cfg) and yaml.safe_dump(d)
    with pytest.raises(TypeError, match="cannot be saved"):
        config_to_dict({"f": object()})


@dataclass
class NamedPlanner:
    name: str = "cem"
    horizon: int = 15


@dataclass
class WithNamed:
    planner: NamedPlanner = field(default_factory=NamedPlanner)
    model: ModelCfg = field(default_factory=ModelCfg)


def test_string_for_named_nested_config_sets_its_name():
    cfg = load_config(WithNamed, overrides=["planner=icem", "planner.horizon=30"])
    assert cfg.planner == NamedPlanner(name="icem", horizon=30)
    # the packaged PETS config: `planner=mppi` as in `mbrl pets --task ... planner=mppi`
    from mbrl.algorithms.pets import load_pets_config

    with pytest.warns(config_mod.ConfigWarning, match="num_elites"):
        cfg = load_pets_config("cartpole-swingup", overrides=["planner=mppi"])
    assert cfg.planner.name == "mppi"
    # a nested config without a name field still needs a mapping
    with pytest.raises(ConfigError, match="'model': expected a mapping"):
        load_config(WithNamed, overrides=["model=big"])


def test_yaml_alias_bombs_are_refused(tmp_path):
    """A "billion laughs" preset is rejected before anything is expanded."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    lines += ["planner:", "  name: cem", "  obs_cost_weights: *a9"]  # 9**10 items if expanded
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 2048
    from mbrl.algorithms.pets import PETSConfig
    from mbrl.util.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="bomb.yaml.*more than 20 YAML aliases"):
        load_config(PETSConfig, path)


def test_oversized_presets_are_refused(tmp_path):
    from mbrl.algorithms.pets import PETSConfig
    from mbrl.util.config import MAX_PRESET_BYTES, ConfigError, load_config

    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_PRESET_BYTES + "\n")
    with pytest.raises(ConfigError, match="big.yaml.*larger than"):
        load_config(PETSConfig, path)


def test_default_of_reads_the_signature():
    from mbrl.util.config import default_of

    def f(a, b=3, *, c="x"):
        return a, b, c

    assert default_of(f, "b") == 3 and default_of(f, "c") == "x"
    with pytest.raises(TypeError, match="no default"):
        default_of(f, "a")
    with pytest.raises(TypeError, match="no parameter 'd'"):
        default_of(f, "d")
