"""Why does a run fail a memory family? Teacher-forced figures on recorded episodes of a trained run.

    python experiments/memory/diagnose.py logs/runs/<run> [--tasks remember-target,click-sequence]

Per family, on training seeds and on held-out (val) seeds, with BatchNorm in eval mode and in train mode:
action accuracy, the share of click steps that land in the target box (all recall clicks and the first
one), and a linear probe: can the cue's place (one of the 4 x 3 layout slots) be read linearly from the
policy's head features at the first recall step? Train ≈ held-out means the model underfits rather
than memorises seeds; a probe far below the click rate means the place is held, but not linearly.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

from lnn.data.datamodule import EpisodeDataModule, EpisodeDataset, collate_episodes
from lnn.runs import load_policy
from lnn.training.module import CLICK, images_to_float, inside

MEMORY = "remember-target,remember-color,click-sequence"


def step_rows(model, episodes, train_mode: bool) -> list[dict]:
    """One dict per real step: task, step, action, predicted action, hit (click steps), box, head features."""
    captured = {}
    hook = model.head.register_forward_hook(lambda m, i, o: captured.__setitem__("z", o))
    model.train(train_mode)
    rows, dataset = [], EpisodeDataset(episodes)
    try:
        with torch.no_grad():
            for start in range(0, len(dataset), 64):
                batch = collate_episodes([dataset[j] for j in range(start, min(start + 64, len(dataset)))])
                images = images_to_float(batch["images"])
                b, t = images.shape[:2]
                tokens = model.tokenize([x for x in batch["task"] for _ in range(t)],
                                        [s for e in batch["instruction"] for s in e]).view(b, t, -1)  # fmt: skip
                out = model(images, tokens, dt=batch["dt"], mask=batch["mask"])
                z = captured["z"].view(b, t, -1)
                for k in range(b):
                    for s in range(int(batch["mask"][k].sum())):
                        action = int(batch["action"][k, s])
                        row = {"task": batch["task"][k], "step": s, "action": action, "z": z[k, s].numpy(),
                               "pred": int(out["action_logits"][k, s].argmax())}  # fmt: skip
                        if action == CLICK:
                            row["hit"] = bool(inside(out["coords"][k, s], batch["box"][k, s]))
                            row["box"] = batch["box"][k, s].numpy()
                        rows.append(row)
    finally:
        hook.remove()
        model.eval()
    return rows


def first_recall(rows: list[dict], task: str) -> list[dict]:
    clicks = [r for r in rows if r["task"] == task and r["action"] == CLICK]
    first = min(r["step"] for r in clicks)
    return [r for r in clicks if r["step"] == first]


def slot(box) -> int:
    """The layout slot (4 columns x 3 rows) of a box's centre."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return int(min(cx * 4, 3.999)) * 3 + int(min(cy * 3, 2.999))


def probe(train: list[dict], held_out: list[dict], epochs: int = 500) -> tuple[float, float]:
    """Accuracy of a linear read-out of the slot from head features (fit on `train`)."""
    x, xv = (torch.tensor(np.stack([r["z"] for r in rows])) for rows in (train, held_out))
    y, yv = (torch.tensor([slot(r["box"]) for r in rows]) for rows in (train, held_out))
    mu, sd = x.mean(0), x.std(0) + 1e-6
    linear = torch.nn.Linear(x.shape[1], 12)
    opt = torch.optim.Adam(linear.parameters(), 1e-2, weight_decay=1e-3)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(linear((x - mu) / sd), y).backward()
        opt.step()
    with torch.no_grad():
        return tuple(float((linear((a - mu) / sd).argmax(-1) == b).float().mean()) for a, b in ((x, y), (xv, yv)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a run directory or checkpoint")
    p.add_argument("--tasks", default=MEMORY)
    p.add_argument("--train-episodes", type=int, default=300, help="per family, from the training seeds")
    p.add_argument("--val-episodes", type=int, default=200, help="per family, from the held-out val seeds")
    args = p.parse_args()
    model = load_policy(args.run)
    tasks = args.tasks.split(",")
    with tempfile.TemporaryDirectory() as cache:
        dm = EpisodeDataModule(tasks=tasks, image_size=model.image_size, data_dir=cache,
                               episodes_per_task={"train": args.train_episodes, "val": args.val_episodes, "test": 1})  # fmt: skip
        dm.prepare_data()
        dm.setup()
        runs = {"train seeds": step_rows(model, dm.splits["train"], False),
                "held-out": step_rows(model, dm.splits["val"], False),
                "held-out, BN train mode": step_rows(model, dm.splits["val"], True)}  # fmt: skip
    print("| seeds | family | action acc | click hit | first recall hit |\n|---|---|---:|---:|---:|")
    for name, rows in runs.items():
        for task in tasks:
            steps = [r for r in rows if r["task"] == task]
            clicks = [r["hit"] for r in steps if "hit" in r]
            print(f"| {name} | {task} | {np.mean([r['pred'] == r['action'] for r in steps]):.3f} | "
                  f"{np.mean(clicks):.3f} | {np.mean([r['hit'] for r in first_recall(rows, task)]):.3f} |")
    for task in tasks:
        if task != "remember-color":  # its recall frame shows the colour: the place is not what is held
            fit, held = probe(first_recall(runs["train seeds"], task), first_recall(runs["held-out"], task))
            print(f"linear probe, {task}: slot (of 12) from head features at the first recall: "
                  f"train seeds {fit:.3f}, held-out {held:.3f}")


if __name__ == "__main__":
    main()
