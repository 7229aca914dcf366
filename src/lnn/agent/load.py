"""Loading a trained policy from what a training run leaves behind (also used by the ONNX export).

A run directory holds `config.yaml` (the resolved config: `model` rebuilds the model) and
`checkpoints/best.ckpt` / `last.ckpt` (Lightning: the LightningModule's state_dict, the model's
weights under `model.`). Accepted paths:

    logs/runs/<time>                       the run directory: its best.ckpt (else last.ckpt)
    logs/runs/<time>/checkpoints/x.ckpt    that checkpoint, with the run's config.yaml
    logs/multiruns/<time>/<n>              a sweep job: a run directory like any other
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from lnn.errors import ConfigError

CONFIG = "config.yaml"
CHECKPOINTS = ("best.ckpt", "last.ckpt")  # in this order of preference


@dataclass(frozen=True)
class RunCheckpoint:
    checkpoint: Path  # the .ckpt file
    config: Path  # the run's resolved config.yaml
    run_dir: Path


def find_checkpoint(path: str | Path, key: str = "ckpt") -> RunCheckpoint:
    """The checkpoint file and run config that `path` (a run directory or a .ckpt) stands for.

    A path that is neither raises ConfigError(key, ...) saying what was expected.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(key, f"{path} does not exist; give a run directory (logs/runs/<time>), a .ckpt file "
                               f"or an exported ONNX directory (model.onnx + manifest.json)")  # fmt: skip
    if path.is_dir():
        run_dir = path
        for name in CHECKPOINTS:
            if (path / "checkpoints" / name).exists():
                checkpoint = path / "checkpoints" / name
                break
        else:
            raise ConfigError(key, f"{path} has no checkpoints/{CHECKPOINTS[0]} or checkpoints/{CHECKPOINTS[1]}; "
                                   "give the directory of a training run")  # fmt: skip
    else:
        if path.suffix != ".ckpt":
            raise ConfigError(key, f"{path} is not a .ckpt file, a run directory or an ONNX export directory")
        checkpoint = path
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    config = run_dir / CONFIG
    if not config.exists():
        raise ConfigError(key, f"{config} not found: the model is rebuilt from the run's config.yaml, which a "
                               "training run writes next to checkpoints/")  # fmt: skip
    return RunCheckpoint(checkpoint, config, run_dir)


def load_run_config(path: str | Path) -> DictConfig:
    """The resolved training config of the run that `path` (run directory or .ckpt) belongs to."""
    return OmegaConf.load(find_checkpoint(path).config)


def model_state_dict(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The model's weights out of a Lightning checkpoint (prefix `model.`; torch.compile's `_orig_mod.` removed)."""
    state = checkpoint.get("state_dict", checkpoint)
    out = {}
    for name, value in state.items():
        if name.startswith("model."):
            name = name[len("model."):]
            out[name.removeprefix("_orig_mod.")] = value
    return out


def load_policy_model(path: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained policy model (Lite, lfm2_liquid, lfm2_hybrid, ...) of a run, in eval mode.

    The model is rebuilt with `hydra.utils.instantiate(config.model)` and gets its weights from the
    checkpoint; `model.lnn_checkpoint` (a RunCheckpoint) says where they came from.
    """
    from hydra.utils import instantiate

    found = find_checkpoint(path)
    config = OmegaConf.load(found.config)
    if "model" not in config:
        raise ConfigError("ckpt", f"{found.config} has no `model` section")
    model = instantiate(config.model)
    checkpoint = torch.load(found.checkpoint, map_location=map_location, weights_only=False)
    state = model_state_dict(checkpoint)
    if not state:
        raise ConfigError("ckpt", f"{found.checkpoint} holds no model weights (no `model.*` keys in its state_dict)")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError("ckpt", f"{found.checkpoint} does not fit the model of {found.config}: "
                                  f"missing {missing[:3]}, unexpected {unexpected[:3]}")  # fmt: skip
    model.lnn_checkpoint = found
    return model.eval().to(map_location)
