"""Square frames -> the inputs of LFM2-VL's SigLIP2 NaFlex encoder, built without the processor.

The processor (which needs torchvision and a local model directory) resizes, tiles and normalises;
for square frames of a fixed size the same tensors are simply: pixels normalised with mean 0.5 and
std 0.5, cut into patch × patch squares in row-major order, each flattened as (patch, patch, channel),
all patches real (`pixel_attention_mask` all ones), `spatial_shapes` the patch grid (rows, columns).
After the projector's 2× pixel-unshuffle the image becomes (rows/2)·(cols/2) tokens, row-major.
"""

from __future__ import annotations

import torch
from torch import Tensor


def patchify(images: Tensor, patch: int) -> tuple[Tensor, Tensor, Tensor]:
    """(N, 3, S, S) in [0, 1] -> pixel_values (N, P, patch²·3), pixel_attention_mask (N, P), spatial_shapes (N, 2)."""
    n, c, height, width = images.shape
    rows, cols = height // patch, width // patch
    x = (images[:, :, : rows * patch, : cols * patch] - 0.5) / 0.5
    x = x.reshape(n, c, rows, patch, cols, patch).permute(0, 2, 4, 3, 5, 1).reshape(n, rows * cols, patch * patch * c)
    mask = torch.ones(n, rows * cols, dtype=torch.long, device=images.device)
    shapes = torch.tensor([[rows, cols]], dtype=torch.long, device=images.device).expand(n, 2)
    return x, mask, shapes


def token_grid(image_size: int, patch: int, factor: int) -> Tensor:
    """(2, cells): the (x, y) centres in [0, 1] of the image tokens of a square frame, in token order."""
    side = image_size // patch // factor
    centres = (torch.arange(side, dtype=torch.float32) + 0.5) / side
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([xs, ys]).flatten(1)
