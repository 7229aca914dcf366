"""What `image_size` means wherever a screenshot is resized: N (an N × N square, as Lite has always had)
or [height, width] (e.g. [210, 160]: MiniWoB's task area unstretched).

Click points and target boxes are fractions of the frame's width and height, so they hold at any size.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

from PIL import Image

from lnn.errors import ConfigError


def frame_size(size, key: str = "image_size", minimum: int = 1) -> tuple[int, int]:
    """`size` (N or [height, width]) -> (height, width); a ConfigError naming `key` when it is neither."""
    if isinstance(size, Integral) and not isinstance(size, bool):
        hw = (int(size), int(size))
    elif (isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2
          and all(isinstance(s, Integral) and not isinstance(s, bool) for s in size)):  # fmt: skip
        hw = (int(size[0]), int(size[1]))
    else:
        raise ConfigError(key, f"must be an integer N (N × N frames) or [height, width], got {size!r}")
    if min(hw) < minimum:
        raise ConfigError(key, f"{size!r} is too small: each side must be >= {minimum}")
    return hw


def plain_size(size, key: str = "image_size", minimum: int = 1) -> int | list[int]:
    """`size` checked and as plain values, as specs, cache keys and manifests store it: N or [height, width]."""
    height, width = frame_size(size, key, minimum)
    return height if isinstance(size, Integral) else [height, width]


def size_text(size) -> str:
    """`size` as people write it: "64×64", "210×160" (height × width)."""
    return "{}×{}".format(*frame_size(size))


def resize_frame(image: Image.Image, size) -> Image.Image:
    """A PIL image stretched to `size` (N or [height, width]): stretched, not letterboxed, so normalised
    points and boxes stay valid."""
    height, width = frame_size(size)
    return image if image.size == (width, height) else image.resize((width, height), Image.BILINEAR)
