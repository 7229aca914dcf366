"""Finding a named word on the screen by its look, even a word never seen in training.

The instruction's named text (`named_text`: the first quoted span, else the first capitalised word after
the first, e.g. a sender's name) is drawn as a small grayscale strip with Liberation Sans — the font
Chromium draws for Arial, MiniWoB's font — at the page's size and scaled as the screenshot is
(`render_strip`). `TextMatch` runs the strip and the screen through one small CNN (shared weights: a
word is matched by its look, never learned by name) and slides the strip's features over the screen's as
a per-sample kernel (normalised cross-correlation); the best match inside each map cell becomes one
channel the click and attention scorers can read: "the named text is here".

The web page draws the same strip with canvas fillText ("10px Liberation Sans", Arial) and feeds it to
the exported step as its `strip` input (export/web/lnn.js).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lnn.errors import ConfigError
from lnn.liquid.cell import tracing

FONT_DIRS = ("/usr/share/fonts/truetype/liberation", "/usr/share/fonts/liberation-sans", "/usr/share/fonts/liberation")
STRIP = (18, 66)  # (height, width) in screen pixels: odd after the stride-2 CNN (9 x 33), so the match is centred
PAGE_FONT_PX = 10  # MiniWoB's #area text (core.css)
# Drawn this many times larger and box-averaged down: unhinted coverage, as Chromium draws text (its canvas
# strips correlate 0.88-0.99 with these, 0.5-0.8 with Pillow's hinted 10 px glyphs: tests/export/test_browser_match.py)
SUPERSAMPLE = 8
QUOTED = re.compile(r"\"([^\"]+)\"|'([^']+)'")
CAPITALISED = re.compile(r"\b[A-Z][\w'-]*")


@lru_cache(maxsize=None)
def font_file(bold: bool = False) -> Path:
    name = "LiberationSans-Bold.ttf" if bold else "LiberationSans-Regular.ttf"
    for folder in FONT_DIRS:
        if (Path(folder) / name).exists():
            return Path(folder) / name
    raise ConfigError("match_text", f"{name} not found in {', '.join(FONT_DIRS)}; install fonts-liberation")


def named_text(instruction: str) -> str:
    """What the instruction names: its first quoted span; else its first capitalised word after the first
    (`Find the email by Marlena and ...` -> Marlena); else nothing."""
    quoted = QUOTED.search(instruction)
    if quoted:
        return quoted.group(1) or quoted.group(2)
    capitalised = CAPITALISED.findall(instruction)
    return capitalised[1] if len(capitalised) > 1 else ""


@lru_cache(maxsize=4096)  # training draws the same few instructions over and over
def render_strip(text: str, font_px: float = PAGE_FONT_PX, scale: tuple[float, float] = (1.0, 1.0),
                 bold: bool = False) -> np.ndarray:  # fmt: skip
    """The text drawn dark on white at font_px page pixels (unhinted: SUPERSAMPLE), centred, scaled (x, y) as
    the screenshot is -> (STRIP) float32 ink in [0, 1] (1 = black), read-only (cached); longer text is cut
    at the strip's edges. Empty: all zero."""
    from PIL import Image, ImageDraw, ImageFont

    height, width = STRIP
    page = (max(1, round(width / scale[0])), max(1, round(height / scale[1])))  # the strip's size on the page
    image = Image.new("L", (page[0] * SUPERSAMPLE, page[1] * SUPERSAMPLE), 255)
    if text:
        font = ImageFont.truetype(str(font_file(bold)), max(1, round(font_px)) * SUPERSAMPLE)
        ImageDraw.Draw(image).text((image.width / 2, image.height / 2), text, fill=0, font=font, anchor="mm")
    image = image.resize((width, height), Image.BOX)
    strip = 1 - np.asarray(image, np.float32) / 255
    strip.setflags(write=False)
    return strip


BODY = {"font_px": PAGE_FONT_PX, "bold": False}  # the default style (model.match_styles): body text


def strips(instructions: list[str], styles=(BODY,), scale: tuple[float, float] = (1.0, 1.0)) -> Tensor:
    """(N,) instructions -> (N, S, *STRIP): their named text drawn in each of S styles ({font_px, bold})."""
    drawn = [[render_strip(named_text(i), style["font_px"], scale, style["bold"]) for style in styles]
             for i in instructions]  # fmt: skip
    return torch.from_numpy(np.array(drawn, np.float32).reshape(len(instructions), len(styles), *STRIP))


def strip_spec(scale: tuple[float, float], styles=(BODY,)) -> dict:
    """How `strips` draws, for whoever draws its own (the export's manifest: the web page, the ONNX agent)."""
    return {"size": list(STRIP), "font": "Liberation Sans (Chromium's Arial)", "font_px": styles[0]["font_px"],
            "styles": [dict(style) for style in styles], "scale": list(scale),
            "text": "the instruction's first quoted span ('…' or \"…\"), else its first capitalised word after the "
                    "first (lnn.models.glyphs.named_text); with instruction=pixels, or nothing named: all zero",
            "drawing": "black on white, centred, in a box of size / scale page pixels, resized to size (bilinear); "
                       "the value is the ink, 1 − gray / 255"}  # fmt: skip


def ink(images: Tensor) -> Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 1, H, W) darkness (1 = black), as the strips are drawn."""
    return 1 - images.mean(1, keepdim=True)


def correlate(f: Tensor, k: Tensor) -> Tensor:
    """Each sample's map slid over by each of its own kernels: f (N, C, h, w), k (N, S, C, kh, kw) (odd sides)
    -> (N, S, h, w), zero-padded to keep the size (a cross-correlation, as conv2d computes).

    Through FFTs in PyTorch: 4.5x faster than a matmul for a training batch (32 frames of 210 x 160, forward
    and backward), and the map's transform is shared by the S kernels. An ONNX graph gets `rows_correlate`
    (onnxruntime-web has no FFT), equal up to float rounding."""
    if tracing():
        return rows_correlate(f, k)
    h, w = f.shape[-2:]
    kh, kw = k.shape[-2:]
    size = (h + kh - 1, w + kw - 1)  # no wrap-around: the full linear correlation fits
    spectrum = torch.fft.rfft2(f, size).unsqueeze(1) * torch.fft.rfft2(k.flip(-2, -1), size)  # convolution theorem
    full = torch.fft.irfft2(spectrum.sum(2), size)  # (N, S, h + kh - 1, w + kw - 1)
    return full[..., kh // 2 : kh // 2 + h, kw // 2 : kw // 2 + w]


def rows_correlate(f: Tensor, k: Tensor) -> Tensor:
    """`correlate` as one plain batched matmul, for ONNX graphs (any batch size).

    The map's rows, shifted once per kernel row, are stacked (kh copies of the map); every kernel column
    of every style weighs them in one matmul, (S·kw, C·kh) @ (C·kh, h·(w + kw − 1)); the kw column
    results, each shifted by its column, add up. 2.4x faster than a Toeplitz (banded) matmul for the
    match of two styles in onnxruntime: the styles share the map's copies, and no band of zeros is
    multiplied. (A Conv with the kernels as weights is slower still: two output channels.) The shifts are
    `staggered` copies, not kh + kw slices: onnxruntime-web pays for each op."""
    n, styles, channels, kh, kw = k.shape
    h, w = f.shape[-2:]
    wide = w + kw - 1
    padded = F.pad(f, (kw // 2, kw // 2, kh // 2, kh // 2)).flatten(2)  # (N, C, (h + kh - 1)·wide)
    rows = staggered(padded.unsqueeze(2).expand(-1, -1, kh, -1), wide, h * wide)  # (N, C, kh, h·wide)
    weights = k.permute(0, 1, 4, 2, 3).reshape(n, styles * kw, channels * kh)  # (N, S·kw, C·kh)
    columns = torch.matmul(weights, rows.reshape(n, channels * kh, h * wide)).view(n, styles, kw, h * wide)
    # column j's result read j places on: within each row, as j + (a kept place < w) < wide
    return staggered(columns, 1, h * wide).sum(2).view(n, styles, h, wide)[..., :w]


def staggered(x: Tensor, shift: int, length: int) -> Tensor:
    """x (..., K, L) -> (..., K, length), row i read from i·shift on: x[..., i, i·shift : i·shift + length].
    One pad and a reshape, where K slices would be K ops. Past a row's end it reads the next row's start
    (then zeros): the caller keeps those places out of what it uses."""
    *lead, rows, size = x.shape
    flat = F.pad(x.reshape(*lead, rows * size), (0, rows * shift))
    return flat.view(*lead, rows, size + shift)[..., :length]


def box_sum(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Sums over the zero-padded (odd) size window around each place: two 1-D pools (a 9 x 33 pool is 7x
    slower in onnxruntime)."""
    (kh, kw), area = size, size[0] * size[1]
    rows = F.avg_pool2d(x, (kh, 1), 1, (kh // 2, 0), count_include_pad=True)
    return F.avg_pool2d(rows, (1, kw), 1, (0, kw // 2), count_include_pad=True) * area


class TextMatch(nn.Module):
    """(screen ink (N, 1, H, W), strip (N, S, *STRIP), cell) -> (N, 1, ceil(H / cell), ceil(W / cell)):
    how well the named text matches around each place (normalised cross-correlation in [-1, 1]), its best
    inside each map cell of `cell` x `cell` screen pixels (cells from the top left, as a CNN of stride-2
    layers lays them). An all-blank strip (nothing named) gives zeros. Any batch size, also in ONNX.

    `stride` 2 or 4, or [rows, columns] of them: the places matched, every 2nd or 4th screen pixel (the features'
    second convolution strides too). At 4 the match costs a fourteenth of the multiply-adds (the browser step's
    largest matmul), and finds a held-out word a quarter less often: a word's place is not aligned to 4 px. Along
    its line is where that counts: [4, 2] with 4 channels costs an eighth and finds ~96% of held-out words where 2
    finds ~98% ([2, 4]: ~89%; tests/models/test_glyphs.py's pointer, 3 seeds)."""

    def __init__(self, channels: int = 8, stride: int | Sequence[int] = 2):
        super().__init__()
        self.stride = match_stride(stride)
        if not (isinstance(channels, int) and channels >= 1):
            raise ConfigError("match_channels", f"must be a positive integer, got {channels!r}")
        self.features = nn.Sequential(nn.Conv2d(1, channels, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(channels, channels, 3, stride=[s // 2 for s in self.stride],
                                                padding=1))  # fmt: skip

    def forward(self, screen: Tensor, strip: Tensor, cell: int, keep: Tensor | None = None, top: int = 0) -> Tensor:
        """strip (N, S, *STRIP): the named text in S styles, the best style's match kept at each place.
        keep (1, 1, h, w) at the match's stride: 0 where no match may count (the page's own copy of the instruction);
        top: its rows above which keep is all 0, not computed (MiniWoB's query box: a fifth of the map)."""
        n, styles = strip.shape[:2]
        f = self.features(screen)  # (N, C, h, w) at the match's stride
        k = self.features(strip.reshape(n * styles, 1, *strip.shape[2:]))  # (N·S, C, kh, kw)
        kh, kw = k.shape[-2:]
        margin = min(top, kh // 2)  # the rows above `top` that its windows read
        f = f[:, :, top - margin :]
        k = k - k.mean((2, 3), keepdim=True)  # zero-mean per channel: <k, f> = <k, f - its local mean>
        size = kh * kw
        dot = correlate(f, k.view(n, styles, *k.shape[1:]))  # (N, S, h - top + margin, w)
        local_sum = box_sum(f, (kh, kw))  # per channel
        sum_f2 = box_sum(f.pow(2).sum(1, keepdim=True), (kh, kw))
        spread = (sum_f2 - local_sum.pow(2).sum(1, keepdim=True) / size).clamp(min=0)  # Σ (f - local mean)²
        norm_k = k.pow(2).sum((1, 2, 3)).sqrt().view(n, styles, 1, 1)
        named = (strip.flatten(1).amax(1) > 0).to(f.dtype).view(n, 1, 1, 1)  # a blank strip: no match anywhere
        score = named * dot / (norm_k * (spread + 1e-6).sqrt() + 1e-3)  # + 1e-6: sqrt's gradient at 0 is infinite
        score = F.pad(score.amax(1, keepdim=True)[..., margin:, :], (0, 0, top, 0))  # the best style at each place
        if keep is not None:
            score = score * keep
        pool = [cell // s for s in self.stride]
        return F.max_pool2d(score, pool, pool, ceil_mode=True)


def match_stride(stride) -> tuple[int, int]:
    """model.match_stride: 2, 4 or [rows, columns] of them -> (rows, columns) screen pixels between matched places."""
    pair = [stride, stride] if isinstance(stride, int) and not isinstance(stride, bool) else stride
    if not (isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2 and all(s in (2, 4) and not isinstance(s, bool) for s in pair)):  # fmt: skip
        raise ConfigError("match_stride", f"must be 2, 4 or [rows, columns] of them (screen pixels between matched "
                                          f"places; [4, 2]: coarse down the page, fine along a line), got {stride!r}")  # fmt: skip
    return int(pair[0]), int(pair[1])
