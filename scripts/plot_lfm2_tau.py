"""τ of a trained LFM2-Liquid run on one oracle episode: per frame and per prompt token of each frame.

    PYTHONPATH=src python scripts/plot_lfm2_tau.py logs/runs/<run> [--task remember-color] [--seed 20000000]
                                                                   [--ckpt best] [--out tau.png]

Builds the run's model from its config.yaml and checkpoint, replays the oracle's episode of `task`
in the run's env at the model's image size, runs the model over the episode (liquid state carried
from frame to frame) and draws `lnn.plots.plot_tau_episode`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_lfm2 import load_run_model

from lnn.data.rollouts import record_episode
from lnn.envs.registry import make_env
from lnn.plots import plot_tau_episode
from lnn.rollout import SPLIT_SEED_BASE, screenshots_to_tensor


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--task", default="remember-color")
    p.add_argument("--seed", type=int, default=SPLIT_SEED_BASE["test"])
    p.add_argument("--ckpt", default="best")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    cfg = OmegaConf.load(args.run / "config.yaml")
    model = load_run_model(args.run, args.ckpt).eval()
    env = make_env(cfg.data.env, tasks=[args.task], **cfg.data.env_kwargs)
    rows = record_episode(env, 0, args.task, args.seed)
    images = screenshots_to_tensor([r["screenshot"] for r in rows], model.image_size).unsqueeze(0)
    tokens = model.tokenize([args.task] * len(rows), [r["instruction"] for r in rows]).unsqueeze(0)
    with torch.no_grad():
        out = model(images, tokens)
    steps = " → ".join(r["instruction"] for r in rows)
    path = args.out or args.run / f"tau_{args.task}.png"
    plot_tau_episode(out, path, list(model.branches()), title=f"τ per merged layer, {args.task} (seed {args.seed}): {steps}")
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
