"""Sweep grids: splitting at top-level commas, expansion order, errors that name the argument,
and the plan every algorithm of the CLI's table gets (no per-algorithm code)."""

from __future__ import annotations

import itertools

import pytest
import yaml

from mbrl import cli
from mbrl.sweep import AlgorithmRef, SweepError, plan_sweep, read_plan
from mbrl.sweep.grid import SweepSyntaxError, expand_grid, parse_grid, point_slug, split_values


@pytest.mark.parametrize(
    ("arg", "key", "values"),
    [
        ("seed=0,1,2", "seed", ["0", "1", "2"]),
        ("planner=cem", "planner", ["cem"]),
        ("planner.obs_cost_weights=[1,2]", "planner.obs_cost_weights", ["[1,2]"]),
        ("planner.obs_cost_weights=[1,2],[3, 4]", "planner.obs_cost_weights", ["[1,2]", "[3, 4]"]),
        ("w=[[1,2],[3]],[4]", "w", ["[[1,2],[3]]", "[4]"]),
        ("m={a: 1, b: 2},{a: 3}", "m", ["{a: 1, b: 2}", "{a: 3}"]),
        ("name=\"a,b\",'c,d',e", "name", ['"a,b"', "'c,d'", "e"]),
        (" lr = 1e-3, 3e-4 ", "lr", ["1e-3", "3e-4"]),
        ("x=", "x", [""]),
    ],
)
def test_split_values_keeps_brackets_and_quotes_whole(arg, key, values):
    assert split_values(arg) == (key, values)


@pytest.mark.parametrize(
    ("arg", "why"),
    [
        ("seed", "expected KEY=VALUE"),
        ("=1,2", "empty key"),
        ("planner..horizon=1,2", "empty key"),
        ("w=[1,2", "unclosed '\\['"),
        ("w=1,2]", "unbalanced '\\]'"),
        ("w=[1,2)", "unbalanced '\\)'"),
        ("name='a,b", "unterminated ' quote"),
        ("seed=0,,1", "empty value"),
        ("seed=0,", "empty value"),
    ],
)
def test_bad_syntax_names_the_argument(arg, why):
    with pytest.raises(SweepSyntaxError, match=why) as info:
        split_values(arg)
    assert repr(arg) in str(info.value)


def test_parse_grid_axes_fixed_and_errors():
    grid = parse_grid(["seed=0,1", "num_trials=3", "planner=cem,icem,mppi", "w=[1,2]"])
    assert grid.axes == (("seed", ("0", "1")), ("planner", ("cem", "icem", "mppi")))
    assert grid.fixed == ("num_trials=3", "w=[1,2]") and len(grid) == 6
    with pytest.raises(SweepSyntaxError, match="'seed=2'.*given twice"):
        parse_grid(["seed=0,1", "seed=2"])
    with pytest.raises(SweepSyntaxError, match="'run_root=a,b'.*sets 'run_root' itself"):
        parse_grid(["run_root=a,b"], reserved=("run_root",))
    with pytest.raises(SweepSyntaxError, match="'seed=1,1'.*repeated"):
        parse_grid(["seed=1,1"])
    with pytest.raises(TypeError, match="one string"):
        parse_grid("seed=0,1")


def test_expand_grid_is_the_product_last_axis_fastest():
    grid = parse_grid(["a=1,2", "b=x,y,z", "c=[1,2],[3]"])
    points = expand_grid(grid)
    expected = [
        {"a": a, "b": b, "c": c}
        for a in ("1", "2")
        for b in ("x", "y", "z")
        for c in ("[1,2]", "[3]")
    ]
    assert points == expected and len(points) == len(grid) == 12
    assert expand_grid(parse_grid(["seed=3"])) == [{}]
    assert len({point_slug(p) for p in points}) == 12
    assert all("/" not in point_slug(p) and "," not in point_slug(p) for p in points)


def _ref(name: str) -> AlgorithmRef:
    algo = cli.ALGORITHMS[name]
    return AlgorithmRef(name, algo.module, algo.config, algo.runner)


@pytest.mark.parametrize("name", list(cli.ALGORITHMS))
def test_every_algorithm_in_the_table_plans_a_sweep(tmp_path, name):
    """The sweep goes through the CLI's table: each trial's config is the algorithm's own,
    with the point's values, its run directory in the sweep folder and no progress bar."""
    sweep_dir, plan = plan_sweep(
        _ref(name),
        None,
        ["task=inverted-pendulum"],
        ["seed=0,1", "device=cpu"],
        run_root=tmp_path,
        name="s",
    )
    assert sweep_dir == (tmp_path / "s").resolve() and read_plan(sweep_dir) == plan
    assert [t.config["seed"] for t in plan.trials] == [0, 1]
    assert [t.point for t in plan.trials] == [{"seed": "0"}, {"seed": "1"}]
    for t in plan.trials:
        assert t.config["run_root"] == str(sweep_dir) and t.config["run_name"] == t.name
        assert t.config["progress"] is False and t.config["task"] == "inverted-pendulum"
    # the config is complete: it loads back into the algorithm's config class
    config_cls, _ = cli.ALGORITHMS[name].load()
    from mbrl.util.config import config_from_dict

    assert config_from_dict(config_cls, plan.trials[1].config).seed == 1


def test_plan_parses_bracket_values_as_lists(tmp_path):
    _, plan = plan_sweep(
        _ref("pets"),
        None,
        ["task=pendulum-swingup"],
        ["planner.obs_cost_weights=[1,2],[3,0.5]", "planner=cem,mppi"],
        run_root=tmp_path,
        name="s",
    )
    got = [
        (t.config["planner"]["obs_cost_weights"], t.config["planner"]["name"]) for t in plan.trials
    ]
    expected = list(itertools.product([[1.0, 2.0], [3.0, 0.5]], ["cem", "mppi"]))
    assert got == [(list(w), p) for w, p in expected]


def test_bad_config_stops_the_sweep_before_any_folder(tmp_path):
    with pytest.raises(SweepError, match=r"trial 1 \(seed=-1\): .*seed"):
        plan_sweep(_ref("pets"), None, [], ["seed=0,-1"], run_root=tmp_path, name="s")
    with pytest.raises(SweepError, match="unknown config key 'planner.horizn'"):
        plan_sweep(_ref("pets"), None, [], ["planner.horizn=3,4"], run_root=tmp_path, name="s")
    with pytest.raises(SweepError, match="'w=\\[1,2'"):
        plan_sweep(_ref("pets"), None, [], ["w=[1,2"], run_root=tmp_path, name="s")
    assert not (tmp_path / "s").exists()


def test_same_name_resumes_the_same_plan_and_refuses_another(tmp_path):
    first, plan = plan_sweep(_ref("pets"), None, [], ["seed=0,1"], run_root=tmp_path, name="s")
    again, _ = plan_sweep(_ref("pets"), None, [], ["seed=0,1"], run_root=tmp_path, name="s")
    assert again == first
    with pytest.raises(SweepError, match="holds a different sweep.*--resume"):
        plan_sweep(_ref("pets"), None, [], ["seed=0,2"], run_root=tmp_path, name="s")
    assert yaml.safe_load((first / "sweep.yaml").read_text())["format_version"] == 1
    assert read_plan(first) == plan


def test_cli_usage_errors_exit_2_without_a_folder(tmp_path, capsys, monkeypatch):
    root = tmp_path / "runs"
    base = ["sweep", "--backend", "local", "--run-root", str(root)]
    assert cli.main([*base, "pets", "seed=0,,1"]) == 2
    assert "'seed=0,,1'" in capsys.readouterr().err
    assert cli.main([*base, "nope", "seed=0,1"]) == 2
    assert "algorithm: expected one of pets" in capsys.readouterr().err
    assert cli.main([*base, "pets", "run_name=a,b"]) == 2
    assert "sets 'run_name' itself" in capsys.readouterr().err
    assert cli.main([*base, "--resume", str(tmp_path)]) == 2
    assert "not a sweep folder" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if Ray were not installed
    assert cli.main(["sweep", "--run-root", str(root), "pets", "seed=0,1"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'mbrl-toolkit[distributed]'" in err and "--backend local" in err
    assert not root.exists()


def test_cli_dry_run_lists_the_trials_and_writes_nothing(tmp_path, capsys):
    argv = ["sweep", "pets", "--task", "cartpole-swingup", "seed=0,1,2", "planner=cem,icem,mppi"]
    with pytest.warns(UserWarning, match="'mppi' does not read") as caught:
        assert cli.main([*argv, "--run-root", str(tmp_path), "--dry-run"]) == 0
    assert len(caught) == 1  # once, not once per trial
    out = capsys.readouterr().out
    assert (
        out.startswith("9 trial(s) in ") and "t008-seed=2_planner=mppi: seed=2 planner=mppi" in out
    )
    assert list(tmp_path.iterdir()) == []


def test_parallelism_shares_the_cores():
    from mbrl.sweep.driver import resolve_parallelism

    assert resolve_parallelism(16, 9, None, None) == (9, 1)
    assert resolve_parallelism(16, 4, None, None) == (4, 4)
    assert resolve_parallelism(16, 40, None, None) == (16, 1)
    assert resolve_parallelism(16, 40, None, 4) == (4, 4)
    assert resolve_parallelism(16, 40, 2, None) == (2, 8)
    assert resolve_parallelism(2, 1, None, None) == (1, 2)
    assert resolve_parallelism(2, 5, None, 8) == (1, 8)  # asked for more threads than cores


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend": "slurm"}, "backend: expected one of ray, local"),
        ({"max_concurrent": 0}, "max_concurrent: expected an int >= 1"),
        ({"threads_per_trial": 1.5}, "threads_per_trial: expected an int >= 1"),
        ({"gpus_per_trial": -1}, "gpus_per_trial"),
        ({"backend": "local", "address": "auto"}, "address: only the ray back end"),
        ({"backend": "local", "max_concurrent": 2}, "one trial at a time"),
    ],
)
def test_bad_options_name_the_option(kwargs, match):
    from mbrl.sweep import SweepOptions

    with pytest.raises(SweepError, match=match):
        SweepOptions(**kwargs)
