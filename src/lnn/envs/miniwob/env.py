"""MiniWoB++ tasks in real headless Chromium, behind lnn's Env interface.

One env = one local HTTP server thread + one Chromium + one page, reused for every episode: a reset
re-seeds the page's RNG and regenerates the problem in place (>100/s) instead of reloading. An env is
not thread-safe (Playwright's sync API belongs to the thread that started it; envs of one thread share
its driver); to record in parallel, build one env per worker process from its plain, picklable
constructor arguments.
"""

from __future__ import annotations

import io
import operator
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

# EpisodeAborted, OracleError: shared by every env (lnn.envs.base), re-exported here
from lnn.envs.base import Action, Env, EpisodeAborted, FrameClock, Observation, OracleError, OracleStep, Part
from lnn.errors import ConfigError
from lnn.frames import plain_size, resize_frame
from lnn.envs.miniwob.browser import DEFAULT_CHROMIUM, VIEWPORT, Browser
from lnn.envs.miniwob.server import TaskServer, available_tasks

PROBE_JS = (Path(__file__).parent / "probe.js").read_text()
# The task area: the viewport's top-left 160x210 CSS px, where the task's #wrap sits. As in MiniWoB's own
# env it is a fixed viewport region, so the screenshot and the clicks agree even if the page scrolls.
TASK_AREA = {"x": 0, "y": 0, "width": 160, "height": 210}
SCROLL_PX = 100  # one scroll action moves the wheel this far
SCROLL_DELTAS = {"down": (0, SCROLL_PX), "up": (0, -SCROLL_PX), "right": (SCROLL_PX, 0), "left": (-SCROLL_PX, 0)}
DRAG_MOVES = 10  # mousemove events between a drag's press and release
# setTimeout fires at once for delays over 2**31-1 ms, so the task's own time limit must stay below.
MAX_EPISODE_TIME_S = 2**31 // 1000 - 1


def _area_px(x: float, y: float) -> tuple[float, float]:
    """A normalised point of the task area in viewport CSS px, clamped inside (x = 1 stays inside)."""
    return (min(max(float(x), 0.0), 1.0) * (TASK_AREA["width"] - 1e-3),
            min(max(float(y), 0.0), 1.0) * (TASK_AREA["height"] - 1e-3))


def _box(values) -> tuple[float, float, float, float] | None:
    return None if values is None else tuple(float(v) for v in values)


def _oracle_step(found: dict) -> OracleStep:
    """The page oracle's step (lnn.oracle in probe.js) as an OracleStep: a click or drag targets the box
    the press lands in (and focuses what its answer is read from, where the oracle names it: count-sides'
    polygon; the other boxes a click would be as right in: click-shape's other fitting shapes; what parts of the
    page are: click-shape's shapes); a type
    or key step targets nothing and focuses the field it goes to."""
    if found["kind"] == "type":
        return OracleStep(Action("type", text=found["text"]), focus_box=_box(found["field"]))
    if found["kind"] == "key":
        return OracleStep(Action("key", text=found["key"]), focus_box=_box(found["field"]))
    box = _box(found["box"])
    # a point a real press hits; the box centre if the target is covered everywhere (the step will fail)
    x, y = found["point"] or ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    if box is None:  # the oracle named a bare point: the 4x4 px around it
        dx, dy = 2 / TASK_AREA["width"], 2 / TASK_AREA["height"]
        box = (x - dx, y - dy, x + dx, y + dy)
    if found["kind"] == "drag":
        x2, y2 = found["to"]
        return OracleStep(Action("drag", float(x), float(y), x2=float(x2), y2=float(y2)), target_box=box)
    others = tuple(_box(other) for other in found.get("others", ()))
    parts = tuple(Part.named(_box(part["box"]), **{k: v for k, v in part.items() if k != "box"})
                  for part in found.get("parts", ()))
    return OracleStep(Action("click", float(x), float(y)), target_box=box, focus_box=_box(found.get("look")),
                      other_boxes=others, parts=parts)


@dataclass
class _Episode:
    task: str
    seed: int
    steps: int = 0
    done: bool = False


class MiniWobEnv(Env):
    """MiniWoB++ task pages from the `miniwob` package, acted on with real mouse and keyboard events.

    Observations show the task area, the viewport's top-left 160x210 CSS px (the task's #wrap); click
    points and oracle boxes are normalised to it. Once an episode ends the page shows MiniWoB's black
    START cover, so the last observation of an episode is that cover. An observation's dt is the
    wall-clock seconds since the previous screenshot (1.0 for an episode's first), so a policy feels the
    page's real time (and the tasks' delayed variants).

    Args:
        tasks: task names (html files of miniwob/html/miniwob/, e.g. "click-button"). reset(seed) without
            a task picks tasks[seed % len(tasks)].
        image_size: None returns the task area as rendered, (210, 160, 3) RGB. [height, width] resizes
            it to (height, width, 3) ([210, 160]: as rendered), an int N stretches it to (N, N, 3):
            stretching (not letterboxing) keeps a normalised click point and target box valid for the
            resized image exactly.
        headless: False shows the window (needs a display).
        step_timeout_s: a reset, step or oracle call that takes longer kills and restarts the browser
            and raises EpisodeAborted (also Playwright's own timeout for a single browser call).
        episode_time_limit_s: the task's own time limit (MiniWoB defaults to 10 s; an agent that thinks
            between steps would time out), up to ~24 days.
        executable_path: the Chromium binary.

    Actions: click at (x, y) of the task area; drag: press at (x, y), move in DRAG_MOVES mousemoves to
    (x2, y2), release; type `text`; key presses `text` (Playwright key names: "Enter", "Tab",
    "Control+A"); scroll at (x, y), `text` one of up/down/left/right (default down),
    100 px; done ends the episode (reward 0 unless the task already ended). navigate has no meaning on a
    task page and is ignored (info["ignored"]).

    Reward: the task's raw reward (MiniWoB's WOB_RAW_REWARD_GLOBAL, in [-1, 1], no time discount) when
    the episode ends, else 0; info["success"] = raw reward > 0; info["env_reward"] is MiniWoB's
    time-discounted reward.
    """

    def __init__(
        self,
        tasks: Sequence[str],
        image_size: int | list[int] | None = None,
        headless: bool = True,
        step_timeout_s: float = 10.0,
        episode_time_limit_s: float = 3600.0,
        executable_path: str = DEFAULT_CHROMIUM,
    ):
        if isinstance(tasks, str):
            tasks = [tasks]
        if not tasks:
            raise ConfigError("tasks", "give at least one MiniWoB task, e.g. tasks=['click-button']")
        known = available_tasks()
        for task in tasks:
            if task not in known:
                raise ConfigError("tasks", f"unknown MiniWoB task {task!r}; available: {', '.join(known)}")
        if image_size is not None:
            image_size = plain_size(image_size, minimum=8)  # None: the raw 160x210
        if not step_timeout_s > 0:
            raise ConfigError("step_timeout_s", f"must be > 0, got {step_timeout_s}")
        if not 0 < episode_time_limit_s <= MAX_EPISODE_TIME_S:
            raise ConfigError("episode_time_limit_s", f"must be in (0, {MAX_EPISODE_TIME_S}], got {episode_time_limit_s}")

        self.task_names = tuple(tasks)
        self.image_size = image_size
        self.headless = headless
        self.step_timeout_s = float(step_timeout_s)
        self.episode_time_limit_s = float(episode_time_limit_s)
        self.executable_path = executable_path
        self.restarts = 0  # browser restarts after faults, for diagnostics
        self._clock = FrameClock()  # observations' dt: wall-clock seconds between screenshots

        self._episode: _Episode | None = None
        self._loaded_task: str | None = None  # the task page currently open
        self._browser: Browser | None = None
        self._server = TaskServer()
        try:
            self._browser = self._launch()
        except BaseException:
            self._server.close()
            raise

    # ---------------------------------------------------------------- Env interface

    def reset(self, seed: int, task: str | None = None) -> Observation:
        seed = operator.index(seed)  # numpy integers too; the page gets a plain JSON number
        if task is None:
            task = self.task_names[seed % len(self.task_names)]
        elif task not in self.task_names:
            raise ConfigError("task", f"{task!r} is not one of this env's tasks {self.task_names}")
        self._episode = None
        self._clock.reset()
        with self._guard(f"reset({seed}, {task!r})"):
            page = self._page
            if self._loaded_task != task:
                self._load(task)
            if not self._pointer_parked:
                # park the pointer outside the task area: where the last episode clicked, it would
                # hover (and highlight) whatever this episode draws there
                page.mouse.move(VIEWPORT["width"] - 1, VIEWPORT["height"] - 1)
                self._pointer_parked = True
            # one round trip: reset, then wait for the task to be ready and its images to be loaded
            status = page.evaluate(
                "async ([seed, ms]) => { lnn.reset(seed, ms); return await lnn.settle(); }",
                [seed, int(self.episode_time_limit_s * 1000)],
            )
            obs = self._observe(task, status["utterance"])
        self._episode = _Episode(task, seed)
        return obs

    def step(self, action: Action) -> tuple[Observation, float, bool, dict]:
        episode = self._require_episode()
        if action.type == "scroll" and (action.text or "down") not in SCROLL_DELTAS:
            raise ValueError(f"scroll text must be one of {sorted(SCROLL_DELTAS)}, got {action.text!r}")
        info: dict = {"task": episode.task, "seed": episode.seed, "step": episode.steps}
        with self._guard(f"step {episode.steps} ({action.type}) of {episode.task} seed {episode.seed}"):
            self._perform(action, info)
            status = self._page.evaluate("lnn.status()")
            obs = self._observe(episode.task, status["utterance"])
        episode.steps += 1

        if status["done"]:
            raw = float(status["raw"])
            info.update(raw_reward=raw, env_reward=float(status["reward"]), reason=status["reason"])
        else:
            raw = 0.0  # no reward until the task ends
            info.update(raw_reward=0.0, env_reward=0.0, reason="agent-done" if action.type == "done" else None)
        episode.done = bool(status["done"]) or action.type == "done"
        info["success"] = episode.done and raw > 0
        return obs, raw, episode.done, info

    def oracle(self) -> OracleStep:
        from lnn.envs.miniwob.oracles import ORACLE_KINDS

        episode = self._require_episode()
        if episode.task not in ORACLE_KINDS:
            raise OracleError(f"no oracle for MiniWoB task {episode.task!r}; tasks with one: {sorted(ORACLE_KINDS)}")
        with self._guard(f"oracle of {episode.task} seed {episode.seed}"):
            found = self._page.evaluate(
                "task => { try { return lnn.oracle(task); } catch (e) { return {error: String(e)}; } }", episode.task
            )
        if "error" in found:
            raise OracleError(f"{episode.task} seed {episode.seed} step {episode.steps}: {found['error']}")
        return _oracle_step(found)

    def close(self) -> None:
        self._episode = None
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._server is not None:
            self._server.close()
            self._server = None

    # ---------------------------------------------------------------- browser plumbing

    @property
    def browser_pid(self) -> int:
        """The Chromium browser process (tests kill it to simulate a crash)."""
        return self._browser.pid

    @property
    def _page(self):
        if self._browser is None:
            raise RuntimeError("this MiniWobEnv is closed")
        return self._browser.page

    def _launch(self) -> Browser:
        self._loaded_task = None
        self._pointer_parked = False
        return Browser(self.executable_path, headless=self.headless, timeout_s=self.step_timeout_s)

    def _load(self, task: str) -> None:
        """Open the task page and install the lnn helpers (and the task's oracle hooks) in it."""
        self._loaded_task = None
        page = self._page
        page.goto(self._server.url(task))
        # window.onload has run core.startEpisode(), which shows the START cover: the page is ready
        page.wait_for_function("typeof core !== 'undefined' && core.cover_div !== null")
        page.evaluate(PROBE_JS)
        page.evaluate("task => lnn.install(task)", task)
        self._loaded_task = task

    @contextmanager
    def _guard(self, what: str):
        """Run browser calls under a watchdog; turn any failure into a recovered env + EpisodeAborted.

        Playwright cannot interrupt a page.evaluate stuck in the page, so a timer thread kills the browser
        process after step_timeout_s; the blocked call then raises and we restart.
        """
        from playwright.sync_api import Error as PlaywrightError

        browser = self._browser
        if browser is None:
            raise RuntimeError("this MiniWobEnv is closed")
        timed_out = threading.Event()

        def on_timeout():
            timed_out.set()
            browser.kill()

        timer = threading.Timer(self.step_timeout_s, on_timeout)
        timer.daemon = True
        timer.start()
        try:
            yield
        except PlaywrightError as e:
            timer.cancel()
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if timed_out.is_set():
                self._abort(f"{what}: exceeded step_timeout_s={self.step_timeout_s:g}")
            crashed = not browser.browser.is_connected() or browser.page.is_closed()
            # a crashed renderer or a broken page is not worth diagnosing: a fresh browser is 0.5 s
            self._abort(f"{what}: {'browser crashed' if crashed else 'page error'}: {detail}")
        finally:
            timer.cancel()
        if timed_out.is_set():  # fired just as the call returned: the browser is dead all the same
            self._abort(f"{what}: exceeded step_timeout_s={self.step_timeout_s:g}")

    def _abort(self, reason: str) -> None:
        """Forget the episode, replace the browser, raise EpisodeAborted(reason)."""
        self._episode = None
        self._browser.close()
        self._browser = None
        self._browser = self._launch()
        self.restarts += 1
        raise EpisodeAborted(reason)

    def _require_episode(self) -> _Episode:
        if self._episode is None:
            raise RuntimeError("no episode running: call reset(seed) first")
        if self._episode.done:
            raise RuntimeError("the episode is over: call reset(seed) for the next one")
        return self._episode

    def _perform(self, action: Action, info: dict) -> None:
        page = self._page
        if action.type in ("click", "scroll", "drag"):
            x, y = _area_px(action.x, action.y)
            self._pointer_parked = False
            if action.type == "click":
                page.mouse.click(x, y)
            elif action.type == "drag":
                # real events all the way: jQuery UI's draggable, sortable and slider move only on the
                # mousemoves between press and release (one suffices on drag-box, drag-items(-grid) and
                # use-slider, 20 seeds each); several make a user's path, along which sortables rearrange
                page.mouse.move(x, y)
                page.mouse.down()
                page.mouse.move(*_area_px(action.x2, action.y2), steps=DRAG_MOVES)
                page.mouse.up()
            else:
                page.mouse.move(x, y)
                page.mouse.wheel(*SCROLL_DELTAS[action.text or "down"])
                # wheel() returns before the page scrolls; two frames later the scroll is painted
                page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        elif action.type == "type":
            page.keyboard.type(action.text)
        elif action.type == "key":
            from playwright.sync_api import Error as PlaywrightError

            try:
                page.keyboard.press(action.text)
            except PlaywrightError as e:
                if "Unknown key" not in str(e):
                    raise
                info["ignored"] = f"unknown key {action.text!r} (Playwright key names: Enter, Tab, Control+A, a)"
        elif action.type == "navigate":
            info["ignored"] = "navigate has no meaning on a MiniWoB task page"
        # "done": nothing to do in the page; step() ends the episode

    def _observe(self, task: str, instruction: str) -> Observation:
        png = self._browser.screenshot(TASK_AREA)
        dt = self._clock.tick()
        image = Image.open(io.BytesIO(png)).convert("RGB")
        if self.image_size is not None:
            image = resize_frame(image, self.image_size)
        return Observation(screenshot=np.asarray(image, dtype=np.uint8), instruction=instruction, task=task, dt=dt)
