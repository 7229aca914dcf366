"""What a run's part head reads off the screen: per attribute (type, text, colour, size), how often the map cell at a
shape's centre names it right, on a recorded split's frames that have parts (click-shape, count-shape); the text
(which letter, digit or shape) also by type and size. If these are high while the task fails, the features hold
what the instruction asks for and what is missing is matching the instruction to them.

    PYTHONPATH=src python experiments/miniwob/part_probe.py <run dir> data_cache/miniwob-val-<key>
"""

import argparse
from collections import defaultdict
from pathlib import Path

import torch

from lnn.data.datamodule import EpisodeDataset, collate_episodes, load_episodes
from lnn.envs import PART_ATTRIBUTES
from lnn.models.lite import PART_CLASSES
from lnn.runs import load_policy
from lnn.training.module import PolicyModule, nearest_cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run directory (or .ckpt) of a Lite with model.part_head")
    parser.add_argument("split", type=Path, help="a recorded split: data_cache/miniwob-<split>-<key>")
    args = parser.parse_args()
    model = load_policy(args.run).eval()
    if getattr(model, "part_head", None) is None:
        raise SystemExit(f"{args.run}: the model has no part head (model.part_head=true)")
    episodes = load_episodes(args.split, model.image_size)
    dataset, module = EpisodeDataset(episodes), PolicyModule(model, optimizer=None)
    with_parts = [i for i in range(len(dataset)) if (dataset[i]["parts"][..., 0] >= 0).any()]
    right, given = defaultdict(int), defaultdict(int)
    for k in range(0, len(with_parts), 32):
        batch = collate_episodes([dataset[i] for i in with_parts[k : k + 32]])
        with torch.no_grad():
            logits = module(batch)["part_logits"][batch["mask"]]  # (N, classes, cells)
        parts = batch["parts"][batch["mask"]]  # (N, P, 4 + attributes)
        frame, index = (parts[..., 0] >= 0).nonzero(as_tuple=True)
        shown = parts[frame, index]
        cell = nearest_cell(model.cell_xy, shown[:, :4])
        # (with model.describe the head has one more output after the attributes: whether a part is centred)
        said = [chunk.argmax(1) for chunk in logits[frame, : sum(PART_CLASSES), cell].split(PART_CLASSES, 1)]
        for n in range(len(shown)):
            labels = shown[n, 4:].long().tolist()
            kind = (PART_ATTRIBUTES["type"][labels[0]], PART_ATTRIBUTES["size"][labels[3]])
            for a, name in enumerate(PART_ATTRIBUTES):
                if labels[a] >= 0:
                    ok = int(said[a][n]) == labels[a]
                    right[name] += ok
                    given[name] += 1
                    if name == "text":
                        right[kind] += ok
                        given[kind] += 1
    print(f"{len(with_parts)} frames with parts in {args.split.name}")
    print("| attribute | right | parts |\n|---|---:|---:|")
    for name in PART_ATTRIBUTES:
        print(f"| {name} | {100 * right[name] / given[name]:.1f}% | {given[name]} |")
    for kind in sorted(k for k in given if isinstance(k, tuple)):
        print(f"| text of a {kind[1]} {kind[0]} | {100 * right[kind] / given[kind]:.1f}% | {given[kind]} |")


if __name__ == "__main__":
    main()
