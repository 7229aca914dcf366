"""Drawing GUI scenes with Pillow.

A scene is a light background under a dark header bar, plus elements, each drawn inside its own box.
Boxes are normalised to [0, 1] of the screenshot, so one scene renders at any image size and a box is
directly the `target_box` of the oracle. Everything here is plain ImageDraw primitives: no anti-aliasing,
no per-frame font loading, so a 96 px frame costs well under a millisecond.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lnn.envs.base import Box
from lnn.frames import frame_size

RGB = tuple[int, int, int]

# Six well-separated hues: a tiny CNN tells these apart from single pixels.
COLORS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "orange": (245, 135, 20),
    "yellow": (235, 205, 20),
    "green": (40, 165, 70),
    "blue": (40, 95, 225),
    "purple": (145, 60, 190),
}
# Six shapes with distinct silhouettes at ~16 px.
SHAPES: tuple[str, ...] = ("square", "circle", "triangle", "diamond", "cross", "star")

# Light backgrounds (a nuisance a policy must ignore) and the colours of the window chrome.
BACKGROUNDS: tuple[RGB, ...] = ((245, 245, 245), (236, 241, 248), (248, 243, 233), (238, 246, 238))
HEADER_COLOR: RGB = (58, 70, 94)
HEADER_HEIGHT = 0.12
# The area below the header where elements are placed, with a margin to the edges.
CONTENT: Box = (0.03, HEADER_HEIGHT + 0.03, 0.97, 0.97)

INK: RGB = (30, 30, 30)  # text
PLAIN: RGB = (150, 160, 175)  # memory squares: all candidates look the same ...
HIGHLIGHT: RGB = (250, 210, 40)  # ... except the one lit up on a cue frame
BUTTON: RGB = (205, 210, 220)
FIELD: RGB = (255, 255, 255)
FIELD_BORDER: RGB = (120, 125, 135)
FOCUS: RGB = (30, 110, 240)
SCROLL_TRACK: RGB = (215, 218, 224)
SCROLL_THUMB: RGB = (120, 128, 140)

TEXT_SIZE = 0.105  # font size as a fraction of the image size (10 px at 96 px)


@dataclass(frozen=True)
class Element:
    """One thing on screen, drawn inside `box`.

    kind: a name from SHAPES, "button" (a labelled rounded rectangle), "field" (a text input showing
    `text`, outlined in blue when `focused`) or "label" (text alone, left-aligned in the box).
    """

    kind: str
    box: Box
    fill: RGB = PLAIN
    text: str = ""
    focused: bool = False


@dataclass(frozen=True)
class Scene:
    background: RGB
    elements: tuple[Element, ...]
    scroll: float | None = None  # scrollbar thumb position in [0, 1] (0 = top); None: no scrollbar


SCROLLBAR: Box = (0.94, CONTENT[1], 0.97, CONTENT[3])  # the scrollbar track, right of the content


def darker(color: RGB, factor: float = 0.6) -> RGB:
    return tuple(int(c * factor) for c in color)


def center(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def inside(box: Box, x: float, y: float) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


@functools.lru_cache(maxsize=16)
def _font(px: int) -> ImageFont.FreeTypeFont:
    # Pillow's bundled font at a given size (Pillow >= 10.1): no font file needed, loaded once per size.
    return ImageFont.load_default(size=px)


@functools.lru_cache(maxsize=1024)
def _glyphs(text: str, px: int, anchor: str) -> tuple[Image.Image, int, int]:
    """`text` rasterised once as a mask, with the offset of its top-left corner from the anchor point.

    FreeType layout costs ~60 us a word, more than the rest of a frame; the vocabularies are small, so
    each word is laid out once and then pasted through its mask.
    """
    font = _font(px)
    left, top, right, bottom = font.getbbox(text, anchor=anchor)
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font, anchor=anchor)
    return mask, left, top


def _star(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.45
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def _cross(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    a, b = x0 + (x1 - x0) / 3, x0 + 2 * (x1 - x0) / 3  # the vertical arm spans [a, b]
    c, d = y0 + (y1 - y0) / 3, y0 + 2 * (y1 - y0) / 3  # the horizontal arm spans [c, d]
    return [
        (a, y0),
        (b, y0),
        (b, c),
        (x1, c),
        (x1, d),
        (b, d),
        (b, y1),
        (a, y1),
        (a, d),
        (x0, d),
        (x0, c),
        (a, c),
    ]


class Renderer:
    """Renders scenes at one image size (N or [height, width]: the square scene stretched); caches the
    fonts and the empty window per background."""

    def __init__(self, size):
        self.height, self.width = frame_size(size)
        self.size = min(self.height, self.width)  # what text and paddings scale with
        self._windows: dict[RGB, Image.Image] = {}

    def _px(self, box: Box) -> tuple[int, int, int, int]:
        # Inclusive pixel corners of a normalised box, as ImageDraw wants them.
        w, h = self.width, self.height
        x0, y0 = round(box[0] * w), round(box[1] * h)
        return x0, y0, max(x0, round(box[2] * w) - 1), max(y0, round(box[3] * h) - 1)

    def _window(self, background: RGB) -> Image.Image:
        if background not in self._windows:
            image = Image.new("RGB", (self.width, self.height), background)
            ImageDraw.Draw(image).rectangle(self._px((0, 0, 1, HEADER_HEIGHT)), fill=HEADER_COLOR)
            self._windows[background] = image
        return self._windows[background]

    def render(self, scene: Scene) -> np.ndarray:
        image = self._window(scene.background).copy()
        draw = ImageDraw.Draw(image)
        for element in scene.elements:
            self._draw(draw, element)
        if scene.scroll is not None:
            self._draw_scrollbar(draw, scene.scroll)
        return np.asarray(image)

    def _draw(self, draw: ImageDraw.ImageDraw, e: Element) -> None:
        x0, y0, x1, y1 = b = self._px(e.box)
        edge = darker(e.fill)
        if e.kind == "square":
            draw.rectangle(b, fill=e.fill, outline=edge)
        elif e.kind == "circle":
            draw.ellipse(b, fill=e.fill, outline=edge)
        elif e.kind == "triangle":
            draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=e.fill, outline=edge)
        elif e.kind == "diamond":
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=e.fill, outline=edge)
        elif e.kind == "cross":
            draw.polygon(_cross(x0, y0, x1, y1), fill=e.fill, outline=edge)
        elif e.kind == "star":
            draw.polygon(_star(x0, y0, x1, y1), fill=e.fill, outline=edge)
        elif e.kind == "button":
            # Chamfered corners read as rounded at these sizes; rounded_rectangle costs 5x as much.
            r = max(1, (y1 - y0) // 5)
            corners = [(x0 + r, y0), (x1 - r, y0), (x1, y0 + r), (x1, y1 - r)]
            corners += [(x1 - r, y1), (x0 + r, y1), (x0, y1 - r), (x0, y0 + r)]
            draw.polygon(corners, fill=e.fill, outline=edge)
            self._text(draw, ((x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2), e.text, "mm")
        elif e.kind == "field":
            draw.rectangle(
                b, fill=FIELD, outline=FOCUS if e.focused else FIELD_BORDER, width=2 if e.focused else 1
            )
            pad = max(2, self.size // 32)
            if e.text:
                self._text(draw, (x0 + pad, (y0 + y1 + 1) / 2), e.text, "lm")
            elif e.focused:  # an empty focused field shows its caret
                draw.line([(x0 + pad, y0 + pad), (x0 + pad, y1 - pad)], fill=INK, width=1)
        elif e.kind == "label":
            self._text(draw, (x0, (y0 + y1 + 1) / 2), e.text, "lm")
        else:
            raise ValueError(f"unknown element kind {e.kind!r}")

    def _draw_scrollbar(self, draw: ImageDraw.ImageDraw, position: float) -> None:
        x0, y0, x1, y1 = SCROLLBAR
        draw.rectangle(self._px(SCROLLBAR), fill=SCROLL_TRACK)
        thumb = (y1 - y0) / 2  # the content is two viewports tall
        top = y0 + position * (y1 - y0 - thumb)
        draw.rectangle(self._px((x0, top, x1, top + thumb)), fill=SCROLL_THUMB)

    def _text(self, draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, anchor: str) -> None:
        mask, left, top = _glyphs(text, max(6, round(TEXT_SIZE * self.size)), anchor)
        draw.bitmap((round(xy[0]) + left, round(xy[1]) + top), mask, fill=INK)
