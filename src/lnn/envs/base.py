"""The one Env interface shared by the embedded GUI tasks and MiniWoB++ in Chromium."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

# The action vocabulary of every lnn model; index = class id of the action head. New kinds go at the end,
# so a model with fewer action classes (num_actions) keeps its meaning.
ACTIONS: tuple[str, ...] = ("click", "type", "navigate", "scroll", "key", "done", "drag")
# The keys a `key` action presses (Playwright key names); index = class id of a key head.
KEYS: tuple[str, ...] = ("Enter", "Tab", "Backspace", "Delete", "Escape", "ArrowUp", "ArrowDown", "ArrowLeft",
                         "ArrowRight", "Home", "End", "Space")

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1), normalised to [0, 1] of the screenshot

# What an oracle may say a part of the screen is (MiniWoB's shapes grid: click-shape, count-shape draw letters,
# digits and shapes, each in a colour and a size): auxiliary labels a policy can be taught to see. Index within
# each attribute = class id of a model's part head; new attributes and values go at the end.
PART_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "type": ("letter", "digit", "shape"),
    "text": tuple("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + ("circle", "rectangle", "triangle"),
    "color": ("red", "green", "blue", "aqua", "black", "magenta", "yellow"),
    "size": ("small", "large"),
}


@dataclass(frozen=True)
class Action:
    type: str  # one of ACTIONS
    x: float = 0.5  # click / scroll point, normalised to [0, 1] of the screenshot width
    y: float = 0.5  # ... and height
    text: str = ""  # what to type, the key to press, the url to navigate to
    x2: float = 0.5  # drag: where the button is released (pressed at x, y), normalised like x ...
    y2: float = 0.5  # ... and y

    def __post_init__(self):
        if self.type not in ACTIONS:
            raise ValueError(f"unknown action type {self.type!r}; expected one of {ACTIONS}")


@dataclass
class Observation:
    screenshot: np.ndarray  # (H, W, 3) uint8 RGB
    instruction: str
    task: str
    # seconds since the previous frame (the liquid core's dt): the GUI timing families' simulated time,
    # wall-clock time between screenshots in a browser; 1.0 on an episode's first frame unless drawn
    dt: float = 1.0


@dataclass(frozen=True)
class Part:
    """A part of the screen and what it is: one class id per PART_ATTRIBUTES (-1: not known)."""

    box: Box
    labels: tuple[int, ...]

    @classmethod
    def named(cls, box: Box, **values: str) -> Part:
        """Part(box, type="letter", text="q", ...): the values' class ids; an attribute not given is -1."""
        unknown = set(values) - set(PART_ATTRIBUTES)
        if unknown:
            raise ValueError(f"unknown part attributes {sorted(unknown)}; expected some of {list(PART_ATTRIBUTES)}")
        labels = []
        for name, vocabulary in PART_ATTRIBUTES.items():
            value = values.get(name)
            if value is not None and value not in vocabulary:
                raise ValueError(f"a part's {name} {value!r} is not one of {vocabulary}")
            labels.append(vocabulary.index(value) if value is not None else -1)
        return cls(tuple(box), tuple(labels))


@dataclass(frozen=True)
class OracleStep:
    """The ground-truth next action; for a click, the box a correct click lands in; and the element
    the step is about (`focus_box`: the click target, the field typed into, the square to remember),
    which a policy can be taught to look at; and the other boxes a click would be as right in (click-shape:
    every shape the description fits; unticked checkboxes, in any order); and what parts of the screen are
    (`parts`: click-shape's every shape, its type, text, colour and size)."""

    action: Action
    target_box: Box | None = None
    focus_box: Box | None = None
    other_boxes: tuple[Box, ...] = ()
    parts: tuple[Part, ...] = ()

    @property
    def focus(self) -> Box | None:
        return self.focus_box if self.focus_box is not None else self.target_box


class FrameClock:
    """Wall-clock seconds between an env's consecutive screenshots (a browser's real elapsed time, the dt
    its observations carry); the first frame after reset() gets 1.0, as nothing came before it."""

    def __init__(self):
        self._last: float | None = None

    def reset(self) -> None:
        self._last = None

    def tick(self) -> float:
        """Call when a frame is captured: seconds since the previous one (1.0 for the first)."""
        now = time.monotonic()
        dt = 1.0 if self._last is None else now - self._last
        self._last = now
        return dt


class EpisodeAborted(RuntimeError):
    """The env could not finish the episode (a browser crashed, hung or broke mid-episode).

    The env has already recovered: record the episode as failed with `reason` and call reset() for the
    next one.
    """

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"episode aborted: {reason}")


class OracleError(RuntimeError):
    """The task has no oracle, or the oracle found no correct action in the current state."""


class Env(ABC):
    """reset(seed) -> observation; step(action) -> observation, reward, done, info; oracle()."""

    task_names: tuple[str, ...] = ()

    @abstractmethod
    def reset(self, seed: int, task: str | None = None) -> Observation: ...

    @abstractmethod
    def step(self, action: Action) -> tuple[Observation, float, bool, dict]: ...

    @abstractmethod
    def oracle(self) -> OracleStep:
        """The correct next action for the current state, read from the ground truth."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
