"""Export a trained LFM2-Liquid / LFM2 hybrid run to ONNX, with its parity check against PyTorch.

    PYTHONPATH=src python scripts/export_lfm2.py logs/runs/<run> [--ckpt best|last|<path>] [--out <dir>]

Reads the run's resolved config.yaml, builds the model it names, loads the checkpoint's weights and
calls `lnn.export.lfm2.export_lfm2` (what the project's export.py calls for these models).
Writes vision.onnx, decoder_step.onnx, heads.onnx, manifest.json, parity.json, parity.png to
<run>/export_lfm2 (or --out) and prints the parity figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lnn.errors import ConfigError
from lnn.export.lfm2 import export_lfm2


def load_run_model(run: Path, ckpt: str = "best"):
    cfg = OmegaConf.load(run / "config.yaml")
    path = Path(ckpt) if ckpt not in ("best", "last") else run / "checkpoints" / f"{ckpt}.ckpt"
    if not path.exists():
        raise ConfigError("ckpt", f"{path} does not exist")
    model = instantiate(cfg.model)
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    return model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a run directory (with config.yaml and checkpoints/)")
    p.add_argument("--ckpt", default="best", help="best | last | a checkpoint path")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        model = load_run_model(args.run, args.ckpt)
        parity = export_lfm2(model, args.out or args.run / "export_lfm2")
    except ConfigError as e:
        print(f"error: {e.key} — {e.message}", file=sys.stderr)
        return 2
    print(json.dumps(parity, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
