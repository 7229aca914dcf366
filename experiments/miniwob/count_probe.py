"""Why count-shape fails: on a recorded split's count-shape frames, how often a run's model (with model.describe)
(1) counts the shapes that fit the description — its count input, the sum over cells of the chance a fitting part is
centred there, rounded (with model.count_values: its count distribution's peak) — and (2) reads the right answer's
digit on the oracle's button with its part head (taught the grid's letters and digits, never the buttons'). The true
count is the number of the oracle's parts whose labels have every attribute the instruction names
(lnn.envs.miniwob.described_parts).

    PYTHONPATH=src python experiments/miniwob/count_probe.py <run dir> data_cache/miniwob-train-<key> [--frames 200]
"""

import argparse
from pathlib import Path

import torch

from lnn.data.datamodule import EpisodeDataset, collate_episodes, load_episodes
from lnn.envs import PART_ATTRIBUTES
from lnn.envs.miniwob.describe import described_parts
from lnn.models.lite import PART_CLASSES
from lnn.runs import load_policy
from lnn.training.module import PolicyModule, fitting_count, nearest_cell


def true_count(instruction: str, parts: torch.Tensor) -> int:
    """The oracle's parts (P, 4 + attributes; -1 rows: padding) that have every attribute the instruction names."""
    return fitting_count(described_parts("count-shape", instruction), parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run directory (or .ckpt) of a Lite with model.describe")
    parser.add_argument("split", type=Path, help="a recorded split: data_cache/miniwob-<split>-<key>")
    parser.add_argument("--frames", type=int, default=200, help="count-shape frames to read (default 200)")
    args = parser.parse_args()
    model = load_policy(args.run).eval()
    if not getattr(model, "describe", False):
        raise SystemExit(f"{args.run}: the model does not read descriptions (model.describe=true)")
    dataset = EpisodeDataset(load_episodes(args.split, model.image_size))
    chosen = [i for i in range(len(dataset)) if dataset[i]["task"] == "count-shape"][: args.frames]
    module = PolicyModule(model, optimizer=None)
    text = slice(PART_CLASSES[0], sum(PART_CLASSES[:2]))  # the part head's text classes (letters, digits, shapes)
    counted = read = clicked = 0
    errors = []
    for k in range(0, len(chosen), 32):
        items = [dataset[i] for i in chosen[k : k + 32]]
        batch = collate_episodes(items)
        with torch.no_grad():
            out = module(batch)
        mask = batch["mask"]
        part_logits = out["part_logits"][mask]
        fits = model.fitting(part_logits, out["parse_logits"][mask])
        expected = model.count_distribution(fits).argmax(-1).float() if model.count_values else fits.exp().sum(-1)
        answer = nearest_cell(model.cell_xy, batch["box"][mask])  # the cell of the oracle's button
        digit = part_logits[:, text].argmax(1).gather(1, answer[:, None]).squeeze(1)
        picked = out["click_logits"][mask].argmax(-1)
        for n, item in enumerate(items):
            true = true_count(item["instruction"][0], item["parts"][0])
            errors.append(float(expected[n]) - true)
            counted += round(float(expected[n])) == true
            read += PART_ATTRIBUTES["text"][int(digit[n])] == str(true)
            clicked += int(picked[n]) == int(answer[n])
    total = len(errors)
    mean = sum(errors) / total
    print(f"{total} count-shape frames of {args.split.name}, {args.run}")
    print("| | share |\n|---|---:|")
    print(f"| the count input, rounded, is the true count | {100 * counted / total:.1f}% |")
    print(f"| the part head reads the true count's digit at the answer button | {100 * read / total:.1f}% |")
    print(f"| the click map's peak is the answer button's cell | {100 * clicked / total:.1f}% |")
    print(f"\ncount input minus true count: mean {mean:+.2f}, mean |error| {sum(map(abs, errors)) / total:.2f}")


if __name__ == "__main__":
    main()
