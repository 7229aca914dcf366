"""Bad config values stop the run before any work, with one line naming the key and the fix."""

import pytest

from lnn.errors import ConfigError
from lnn.training.run import build
from tests.conftest import ROOT, run_cli


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.tau_min=0", "model.tau_min"),
        ("model.tau_min=-1", "model.tau_min"),
        ("model.tau_max=0.5", "model.tau_max"),
        ("model.solver=heun", "model.solver"),
        ("model.unfolds=0", "model.unfolds"),
        ("model.rtol=0", "model.rtol"),  # with solver=dopri5 below
        ("model.atol=-1", "model.atol"),
        ("data.tasks=[click-colour]", "data.tasks"),
        ("model.image_size=24", "model.image_size"),
        ("model.hidden_size=0", "model.hidden_size"),
        ("model.num_layers=0", "model.num_layers"),
        ("model.channels=[32,0,128]", "model.channels[1]"),
        ("data.episodes_per_task.train=0", "data.episodes_per_task.train"),
        ("evaluate.episodes_per_task=0", "evaluate.episodes_per_task"),
        ("data.oversample={memory: 0}", "data.oversample.memory"),
        ("model.map_memory=-1", "model.map_memory"),
        ("model.feedback=maybe", "model.feedback"),
        ("model.instruction_box=[50,0,0,160]", "model.instruction_box"),
    ],
)
def test_bad_value_names_its_key(make_cfg, tmp_path, override, key):
    extra = ["solver=dopri5"] if key in ("model.rtol", "model.atol") else []
    cfg = make_cfg(*extra, override)
    with pytest.raises(ConfigError) as info:
        build(cfg)
    assert info.value.key.split("=")[0] == key
    assert not (tmp_path / "data").exists()  # stopped before recording anything


def test_every_option_of_every_group_builds(make_cfg):
    for overrides in (["model=lite_ff"], ["solver=dopri5"], ["solver=semi_implicit"], ["logger=tensorboard"],
                      ["logger=wandb"], ["trainer=cpu"], ["debug=fast"], ["experiment=memory_ablation"],
                      ["experiment=miniwob_single_click"], ["experiment=miniwob_pix2act59"]):  # fmt: skip
        build(make_cfg(*overrides))


def test_the_pixels_only_experiment_is_the_single_click_one_without_text(make_cfg):
    # Pix2Act's setting in one switch: no utterance as text, so nothing named to match on the screen
    text, pixels = make_cfg("experiment=miniwob_single_click"), make_cfg("experiment=miniwob_single_click_pixels")
    model, *_ = build(pixels)
    assert pixels.model.instruction == "pixels" and model.text_match is None
    assert text.model.instruction == "text" and text.model.match_text
    assert pixels.data == text.data and pixels.trainer == text.trainer  # the same episodes, the same schedule


def test_the_light_experiment_is_the_single_click_one_with_a_lighter_model(make_cfg):
    full, light = make_cfg("experiment=miniwob_single_click"), make_cfg("experiment=miniwob_single_click_light")
    model, *_ = build(light)
    assert model.text_match.stride == (4, 4) and [layer.out_channels for layer in model.cnn[::2]] == [24, 48, 96]
    assert light.data == full.data and light.trainer == full.trainer  # the same episodes, the same schedule
    lighter = ("channels", "match_stride", "describe")  # describe: the light run's figures were measured without it
    assert {k: v for k, v in light.model.items() if k not in lighter} == \
        {k: v for k, v in full.model.items() if k not in lighter}  # fmt: skip


def test_the_fast_experiment_is_the_single_click_one_with_a_narrower_cnn_a_cheaper_match_and_word_scores(make_cfg):
    full, fast = make_cfg("experiment=miniwob_single_click"), make_cfg("experiment=miniwob_single_click_fast")
    model, *_ = build(fast)
    assert model.text_match.stride == (4, 2) and model.text_match.features[0].out_channels == 4
    assert [layer.out_channels for layer in model.cnn[::2]] == [24, 48, 96] and model.describe
    assert model.click_scorer.direct_query is not None  # word_scores
    assert fast.data == full.data and fast.trainer == full.trainer  # the same episodes, the same schedule
    lighter = ("channels", "match_stride", "match_channels", "word_scores")
    assert {k: v for k, v in fast.model.items() if k not in lighter} == \
        {k: v for k, v in full.model.items() if k not in lighter}  # fmt: skip


def test_cli_prints_one_line_and_exits_2(tmp_path):
    result = run_cli(str(ROOT / "train.py"), "model.tau_min=-1", "solver=euler", cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model.tau_min=-1") and "tau_min=0.5" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "data_cache").exists()


def test_groups_and_experiments_override_the_keys_of_train_yaml(make_cfg):
    # train.yaml's own keys come first in its defaults list, so an experiment's or debug's values win
    assert make_cfg("experiment=memory_ablation").task_name == "memory_ablation"
    assert make_cfg("debug=fast").evaluate.parallel == 32
    assert make_cfg().task_name == "train" and make_cfg().evaluate.parallel == 64


def test_core_group_sets_the_core_and_ltc_its_solver(make_cfg):
    from hydra.errors import MissingConfigException

    for core in ("liquid", "cfc", "ltc", "lstm", "gru", "feedforward"):
        cfg = make_cfg(f"core={core}")
        assert cfg.model.core == core
        assert cfg.model.solver == ("semi_implicit" if core == "ltc" else "rk4")  # LTC refuses rk4
        build(cfg)
    assert make_cfg("core=ltc", "solver=euler").model.solver == "euler"  # the command line still wins
    assert make_cfg("model.core=gru").model.core == "gru"
    with pytest.raises(MissingConfigException, match="core/lstmm"):  # Hydra's error lists the options
        make_cfg("core=lstmm")
    cfg = make_cfg("experiment=core_comparison")
    assert cfg.task_name == "core_comparison" and cfg.data.tasks is None


def test_oversample_is_set_from_the_command_line_as_the_readme_says(make_cfg):
    """`data.oversample={memory: 2}` (README): a dict on the command line, not refused as an unknown key."""
    _, datamodule, _, _ = build(make_cfg("data.oversample={memory: 2}"))
    assert set(datamodule.oversample.values()) == {2} and "remember-target" in datamodule.oversample
