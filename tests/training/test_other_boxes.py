"""Clicks that are as right as the oracle's (click-shape's other fitting shapes): the losses accept them."""

import math

import torch

from lnn.data.datamodule import boxes_tensor, collate_episodes, pad_boxes
from lnn.training.module import click_loss, nearest_cell, nearest_right_point

CELLS = torch.tensor([[0.25, 0.75, 0.25, 0.75], [0.25, 0.25, 0.75, 0.75]])  # (2, cells): a 2 x 2 map's centres


def test_the_nearest_cell_is_the_one_at_the_least_euclidean_distance():
    generator = torch.Generator().manual_seed(0)
    cells = torch.rand(2, 50, generator=generator)  # any centres, not only a grid
    corners = torch.rand(3, 7, 2, generator=generator)
    boxes = torch.cat([corners, corners + 0.1 * torch.rand(3, 7, 2, generator=generator)], -1)  # (3, 7, 4)
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    expected = torch.cdist(centre.view(-1, 2).double(), cells.T.double()).argmin(-1).view(3, 7)
    assert torch.equal(nearest_cell(cells, boxes), expected)
    assert nearest_cell(CELLS, torch.tensor([0.7, 0.1, 0.9, 0.3])).item() == 1  # top right


def test_mass_on_any_right_box_counts_and_padding_does_not():
    on_third = torch.tensor([[0.0, 0.0, 9.0, 0.0]])  # the map is sure of the bottom-left cell
    target = torch.tensor([[0.6, 0.6, 0.9, 0.9]])  # the oracle chose the bottom-right one
    other = torch.tensor([[[0.1, 0.6, 0.4, 0.9]]])  # ... and bottom-left is as right
    alone = click_loss(on_third, CELLS, target)
    both = click_loss(on_third, CELLS, torch.cat([target.unsqueeze(1), other], 1))
    assert alone > 8 and both < 1e-3
    padded = torch.cat([target.unsqueeze(1), torch.full((1, 1, 4), -1.0)], 1)  # a -1 box is no box
    assert math.isclose(click_loss(on_third, CELLS, padded), alone, rel_tol=1e-6)


def test_coordinates_are_pulled_to_the_nearest_right_point():
    point = torch.tensor([[0.8, 0.8], [0.8, 0.8]])
    others = torch.tensor([[[0.1, 0.6, 0.3, 0.8], [-1, -1, -1, -1]], [[-1, -1, -1, -1], [-1, -1, -1, -1]]])
    coords = torch.tensor([[0.15, 0.65], [0.15, 0.65]])
    pulled = nearest_right_point(coords, point, others)
    torch.testing.assert_close(pulled, torch.tensor([[0.2, 0.7], [0.8, 0.8]]))  # the other box's centre; no other


def test_rows_of_boxes_are_padded_when_read_joined_and_batched():
    rows = boxes_tensor([[], [[0.1, 0.1, 0.2, 0.2], [0.3, 0.3, 0.4, 0.4]], []])
    assert rows.shape == (3, 2, 4) and (rows[0] == -1).all() and rows[1, 1, 2] == 0.4
    assert boxes_tensor([[], []]).shape == (2, 0, 4)
    joined = torch.cat(pad_boxes([rows, boxes_tensor([[]])]))
    assert joined.shape == (4, 2, 4) and (joined[3] == -1).all()
    item = {"images": torch.zeros(2, 4, 4, 3, dtype=torch.uint8), "action": torch.zeros(2, dtype=torch.long),
            "click": torch.zeros(2, 2), "release": torch.zeros(2, 2), "key": torch.zeros(2, dtype=torch.long),
            "box": torch.zeros(2, 4), "focus": torch.zeros(2, 4), "dt": torch.ones(2), "instruction": ["a", "a"],
            "text": ["", ""], "task": "t"}  # fmt: skip
    no_parts = {"parts": torch.full((2, 0, 8), -1.0)}
    batch = collate_episodes([item | no_parts | {"others": rows[1:3]}, item | no_parts | {"others": torch.full((2, 0, 4), -1.0)}])
    assert batch["others"].shape == (2, 2, 2, 4) and batch["others"][0, 0, 1, 0] == 0.3 and (batch["others"][1] == -1).all()
