"""Training from a user's folder of screenshots (data=folder): no env, offline metrics, any model."""

import json

import pytest
from omegaconf import open_dict

from lnn.errors import ConfigError
from lnn.training.run import build
from tests.conftest import ROOT, run_cli
from tests.data.test_folder import make_folder

TINY = ["data.batch_size=4", "trainer.max_epochs=2", "+trainer.limit_train_batches=2", "trainer.log_every_n_steps=1"]


def test_data_folder_sets_the_offline_monitor_and_drops_the_env_callbacks(make_cfg, tmp_path):
    cfg = make_cfg("data=folder", f"data.path={make_folder(tmp_path)}")
    assert cfg.callbacks.closed_loop is None and cfg.callbacks.tau_plots is None and cfg.evaluate is None
    assert cfg.callbacks.best.monitor == cfg.optimized_metric == "val/action_acc"
    _, datamodule, _, trainer = build(cfg)
    assert datamodule.env is None and trainer.checkpoint_callbacks[0].monitor == "val/action_acc"
    with open_dict(cfg):  # a callback that acts in an env: refused before any work, naming it
        cfg.callbacks.closed_loop = {"_target_": "lnn.training.closed_loop.ClosedLoopEval"}
    with pytest.raises(ConfigError, match="callbacks.closed_loop"):
        build(cfg)
    with pytest.raises(ConfigError, match="data.path"):
        build(make_cfg("data=folder"))


def test_debug_fast_sets_only_keys_that_apply_to_the_data(make_cfg, tmp_path):
    # debug=fast's recorder keys (episodes_per_task, record_workers, evaluate.parallel) are data=gui/miniwob's
    # (conf/debug_data/fast_<data>.yaml): a folder datamodule does not take them, and a folder has nothing to evaluate
    cfg = make_cfg("data=folder", f"data.path={make_folder(tmp_path)}", "debug=fast")
    assert "record_workers" not in cfg.data and "episodes_per_task" not in cfg.data and cfg.evaluate is None
    assert cfg.data.batch_size == 8 and cfg.trainer.limit_train_batches == 3
    build(cfg)
    gui = make_cfg("debug=fast")
    assert gui.data.record_workers == 1 and gui.data.episodes_per_task.train == 16 and gui.evaluate.parallel == 32
    assert make_cfg("data=miniwob", "debug=fast").data.record_workers == 1
    assert make_cfg().data.record_workers == 2 and make_cfg().data.batch_size == 32  # without debug=fast: untouched


def test_a_bad_line_stops_the_run_before_any_work_with_one_line(tmp_path):
    folder = make_folder(tmp_path)
    lines = (folder / "episodes.jsonl").read_text().splitlines()
    lines[3] = lines[3].replace('"click"', '"hover"')
    (folder / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli(str(ROOT / "train.py"), "data=folder", "data.path=shots", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [(
        f"error: {folder / 'episodes.jsonl'}:4: unknown action 'hover'; use one of click, type, navigate, scroll, key, "
        "done, drag; fix or remove the line")]  # fmt: skip
    assert not (tmp_path / "data_cache").exists() and not list((tmp_path / "logs").glob("runs/*/run.json"))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lite", "lfm2_liquid", "lfm2_hybrid"])
def test_a_model_trains_from_a_folder(tmp_path, model):
    make_folder(tmp_path, episodes=8)
    result = run_cli(str(ROOT / "train.py"), f"model={model}", "data=folder", "data.path=shots", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "runs").iterdir()
    results = json.loads((run / "results.json").read_text())
    assert results["global_step"] == 4 and results["monitor"] == "val/action_acc" and (run / "checkpoints/best.ckpt").exists()
    assert 0 <= results["val/action_acc"] <= 1 and results["val/click_dist"] >= 0
    assert not (run / "eval").exists() and not any(k.startswith(("val/success", "test/")) for k in results)  # no fake success


@pytest.mark.slow
def test_debug_fast_trains_from_a_folder(tmp_path):
    make_folder(tmp_path, episodes=40)
    result = run_cli(str(ROOT / "train.py"), "data=folder", "data.path=shots", "debug=fast", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "runs").iterdir()
    results = json.loads((run / "results.json").read_text())
    assert results["global_step"] == 6 and (run / "checkpoints/last.ckpt").exists()  # 2 epochs x 3 batches of 8
