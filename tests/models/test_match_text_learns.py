"""The named-text channel wired end to end: a tiny Lite trained through PolicyModule.forward (the training
path) on the glyph test's synthetic frames — words drawn among distractors, the instruction naming one —
and evaluated through TorchPolicy (the closed-loop path) on held-out words: far above chance with
model.match_text, about chance without (the words' bytes alone cannot say where a never-seen word is drawn)."""

import random
from functools import partial

import pytest
import torch

from lnn.envs import Observation
from lnn.models import VisionLNNLite
from lnn.rollout import TorchPolicy
from lnn.training.module import click_loss
from tests.models.test_glyphs import SIZE, WORDS_PER_FRAME, scenes, vocabulary

pytest.importorskip("PIL")
pytestmark = pytest.mark.slow  # ~1.5 min of CPU: two tiny Lites trained 200 steps each


def tiny_lite(match_text: bool) -> VisionLNNLite:
    return VisionLNNLite(image_size=list(SIZE), channels=(16, 32, 32), feature_size=32, instruction_dim=32,
                         hidden_size=32, num_layers=1, head_size=32, scorer_size=32, core="feedforward",
                         match_text=match_text)  # fmt: skip


def test_held_out_words_are_found_with_the_match_channel_and_not_without():
    from lnn.training.module import PolicyModule

    rng = random.Random(0)
    taken: set = set()
    train_vocab, test_vocab = vocabulary(rng, 150, taken), vocabulary(rng, 100, taken)
    train_images, train_text, train_boxes = scenes(rng, train_vocab, 800)
    test_images, test_text, test_boxes = scenes(rng, test_vocab, 200)
    scale = torch.tensor([SIZE[1], SIZE[0], SIZE[1], SIZE[0]], dtype=torch.float32)
    train_boxes, test_boxes = train_boxes / scale, test_boxes / scale  # fractions of the frame, as datasets store them

    def accuracy(match_text: bool) -> float:
        torch.manual_seed(0)
        module = PolicyModule(tiny_lite(match_text), optimizer=partial(torch.optim.Adam, lr=3e-3))
        optimizer = torch.optim.Adam(module.model.parameters(), lr=3e-3)
        for _ in range(200):
            rows = torch.randint(0, len(train_images), (24,))
            batch = {"images": (train_images[rows] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).unsqueeze(1),
                     "task": ["click-link"] * 24, "instruction": [[train_text[i]] for i in rows.tolist()],
                     "mask": torch.ones(24, 1, dtype=torch.bool)}  # fmt: skip
            loss = click_loss(module(batch)["click_logits"][:, 0], module.model.cell_xy, train_boxes[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        policy = TorchPolicy(module.model)
        policy.reset(len(test_images))
        screens = (test_images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        actions, _ = policy.act([Observation(s, t, "click-link") for s, t in zip(screens, test_text)])
        x, y = torch.tensor([a.x for a in actions]), torch.tensor([a.y for a in actions])
        cell = torch.tensor([8 / SIZE[1], 8 / SIZE[0]])  # within a cell of the word's box: the map's resolution
        hit = (x >= test_boxes[:, 0] - cell[0] / 2) & (x <= test_boxes[:, 2] + cell[0] / 2) & \
              (y >= test_boxes[:, 1] - cell[1] / 2) & (y <= test_boxes[:, 3] + cell[1] / 2)  # fmt: skip
        return hit.float().mean().item()

    with_match, without = accuracy(True), accuracy(False)
    print(f"held-out words clicked: {100 * with_match:.0f}% with match_text, {100 * without:.0f}% without "
          f"(~{100 / WORDS_PER_FRAME:.0f}% picks a word at random)")
    assert with_match >= 0.8
    assert without <= 0.45
