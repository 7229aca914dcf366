"""Visual traces: the frames an agent saw, with its predicted click drawn, as an animated GIF or a strip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CAPTION = 34  # px of text under each frame


def _font(size: int = 11):
    try:
        return ImageFont.truetype("LiberationSans-Regular.ttf", size)
    except OSError:
        return ImageFont.load_default()


def draw_step(screenshot: np.ndarray, action, instruction: str, step: int, width: int = 320,
              aspect: float | None = None, verdict: str = "") -> Image.Image:  # fmt: skip
    """One frame scaled to `width` px (height by `aspect` = h/w of the original page, else as given),
    the click point drawn as a red cross-hair, the instruction and action written below."""
    frame = Image.fromarray(np.asarray(screenshot, dtype=np.uint8))
    height = round(width * (aspect if aspect else frame.height / frame.width))
    frame = frame.resize((width, height), Image.NEAREST)
    canvas = Image.new("RGB", (width, height + CAPTION), "white")
    canvas.paste(frame, (0, 0))
    draw = ImageDraw.Draw(canvas)
    if action.type in ("click", "scroll"):
        x, y = action.x * (width - 1), action.y * (height - 1)
        colour = (230, 0, 40) if action.type == "click" else (0, 90, 230)
        draw.ellipse((x - 7, y - 7, x + 7, y + 7), outline=colour, width=2)
        draw.line((x - 11, y, x + 11, y), fill=colour, width=1)
        draw.line((x, y - 11, x, y + 11), fill=colour, width=1)
    if action.type == "drag":  # a line from where the button is pressed to a ring where it is released
        x, y = action.x * (width - 1), action.y * (height - 1)
        x2, y2 = action.x2 * (width - 1), action.y2 * (height - 1)
        draw.line((x, y, x2, y2), fill=(230, 0, 40), width=2)
        draw.ellipse((x2 - 7, y2 - 7, x2 + 7, y2 + 7), outline=(230, 0, 40), width=2)
    font = _font()
    text = action.type if action.type not in ("click", "scroll") else f"{action.type} ({action.x:.2f}, {action.y:.2f})"
    if action.type == "drag":
        text = f"drag ({action.x:.2f}, {action.y:.2f}) -> ({action.x2:.2f}, {action.y2:.2f})"
    if action.text:
        text += f" {action.text!r}"
    draw.text((3, height + 2), f"{step}: {text} {verdict}".strip(), fill="black", font=font)
    draw.text((3, height + 17), instruction[:60], fill=(90, 90, 90), font=font)
    return canvas


def episode_frames(result, width: int = 320, aspect: float | None = None) -> list[Image.Image]:
    frames = []
    for k, step in enumerate(result.trace):
        last = k == len(result.trace) - 1
        verdict = ("-> success" if result.success else f"-> fail: {result.failure}")[:48] if last else ""
        frames.append(draw_step(step["screenshot"], step["action"], step["instruction"], k + 1, width, aspect, verdict))
    return frames


def write_gif(result, path: Path, width: int = 320, aspect: float | None = None, ms_per_frame: int = 900) -> Path:
    """An animated GIF of one traced episode (its last frame held longer)."""
    frames = episode_frames(result, width, aspect)
    durations = [ms_per_frame] * (len(frames) - 1) + [ms_per_frame * 2]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    return path


def write_strip(results, path: Path, width: int = 160, aspect: float | None = None, per_row: int = 8) -> Path:
    """A PNG contact sheet: each traced episode's frames in order, rows of per_row frames."""
    frames = [f for r in results for f in episode_frames(r, width, aspect)]
    if not frames:
        raise ValueError("no traced steps to draw")
    w, h = frames[0].size
    rows = -(-len(frames) // per_row)
    sheet = Image.new("RGB", (w * min(per_row, len(frames)), h * rows), "white")
    for k, frame in enumerate(frames):
        sheet.paste(frame, ((k % per_row) * w, (k // per_row) * h))
    sheet.save(path)
    return path
