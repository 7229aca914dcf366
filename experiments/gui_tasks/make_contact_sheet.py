"""A contact sheet of the GUI task families: one row per family, every frame of one oracle episode.

The episode shown is the longest of the ten seeds from --seed on, so a family whose episodes vary in
length (scroll-click) shows its longest form.

    python experiments/gui_tasks/make_contact_sheet.py [--size 96] [--seed 0] [--out experiments/gui_tasks/frames.png]

Frames are shown at their real pixels, scaled up without smoothing; a magenta cross marks the oracle's
click point and each frame is captioned with its instruction and the oracle action (timing families:
after the time since the previous frame, "+1.23 s").
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from lnn.envs.gui import TASKS, GuiEnv

ZOOM = 3
CAPTION_LINES = 3
LINE = 14


def episode_frames(env: GuiEnv, task: str, seed: int) -> list[tuple[Image.Image, str]]:
    """Each frame of the oracle's episode, with the click point drawn and a caption."""
    obs, frames, done = env.reset(seed, task), [], False
    while not done:
        oracle = env.oracle()
        image = Image.fromarray(obs.screenshot).resize((env.image_size * ZOOM,) * 2, Image.NEAREST)
        a = oracle.action
        if a.type == "click":
            x, y, r = a.x * image.width, a.y * image.height, 2 * ZOOM
            draw = ImageDraw.Draw(image)
            draw.line([(x - r, y), (x + r, y)], fill=(255, 0, 255), width=2)
            draw.line([(x, y - r), (x, y + r)], fill=(255, 0, 255), width=2)
        action = a.type + (f" {a.text}" if a.text else "")
        shown = f"+{obs.dt:.2f} s: " if obs.dt != 1.0 else ""  # the timing families: time since the last frame
        frames.append((image, f"{shown}{obs.instruction}  -> {action}"))
        obs, _, done, _ = env.step(a)
    return frames


def contact_sheet(size: int, seed: int) -> Image.Image:
    env = GuiEnv(image_size=size)
    rows = {
        task: max((episode_frames(env, task, s) for s in range(seed, seed + 10)), key=len) for task in TASKS
    }
    cell = size * ZOOM
    label_w, pad = 130, 8
    cols = max(len(frames) for frames in rows.values())
    row_h = cell + CAPTION_LINES * LINE + pad
    sheet = Image.new("RGB", (label_w + cols * (cell + pad), len(rows) * row_h + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    wrap = max(10, cell // 7)
    for r, (task, frames) in enumerate(rows.items()):
        y = pad + r * row_h
        draw.text((4, y + cell // 2), f"{task}\n({TASKS[task].kind})", fill=(0, 0, 0), font=font)
        for c, (image, caption) in enumerate(frames):
            x = label_w + c * (cell + pad)
            sheet.paste(image, (x, y))
            for i, line in enumerate(textwrap.wrap(caption, wrap)[:CAPTION_LINES]):
                draw.text((x, y + cell + 2 + i * LINE), line, fill=(0, 0, 0), font=font)
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "frames.png")
    args = parser.parse_args()
    contact_sheet(args.size, args.seed).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
