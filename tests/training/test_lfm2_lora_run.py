"""A LoRA run of LFM2-Liquid through train.py (Hydra, Lightning): slim checkpoints, reloading, resuming (slow)."""

import io
import json
import os
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from lnn.data import FolderDataModule
from lnn.runs import build_model, load_policy
from lnn.training.module import PolicyModule
from tests.conftest import ROOT, run_cli
from tests.data.test_folder import make_folder
from tests.models.test_lfm2 import save_tiny_checkpoint

# a tiny LFM2-VL saved as a local directory, LoRA on it, 2 epochs x 3 steps of 8 episodes (debug=fast on a folder),
# last.ckpt every 2 steps and at each epoch end; KillAt (tests/training/kill_at.py) kills where LNN_KILL_AT says
ARGS = [str(ROOT / "train.py"), "model=lfm2_liquid", "model.base_tuning=lora", "model.lora_rank=2", "model.pretrained_path=base",
        "model.image_size=32", "data=folder", "data.path=shots", "debug=fast",
        "+callbacks.kill._target_=tests.training.kill_at.KillAt"]  # fmt: skip
ENV = {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


def val_loss(model, root: Path) -> float:
    """The model's val/loss on the run's validation episodes, as the run computed it."""
    data = FolderDataModule(str(root / "shots"), image_size=32, batch_size=8, data_dir=str(root / "data_cache"),
                            import_workers=1)  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.validate(PolicyModule(model, partial(torch.optim.AdamW)), datamodule=data, verbose=False)
    return metrics["val/loss"]


@pytest.mark.slow
def test_a_lora_run_checkpoints_small_reloads_the_same_and_resumes(tmp_path):
    save_tiny_checkpoint(tmp_path / "base")
    make_folder(tmp_path, episodes=40)
    killed = run_cli(*ARGS, cwd=tmp_path, env=ENV | {"LNN_KILL_AT": "step:5"})  # mid-epoch 1; last.ckpt at step 4
    assert killed.returncode == -9, killed.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "runs").iterdir()
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 4

    resumed = run_cli(*ARGS, cwd=tmp_path, env=ENV)  # the same command again continues it
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {last}" in out and "training starts at step 4" in out
    results = json.loads((run / "results.json").read_text())
    assert results["global_step"] == 6 and [p for p in (tmp_path / "logs" / "runs").iterdir()] == [run]

    # the checkpoint holds what trains (LoRA, liquid layers, heads, their optimizer state) and the base's sha256
    ckpt = torch.load(last, weights_only=False)
    state = ckpt["state_dict"]
    assert "model.base_sha256" in state and any("lora_B" in k for k in state)
    assert not any(k.endswith("self_attn.q_proj.base_layer.weight") for k in state)  # no frozen base weight
    model = build_model(ckpt["model_spec"], last)
    weights, full = io.BytesIO(), io.BytesIO()
    torch.save(state, weights)
    torch.save(dict(model.named_parameters()), full)  # every weight of the policy, the frozen base's included
    # measured: weights 13% of the model's, the whole file (Adam's moments, loop state too) 46%; a full-tuning
    # checkpoint would be over 3x the model's weights (the weights and two moments each)
    assert weights.tell() < full.tell() / 4 and last.stat().st_size < full.tell() / 1.5, (weights.tell(), full.tell())

    # reloaded onto its base from pretrained_path: the run's own final validation loss, to float precision
    policy = load_policy(last)
    assert policy.base_tuning == "lora" and policy.pretrained_path == str(tmp_path / "base")
    assert val_loss(policy, tmp_path) == pytest.approx(results["val/loss"], rel=1e-5)
    untrained = build_model(policy.spec, last)
    assert val_loss(untrained, tmp_path) != pytest.approx(results["val/loss"], rel=1e-3)  # the check has teeth
