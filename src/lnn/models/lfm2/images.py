"""Frames -> the inputs of LFM2-VL's SigLIP2 NaFlex encoder, built without the processor (which needs torchvision).

Frames of any size with `max_image_tokens` (`frame_layout`, `layout_pixels`, below): cut as the processor
cuts them. Otherwise square frames of a fixed size, for which the processor's tensors are simply: pixels
normalised with mean 0.5 and std 0.5, cut into patch × patch squares in row-major order, each flattened as
(patch, patch, channel), all patches real (`pixel_attention_mask` all ones), `spatial_shapes` the patch grid
(rows, columns). After the projector's 2× pixel-unshuffle the image becomes (rows/2)·(cols/2) tokens, row-major.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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


# --- frames of any size, cut as LFM2-VL's processor cuts them (`max_image_tokens` set) ----------------------------
# A port of transformers' Lfm2VlImageProcessor layout (smart_resize, the too-large test, the tile grid): that
# processor needs torchvision, which this project does not require. Its options keep their names here.


@dataclass(frozen=True)
class FrameLayout:
    """A frame cut into `rows` × `cols` tiles of `tile` px (1 × 1: not tiled) and resized whole to `size`
    (height, width) px: the only crop when not tiled, else the thumbnail after the tiles (if `thumbnail`)."""

    rows: int
    cols: int
    tile: int
    size: tuple[int, int]
    thumbnail: bool

    @property
    def tiled(self) -> bool:
        return self.rows * self.cols > 1

    def grids(self, patch: int, factor: int) -> list[tuple[int, int]]:
        """The image-token grid (rows, columns) of each crop, in the processor's order."""
        side = math.ceil(self.tile // patch / factor)
        whole = (math.ceil(self.size[0] // patch / factor), math.ceil(self.size[1] // patch / factor))
        if not self.tiled:
            return [whole]
        return [(side, side)] * (self.rows * self.cols) + ([whole] if self.thumbnail else [])

    def tokens(self, patch: int, factor: int) -> int:
        return sum(h * w for h, w in self.grids(patch, factor))

    def crops(self, patch: int, factor: int) -> list[tuple[str | None, int]]:
        """(marker, image tokens) of each crop in the processor's order: <|img_row_R_col_C|> per tile, then
        <|img_thumbnail|>; an untiled frame has no marker (Lfm2VlProcessor._build_image_tokens)."""
        counts = [h * w for h, w in self.grids(patch, factor)]
        if not self.tiled:
            return [(None, counts[0])]
        names = [f"<|img_row_{r + 1}_col_{c + 1}|>" for r in range(self.rows) for c in range(self.cols)]
        return list(zip(names + (["<|img_thumbnail|>"] if self.thumbnail else []), counts))

    def cells(self, patch: int, factor: int) -> Tensor:
        """(2, tokens): the (x, y) centre in [0, 1] of the frame of every image token, in token order."""
        def grid(h, w, top=0.0, left=0.0, height=1.0, width=1.0):
            ys, xs = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
            return torch.stack([left + xs * width, top + ys * height]).flatten(1)

        grids = self.grids(patch, factor)
        parts = [grid(*grids[r * self.cols + c], r / self.rows, c / self.cols, 1 / self.rows, 1 / self.cols)
                 for r in range(self.rows) for c in range(self.cols)] if self.tiled else []  # fmt: skip
        if not self.tiled or self.thumbnail:
            parts.append(grid(*grids[-1]))
        return torch.cat(parts, 1).float()


def frame_layout(height: int, width: int, patch: int, factor: int, min_image_tokens: int, max_image_tokens: int,
                 max_tiles: int, tile_size: int, min_tiles: int = 2, use_thumbnail: bool = True,
                 max_pixels_tolerance: float = 2.0) -> FrameLayout:  # fmt: skip
    """How LFM2-VL's processor cuts a height × width frame (its `_get_split_layout`): resized with its aspect
    kept to between min and max image tokens; a frame over max_pixels_tolerance × the max is also tiled."""
    unit = patch * factor
    h_bar, w_bar = max(unit, round(height / unit) * unit), max(unit, round(width / unit) * unit)
    low, high = min_image_tokens * unit**2, max_image_tokens * unit**2
    rounded = max(patch, round(height / unit) * unit) * max(patch, round(width / unit) * unit)
    too_large = rounded > high * max_pixels_tolerance
    if h_bar * w_bar > high:
        beta = math.sqrt(height * width / high)
        h_bar = max(unit, math.floor(height / beta / unit) * unit)
        w_bar = max(unit, math.floor(width / beta / unit) * unit)
    elif h_bar * w_bar < low:
        beta = math.sqrt(low / (height * width))
        h_bar, w_bar = math.ceil(height * beta / unit) * unit, math.ceil(width * beta / unit) * unit
    rows = cols = 1
    if too_large and not min_tiles == max_tiles == 1:
        cols, rows = _closest_grid(width / height, min_tiles, max_tiles, height * width, tile_size)
    return FrameLayout(rows, cols, tile_size, (h_bar, w_bar), use_thumbnail)


def _closest_grid(aspect: float, min_tiles: int, max_tiles: int, area: int, tile_size: int) -> tuple[int, int]:
    """(columns, rows) of the tile grid closest to the aspect ratio (the processor's find_closest_aspect_ratio)."""
    ratios = sorted({(w, h) for n in range(min_tiles, max_tiles + 1) for w in range(1, n + 1) for h in range(1, n + 1)
                     if min_tiles <= w * h <= max_tiles}, key=lambda r: r[0] * r[1])  # fmt: skip
    best, best_diff = (1, 1), float("inf")
    for w, h in ratios:
        diff = abs(aspect - w / h)
        if diff < best_diff:
            best, best_diff = (w, h), diff
        elif diff == best_diff and area > 0.5 * tile_size * tile_size * w * h:
            best = (w, h)
    return best


def layout_pixels(frames: Tensor, layout: FrameLayout, patch: int) -> tuple[Tensor, Tensor, Tensor]:
    """(N, 3, H, W) in [0, 1] -> each frame's crops (tiles, then the whole frame resized) as NaFlex inputs:
    pixel_values (N·crops, P, patch²·3) padded to the largest crop, pixel_attention_mask, spatial_shapes."""
    resize = lambda x, size: F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    crops = []
    if layout.tiled:
        grid = resize(frames, (layout.rows * layout.tile, layout.cols * layout.tile))
        n, c, t = frames.shape[0], frames.shape[1], layout.tile
        tiles = grid.view(n, c, layout.rows, t, layout.cols, t).permute(0, 2, 4, 1, 3, 5)  # (N, rows, cols, 3, t, t)
        crops += [tiles[:, r, col] for r in range(layout.rows) for col in range(layout.cols)]
    if not layout.tiled or layout.thumbnail:
        crops.append(resize(frames, layout.size))
    parts = [patchify(crop.clamp(0, 1), patch) for crop in crops]
    longest = max(p[0].shape[1] for p in parts)
    pixels = torch.stack([F.pad(p[0], (0, 0, 0, longest - p[0].shape[1])) for p in parts], 1)  # (N, crops, P, D)
    mask = torch.stack([F.pad(p[1], (0, longest - p[1].shape[1])) for p in parts], 1)
    shapes = torch.stack([p[2] for p in parts], 1)
    return pixels.flatten(0, 1), mask.flatten(0, 1), shapes.flatten(0, 1)
