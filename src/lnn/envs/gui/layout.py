"""Seeded placement of elements: each in its own cell of a grid, jittered inside it.

One element per cell keeps elements apart by construction (at least 2 * MARGIN between any two), with no
rejection sampling, so placement is fast and always succeeds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from lnn.envs.base import Box
from lnn.envs.gui.render import CONTENT

MARGIN = 0.012  # the least gap between an element and the border of its cell (~1 px at 96 px)


def grid_boxes(
    rng: random.Random,
    sizes: Sequence[tuple[float, float]],
    cols: int,
    rows: int,
    area: Box = CONTENT,
) -> list[Box]:
    """One box per (width, height) in `sizes`, in distinct random cells of a cols x rows grid over area."""
    ax0, ay0, ax1, ay1 = area
    cw, ch = (ax1 - ax0) / cols, (ay1 - ay0) / rows
    if len(sizes) > cols * rows:
        raise ValueError(f"{len(sizes)} elements do not fit a {cols}x{rows} grid")
    boxes = []
    for cell, (w, h) in zip(rng.sample(range(cols * rows), len(sizes)), sizes):
        if w + 2 * MARGIN > cw or h + 2 * MARGIN > ch:
            raise ValueError(f"an element of {w:.3f}x{h:.3f} does not fit a cell of {cw:.3f}x{ch:.3f}")
        x0 = ax0 + (cell % cols) * cw + rng.uniform(MARGIN, cw - w - MARGIN)
        y0 = ay0 + (cell // cols) * ch + rng.uniform(MARGIN, ch - h - MARGIN)
        boxes.append((x0, y0, x0 + w, y0 + h))
    return boxes
