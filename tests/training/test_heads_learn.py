"""The drag, key and text heads learn from recorded rows: a tiny Lite with all three overfits a handful of
episodes of a folder dataset (clicks, drags, keys, typed words) — it drags to the recorded release point,
presses the recorded key and types the recorded word, copied from the instruction where its characters
are not in the head's own (non-ASCII letters can only be copied)."""

import csv
import json
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from lnn.data import FolderDataModule
from lnn.data.datamodule import EpisodeDataset, collate_episodes
from lnn.envs import ACTIONS, KEYS, Observation
from lnn.models import VisionLNNLite
from lnn.rollout import decode_outputs
from lnn.training.module import PolicyModule, images_to_float

pytestmark = pytest.mark.slow  # ~1-3 min of training on 2 cores

SIZE = 32
WORDS = ["café", "Zürich", "naïve", "señor"]  # é, ü, ï, ñ: bytes the text head can only copy
DRAGS = [((0.2, 0.2), (0.8, 0.7)), ((0.8, 0.2), (0.25, 0.75)), ((0.5, 0.8), (0.5, 0.2)), ((0.2, 0.8), (0.75, 0.3))]
PRESSED = ["Enter", "Tab", "Escape", "ArrowDown"]


def frame(path: Path, marks: list[tuple[tuple[float, float], str]]) -> None:
    """A grey frame with coloured squares at the given points."""
    image = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    for (x, y), colour in marks:
        draw.rectangle([x * SIZE - 3, y * SIZE - 3, x * SIZE + 3, y * SIZE + 3], fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_actions_folder(root: Path) -> Path:
    """Episodes of: click the red square, drag it onto the blue one, press a key, type a word, done."""
    folder, lines = root / "acts", []
    for e, (word, (press, release), key) in enumerate(zip(WORDS, DRAGS, PRESSED)):
        steps = [
            {"action": "click", "x": press[0], "y": press[1], "instruction": "Click the red square"},
            {"action": "drag", "x": press[0], "y": press[1], "x2": release[0], "y2": release[1],
             "instruction": "Drag the red square onto the blue one"},
            {"action": "key", "text": key, "instruction": f"Press {key}"},
            {"action": "type", "text": word, "instruction": f'Type "{word}" in the box'},
            {"action": "done", "instruction": "Finish"},
        ]  # fmt: skip
        for s, step in enumerate(steps):
            image = f"e{e}/{s}.png"
            frame(folder / image, [(press, (220, 30, 30)), (release, (30, 30, 220))])
            lines.append({"episode": f"e{e}", "step": s, "image": image, "task": "acts", **step})
    (folder / "episodes.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return folder


def tiny_model() -> VisionLNNLite:
    return VisionLNNLite(num_actions=len(ACTIONS), image_size=SIZE, channels=(16, 32), feature_size=32, instruction_dim=32,
                         hidden_size=48, num_layers=1, head_size=48, scorer_size=32, click_offset=True, tau_min=0.5,
                         tau_max=8.0, solver="euler", drag_head=True, key_head=True, text_head=True)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads")
    data = FolderDataModule(str(make_actions_folder(root)), image_size=SIZE, val_fraction=0.2, batch_size=8,
                            data_dir=str(root / "cache"), import_workers=1)  # fmt: skip
    data.setup()
    torch.manual_seed(0)
    module = PolicyModule(tiny_model(), partial(torch.optim.AdamW, lr=3e-3), warmup_steps=10, look_weight=0.0)
    episodes = data.splits["train"] + data.splits["val"]  # overfit every episode
    data.splits = {"train": episodes, "val": episodes}
    trainer = pl.Trainer(max_steps=250, logger=pl.loggers.CSVLogger(root), enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, check_val_every_n_epoch=1000,
                         log_every_n_steps=1, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(module, datamodule=data)
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return module.model.eval(), episodes, rows


def test_the_heads_overfit_clicks_drags_keys_and_typed_words(trained):
    model, episodes, rows = trained
    losses = {name: [float(r[column]) for r in rows if r.get(column)]  # per epoch (one batch each)
              for name, column in (("loss", "train/loss_epoch"), *((n, f"train/{n}") for n in ("loss_release", "loss_key", "loss_text")))}  # fmt: skip
    for name, values in losses.items():
        assert values and values[-1] < values[0] / 4, (name, values[0], values[-1])
    batch = collate_episodes([EpisodeDataset(episodes)[i] for i in range(len(episodes))])
    b, t = batch["mask"].shape
    tasks = [task for task in batch["task"] for _ in range(t)]
    instructions = [text for episode in batch["instruction"] for text in episode]
    text = {k: v.view(b, t, *v.shape[1:]) for k, v in model.text_inputs(tasks, instructions).items()}
    with torch.no_grad():
        out = model(images_to_float(batch["images"]), **text, dt=batch["mask"].float(), mask=batch["mask"])
    drags = typed = pressed = right = 0
    for i in range(b):
        for s in range(int(batch["mask"][i].sum())):
            step = {k: v[i, s : s + 1] for k, v in out.items() if k not in ("tau_values", "state")}
            truth = ACTIONS[int(batch["action"][i, s])]
            right += ACTIONS[int(step["action_logits"].argmax())] == truth
            # the heads under test, each read at its own steps (the action head is trained and tested elsewhere)
            step["action_logits"] = torch.nn.functional.one_hot(batch["action"][i, s : s + 1], len(ACTIONS))
            action = decode_outputs(step, [Observation(None, instructions[i * t + s], "acts")])[0]
            if truth == "drag":
                drags += 1
                assert abs(action.x2 - float(batch["release"][i, s, 0])) < 0.05, action
                assert abs(action.y2 - float(batch["release"][i, s, 1])) < 0.05, action
            elif truth == "key":
                pressed += 1
                assert action.text == KEYS[int(batch["key"][i, s])]
            elif truth == "type":
                typed += 1
                assert action.text == batch["text"][i][s]
    assert drags == typed == pressed == len(WORDS) and right >= 0.8 * int(batch["mask"].sum())
