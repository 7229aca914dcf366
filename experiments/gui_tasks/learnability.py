"""Can a tiny CNN learn the single-step families at 96 px in ~10 CPU minutes? A probe of the env.

    python experiments/gui_tasks/learnability.py [--minutes 10] [--threads 2] [--size 96]

Not the project's model: a stand-in with the shape the env is meant to be learnable by. Three 3x3
stride-2 convs (3->32->64->128), the instruction as a bag of words modulating the last feature map
(FiLM), a 1x1 conv to a heat map and a spatial soft-argmax for the click point; regression on the
oracle's click point. Batches are fresh oracle frames from GuiEnv; evaluation is closed loop: one
click per episode, on seeds never trained on, success = reward 1.0.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch
from torch import nn

from lnn.envs import Action
from lnn.envs.gui import GuiEnv, families_by_kind

EVAL_SEED = 10**9  # evaluation seeds start here; training seeds stay below


class Words:
    def __init__(self):
        self.ids: dict[str, int] = {}

    def __call__(self, instruction: str) -> list[int]:
        return [self.ids.setdefault(w, len(self.ids)) for w in instruction.lower().replace('"', "").split()]


class TinyClicker(nn.Module):
    def __init__(self, vocab: int = 256, dim: int = 128):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(64, dim, 3, 2, 1),
            nn.ReLU(),
        )
        self.words = nn.EmbeddingBag(vocab, 2 * dim, mode="mean")
        self.heat = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.ReLU(), nn.Conv2d(dim, 1, 1))

    def forward(self, images: torch.Tensor, words: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        f = self.convs(images)
        gamma, beta = self.words(words, offsets).chunk(2, dim=1)
        f = f * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        logits = self.heat(f).flatten(1)  # (B, h*w)
        h, w = f.shape[2:]
        ys, xs = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
        p = logits.softmax(1)
        return torch.stack([(p * xs.flatten()).sum(1), (p * ys.flatten()).sum(1)], 1)  # soft-argmax


def batch(env, tokens, seeds, tasks):
    images, words, offsets, targets = [], [], [], []
    for seed, task in zip(seeds, tasks):
        obs = env.reset(seed, task)
        a = env.oracle().action
        images.append(obs.screenshot)
        offsets.append(len(words))
        words += tokens(obs.instruction)
        targets.append((a.x, a.y))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return x, torch.tensor(words), torch.tensor(offsets), torch.tensor(targets)


@torch.no_grad()
def evaluate(model, env, tokens, task, episodes):
    wins = 0
    for seed in range(EVAL_SEED, EVAL_SEED + episodes):
        x, w, o, _ = batch(env, tokens, [seed], [task])
        cx, cy = model(x, w, o)[0].tolist()
        wins += env.step(Action("click", cx, cy))[1]
    return wins / episodes


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=500, help="evaluation episodes per family")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tasks = families_by_kind()["single_step"]
    env, tokens, model = GuiEnv(tasks=tasks, image_size=args.size), Words(), TinyClicker()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    rng, start, step, seed = random.Random(0), time.time(), 0, 0
    while time.time() - start < args.minutes * 60:
        seeds = list(range(seed, seed + args.batch))
        seed += args.batch
        x, w, o, y = batch(env, tokens, seeds, [rng.choice(tasks) for _ in seeds])
        loss = (model(x, w, o) - y).abs().sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            print(
                f"{time.time() - start:6.0f}s step {step:5d} frames {seed:7d} L1 {loss.item():.4f}",
                flush=True,
            )
    model.eval()
    print(
        f"\ntrained {step} steps on {seed} frames in {(time.time() - start) / 60:.1f} min, {args.threads} threads"
    )
    print(f"closed-loop success over {args.episodes} unseen episodes per family, {args.size} px:")
    for task in tasks:
        print(f"  {task:<18} {evaluate(model, env, tokens, task, args.episodes):.3f}")


if __name__ == "__main__":
    main()
