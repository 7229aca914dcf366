"""Where a seeing task's answer gets lost: per task, on a recorded split's frames,

- the look's mass inside the oracle's focus box (does it look at the shape?),
- a linear probe of the answer (which button) from what the look pools, before the core (is the answer seen?),
- the policy's click inside the target box (is it used?).

    PYTHONPATH=src python experiments/miniwob/look_probe.py <run dir> data_cache/miniwob-train-<key> count-sides,identify-shape

The probe trains on 80% of the task's frames and reports the other 20%, beside the majority answer's share.
"""

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from lnn.data.datamodule import EpisodeDataset, collate_episodes, load_episodes
from lnn.runs import load_policy
from lnn.training.module import PolicyModule, inside


def measure(module: PolicyModule, dataset: EpisodeDataset, rows: list[int]) -> dict:
    model, seen = module.model, []
    hook = model.seen_norm.register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
    look, hit, boxes = [], [], []
    cells = model.cell_xy.T.unsqueeze(0)
    for k in range(0, len(rows), 50):
        batch = collate_episodes([dataset[i] for i in rows[k : k + 50]])
        with torch.no_grad():
            out = module(batch)
        m = batch["mask"]
        p = torch.softmax(out["look_logits"][m].float(), -1)
        look.append((p * inside(cells, batch["focus"][m].unsqueeze(1))).sum(-1))
        hit.append(inside(out["coords"][m].float(), batch["box"][m]).float())
        boxes.append(batch["box"][m])
    hook.remove()
    return {"look": torch.cat(look), "click": torch.cat(hit), "seen": torch.cat(seen), "box": torch.cat(boxes)}


def probe(x: torch.Tensor, boxes: torch.Tensor, steps: int = 2000) -> tuple[float, float]:
    """Held-out accuracy of a linear read-out of the answer (the target button, by its box's centre) and the
    majority answer's share of the held-out frames."""
    centre = torch.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], -1)
    _, y = torch.unique((centre * 50).round(), dim=0, return_inverse=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    n = int(0.8 * len(y))
    linear = torch.nn.Linear(x.shape[1], int(y.max()) + 1)
    opt = torch.optim.Adam(linear.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(linear(x[:n]), y[:n]).backward()
        opt.step()
    with torch.no_grad():
        accuracy = (linear(x[n:]).argmax(1) == y[n:]).float().mean().item()
    return accuracy, torch.bincount(y[n:]).max().item() / len(y[n:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run directory or .ckpt")
    parser.add_argument("data", type=Path, help="a recorded split (data_cache/miniwob-train-<key>)")
    parser.add_argument("tasks", help="comma-separated task names")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_policy(args.run)
    module = PolicyModule(model, optimizer=None)
    episodes = load_episodes(args.data, model.image_size)
    dataset = EpisodeDataset(episodes)
    print("| task | frames | look in focus | probe (held out) | majority | click in target |\n|---|---:|---:|---:|---:|---:|")
    for task in args.tasks.split(","):
        rows = [i for i in range(len(dataset)) if episodes.task[int(episodes.starts[i])] == task]
        if not rows:
            raise SystemExit(f"error: {args.data} has no episode of task {task!r}")
        r = measure(module, dataset, rows)
        accuracy, majority = probe(r["seen"], r["box"])
        print(f"| {task} | {len(r['click'])} | {r['look'].mean():.2f} | {accuracy:.2f} | {majority:.2f} | {r['click'].mean():.2f} |")


if __name__ == "__main__":
    main()
