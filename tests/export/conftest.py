"""A tiny trained-looking run (config.yaml + checkpoints) and its export, shared by the export tests."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from lnn.models import VisionLNNLite

TINY_MODEL = {
    "_target_": "lnn.models.VisionLNNLite", "num_actions": 6, "image_size": 32, "channels": [8, 16, 32],
    "feature_size": 32, "instruction_dim": 16, "hidden_size": 32, "num_layers": 2,
    "head_size": 32, "core": "liquid", "tau_min": 0.5, "tau_max": 8.0, "tau_per": "neuron",
    "bptt_steps": None, "solver": "rk4", "unfolds": 1, "rtol": 1.0e-3, "atol": 1.0e-4,
}  # fmt: skip
TASKS = ["click-color", "remember-color", "wait-green"]  # wait-green: a timing family (irregular dt)


def make_run(run: Path, seed: int = 0, score: float = 0.5, **model_overrides) -> Path:
    """A run directory as train.py leaves it: config.yaml, checkpoints/{best,last}.ckpt, results.json."""
    model_cfg = {**TINY_MODEL, **model_overrides}
    cfg = {
        "model": model_cfg,
        "data": {"env": "gui", "tasks": TASKS, "env_kwargs": {}},
        "callbacks": {"best": {"monitor": "val/success", "mode": "max"}},
    }
    (run / "checkpoints").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(cfg), run / "config.yaml")
    torch.manual_seed(seed)
    kwargs = {k: v for k, v in model_cfg.items() if k != "_target_"}
    kwargs["channels"] = tuple(kwargs["channels"])
    model = VisionLNNLite(**kwargs)
    time_weight = getattr(model.core, "time_weight", None)
    if time_weight is not None:  # the feed-forward core starts blind to dt (zeros); a trained one is not
        torch.nn.init.normal_(time_weight, std=0.5)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    callbacks = {"ModelCheckpoint{'monitor': 'val/success'}": {"monitor": "val/success", "best_model_score": torch.tensor(score)}}
    for name in ("best.ckpt", "last.ckpt"):
        torch.save({"state_dict": state, "callbacks": callbacks, "global_step": 6}, run / "checkpoints" / name)
    (run / "results.json").write_text(json.dumps({"val/success": score, "monitor": "val/success", "best_score": score}))
    return run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "run")


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tmp_path_factory) -> Path:
    """The tiny run exported (with the web page when onnxruntime-web is installed)."""
    from lnn.export.bundle import find_ort_dist
    from lnn.export.pipeline import ExportOptions, export
    from lnn.export.source import resolve_source

    out = tmp_path_factory.mktemp("exports") / "tiny"
    options = ExportOptions(out=str(out), web=find_ort_dist() is not None)
    return export(resolve_source(run=str(tiny_run)), options, log=lambda line: None)
