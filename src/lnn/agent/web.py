"""Any web page as an env (the seed's form: `python -m lnn.agent ckpt=... --url <page> --task "..."`).

The page is opened in Chromium at a fixed viewport; an observation is a screenshot of the whole
viewport, the instruction is the user's text. Nothing on an arbitrary page says whether the task was
done, so the reward is always 0: an episode ends when the policy answers `done` or runs out of steps,
and the trace shows what it did.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from lnn.envs.base import Action, Env, EpisodeAborted, FrameClock, Observation, OracleError, OracleStep
from lnn.frames import resize_frame

SCROLL_PX = 200


def page_url(url: str) -> str:
    """A URL as given, or a local file path (relative or absolute) as a file:// URL."""
    if "://" in url or url.startswith(("about:", "data:")):
        return url
    path = Path(url).expanduser()
    if not path.exists():
        from lnn.errors import ConfigError

        raise ConfigError("url", f"{url} is neither a URL (http://, file://) nor an existing file")
    return path.resolve().as_uri()


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class WebPageEnv(Env):
    """One page, `instruction` as the task; clicks at normalised points of the viewport."""

    def __init__(self, url: str, instruction: str, viewport: tuple[int, int] = (1280, 720), image_size: int | list[int] | None = None,
                 headless: bool = True, step_timeout_s: float = 20.0, task: str = "web"):  # fmt: skip
        from lnn.envs.miniwob.browser import DEFAULT_CHROMIUM, Browser

        self.url, self.instruction, self.image_size = page_url(url), instruction, image_size
        self.viewport = {"width": int(viewport[0]), "height": int(viewport[1])}
        self.task_names = (task,)
        self._make = lambda: Browser(DEFAULT_CHROMIUM, headless=headless, timeout_s=step_timeout_s, viewport=self.viewport)
        self._browser = self._make()
        self.restarts = 0
        self._clock = FrameClock()  # observations' dt: wall-clock seconds between screenshots

    def _guard(self, what: str, fn):
        from playwright.sync_api import Error as PlaywrightError

        try:
            return fn()
        except PlaywrightError as e:
            self._browser.close()
            self._browser = self._make()
            self.restarts += 1
            raise EpisodeAborted(f"{what}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None

    def reset(self, seed: int, task: str | None = None) -> Observation:
        page = self._browser.page
        self._guard("open " + self.url, lambda: page.goto(self.url, wait_until="load"))
        self._clock.reset()
        return self._observe()

    def step(self, action: Action):
        page = self._browser.page
        x, y = action.x * (self.viewport["width"] - 1), action.y * (self.viewport["height"] - 1)
        info: dict = {}

        def perform():
            if action.type == "click":
                page.mouse.click(x, y)
            elif action.type == "drag":  # pressed at (x, y), moved in steps (pages listen to mousemove), released
                page.mouse.move(x, y)
                page.mouse.down()
                x2, y2 = action.x2 * (self.viewport["width"] - 1), action.y2 * (self.viewport["height"] - 1)
                page.mouse.move(x2, y2, steps=8)
                page.mouse.up()
            elif action.type == "scroll":
                page.mouse.move(x, y)
                page.mouse.wheel(0, -SCROLL_PX if action.text == "up" else SCROLL_PX)
            elif action.type == "type":
                page.keyboard.type(action.text)
            elif action.type == "key":
                page.keyboard.press(action.text or "Enter")
            elif action.type == "navigate" and action.text:
                page.goto(page_url(action.text))
            page.wait_for_timeout(100)  # let the page react before the next screenshot

        self._guard(f"{action.type}", perform)
        done = action.type == "done"
        info.update(success=False, reason="agent-done" if done else None)
        return self._observe(), 0.0, done, info

    def oracle(self) -> OracleStep:
        raise OracleError("an arbitrary web page has no oracle")

    def _observe(self) -> Observation:
        png = self._guard("screenshot", lambda: self._browser.page.screenshot())
        dt = self._clock.tick()
        image = Image.open(io.BytesIO(png)).convert("RGB")
        if self.image_size:
            image = resize_frame(image, self.image_size)
        return Observation(np.asarray(image, dtype=np.uint8), self.instruction, self.task_names[0], dt)

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
