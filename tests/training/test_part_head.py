"""The part head: what the oracle says each part of the screen is (click-shape's shapes) teaches the CNN's cells."""

import math

import torch

from lnn.envs import PART_ATTRIBUTES, Part
from lnn.models import VisionLNNLite
from lnn.models.lite import PART_CLASSES
from lnn.training.module import part_loss

CELLS = torch.tensor([[0.25, 0.75, 0.25, 0.75], [0.25, 0.25, 0.75, 0.75]])  # (2, cells): a 2 x 2 map's centres
COLOURS = PART_ATTRIBUTES["color"]
COLOUR = sum(PART_CLASSES[:2])  # where the colour's logits start


def test_a_part_is_named_by_class_ids_and_unknown_values_are_refused():
    part = Part.named((0.1, 0.2, 0.3, 0.4), type="letter", text="Q", size="large")
    assert part.labels == (0, PART_ATTRIBUTES["text"].index("Q"), -1, 1)  # colour not given: -1
    for bad in ({"color": "teal"}, {"shade": "red"}):
        try:
            Part.named((0, 0, 1, 1), **bad)
        except ValueError as error:
            assert "teal" in str(error) or "shade" in str(error)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_the_cell_at_a_parts_centre_is_judged_on_the_labels_given():
    logits = torch.zeros(1, sum(PART_CLASSES), 4)
    logits[0, COLOUR + COLOURS.index("blue"), 3] = 20.0  # the bottom-right cell says "blue"
    logits[0, COLOUR + COLOURS.index("red"), 0] = 20.0  # the top-left one "red"
    blue_part = [0.6, 0.6, 0.9, 0.9, -1, -1, COLOURS.index("blue"), -1]  # only its colour known
    padding = [-1.0] * 8
    loss, right = part_loss(logits, CELLS, torch.tensor([[blue_part, padding]]))
    assert loss < 1e-6 and right == 1.0
    red_said = [0.6, 0.6, 0.9, 0.9, -1, -1, COLOURS.index("red"), -1]  # the same cell, labelled red: wrong
    loss, right = part_loss(logits, CELLS, torch.tensor([[red_said]]))
    assert loss > 19 and right == 0.0
    with_size = [0.6, 0.6, 0.9, 0.9, -1, -1, COLOURS.index("blue"), 1]  # and a size the logits are even on
    loss, right = part_loss(logits, CELLS, torch.tensor([[with_size]]))
    assert math.isclose(loss, math.log(2) / 2, rel_tol=1e-4) and right == 0.5  # 2 labels: one sure, one a coin
    assert part_loss(logits, CELLS, torch.tensor([[padding]])) is None  # no parts: nothing to learn
    assert part_loss(logits, CELLS, torch.full((1, 0, 8), -1.0)) is None


def squares(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n grey 32 x 32 frames, each with one 6 px square of a MiniWoB colour somewhere -> (frames (n, 1, 3, 32, 32),
    parts (n, 1, 8): its box and colour)."""
    rgb = {"red": (1, 0, 0), "green": (0, 0.5, 0), "blue": (0, 0, 1), "aqua": (0, 1, 1), "black": (0, 0, 0),
           "magenta": (1, 0, 1), "yellow": (1, 1, 0)}  # fmt: skip
    frames, parts = torch.full((n, 1, 3, 32, 32), 0.85), torch.full((n, 1, 8), -1.0)
    for i in range(n):
        colour = int(torch.randint(len(COLOURS), (1,), generator=generator))
        x, y = (int(v) for v in torch.randint(2, 24, (2,), generator=generator))
        frames[i, 0, :, y : y + 6, x : x + 6] = torch.tensor(rgb[COLOURS[colour]]).view(3, 1, 1)
        parts[i, 0, :4] = torch.tensor([x, y, x + 6, y + 6]) / 32
        parts[i, 0, 6] = colour
    return frames, parts


def test_the_cnn_learns_to_say_what_colour_a_part_is():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = VisionLNNLite(image_size=32, channels=(8, 16, 16), hidden_size=16, num_layers=1, feature_size=16,
                          instruction_dim=8, head_size=16, scorer_size=8, part_head=True)  # fmt: skip
    tokens = model.text_inputs(["t"], [""])["tokens"].view(1, 1, -1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train, train_parts = squares(128, generator)
    for _ in range(150):
        out = model(train, tokens.expand(len(train), 1, -1), parts=True)
        loss, _ = part_loss(out["part_logits"][:, 0], model.cell_xy, train_parts[:, 0].unsqueeze(1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    test, test_parts = squares(64, generator)
    with torch.no_grad():
        out = model(test, tokens.expand(len(test), 1, -1), parts=True)
        assert "part_logits" not in model(test, tokens.expand(len(test), 1, -1))  # not asked (an agent's step): no work
    _, right = part_loss(out["part_logits"][:, 0], model.cell_xy, test_parts[:, 0].unsqueeze(1))
    assert right > 0.9, f"held-out colour accuracy {float(right):.2f} (chance 1/7)"
    assert "part_logits" not in VisionLNNLite(image_size=32, channels=(8, 16, 16)).eval()(test[:1], tokens)  # off: none
