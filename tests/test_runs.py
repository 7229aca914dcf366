"""lnn.runs: checkpoints carry their model spec, so a lone .ckpt loads; older ones load through config.yaml."""

import shutil
from functools import partial

import pytest
import torch
from omegaconf import OmegaConf

from lnn.errors import ConfigError
from lnn.models import VisionLNNLite
from lnn.runs import SPEC, find_checkpoint, load_policy
from lnn.training.module import PolicyModule
from tests.agent.helpers import TINY, fake_run


def outputs(model):
    torch.manual_seed(1)
    image, tokens = torch.rand(2, 3, 32, 32), model.tokenize(["click-color"] * 2, ["Click the red square"] * 2)
    return model.step(image, tokens, model.initial_state(2))


def with_spec(run_dir, model):
    """Add the spec to the run's best.ckpt as training does (PolicyModule.on_save_checkpoint)."""
    path = run_dir / "checkpoints" / "best.ckpt"
    ckpt = torch.load(path, weights_only=False)
    PolicyModule(model, partial(torch.optim.AdamW)).on_save_checkpoint(ckpt)
    torch.save(ckpt, path)
    return path


def test_a_lone_checkpoint_loads_from_its_spec(tmp_path):
    run_dir, model = fake_run(tmp_path)
    lone = tmp_path / "elsewhere" / "best.ckpt"
    lone.parent.mkdir()
    shutil.copy(with_spec(run_dir, model), lone)
    assert torch.load(lone, weights_only=True)[SPEC]["class"] == "lnn.models.lite.VisionLNNLite"  # plain values only
    loaded = load_policy(lone)
    assert not loaded.training and loaded.lnn_checkpoint.config is None
    expected, got = outputs(model), outputs(loaded)
    for key in ("action_logits", "coords"):
        torch.testing.assert_close(got[key], expected[key])


def test_the_spec_wins_over_a_config_that_changed(tmp_path):
    run_dir, model = fake_run(tmp_path)
    with_spec(run_dir, model)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    cfg.model.hidden_size = 48  # would not fit the weights
    OmegaConf.save(cfg, run_dir / "config.yaml")
    torch.testing.assert_close(outputs(load_policy(run_dir))["coords"], outputs(model)["coords"])


def test_an_old_checkpoint_loads_through_its_runs_config(tmp_path):
    run_dir, model = fake_run(tmp_path)  # no spec in its checkpoint
    assert SPEC not in torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=False)
    torch.testing.assert_close(outputs(load_policy(run_dir))["coords"], outputs(model)["coords"])


def test_a_checkpoint_with_neither_spec_nor_config_is_one_line(tmp_path):
    run_dir, _ = fake_run(tmp_path)
    (run_dir / "config.yaml").unlink()
    with pytest.raises(ConfigError, match="carries no model spec") as e:
        find_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    assert "\n" not in str(e.value)


def test_the_spec_holds_plain_values_whatever_built_the_model():
    model = VisionLNNLite(**(TINY | {"channels": OmegaConf.create([8, 8, 8])}))  # as Hydra passes lists
    assert model.spec == {"class": "lnn.models.lite.VisionLNNLite", "kwargs": model.spec["kwargs"]}
    assert model.spec["kwargs"]["channels"] == [8, 8, 8] and type(model.spec["kwargs"]["channels"]) is list
    assert model.spec["kwargs"]["tau_max"] == 10.0  # defaults are recorded too


def test_a_policy_names_its_liquid_cells_and_changes_solver_on_a_copy():
    model = VisionLNNLite(**TINY)
    cells = model.liquid_cells()
    assert len(cells) == TINY["num_layers"] and cells[0] is model.core.layers[0].cell
    other = model.with_solver("midpoint", 3)
    assert [(c.solver, c.unfolds) for c in other.liquid_cells()] == [("midpoint", 3)] * 2
    assert (cells[0].solver, cells[0].unfolds) == ("euler", 1)  # the original is untouched
    assert VisionLNNLite(**(TINY | {"core": "feedforward"})).liquid_cells() == []


def test_an_lfm2_policy_is_rebuilt_from_its_spec():
    pytest.importorskip("transformers")
    from lnn.models import LFM2Hybrid
    from lnn.runs import build_model

    model = LFM2Hybrid(liquid_layers=[0], liquid_size=8, solver="euler")
    assert model.spec["class"] == "lnn.models.lfm2.policy.LFM2Hybrid" and model.spec["kwargs"]["liquid_layers"] == [0]
    rebuilt = build_model(model.spec, "test")
    assert type(rebuilt) is LFM2Hybrid and rebuilt.state_dict().keys() == model.state_dict().keys()
    assert [c.solver for c in rebuilt.liquid_cells()] == ["euler"]
