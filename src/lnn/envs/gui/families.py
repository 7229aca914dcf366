"""The task families of the embedded GUI env.

A family turns a seed into an episode: a fixed script of steps, each a frame to show, the instruction
that goes with it, and the one correct action. Generation is split in two draws from two seeded RNGs:

- `layout(rng)`: what is on screen before a target is chosen (the candidates and their attributes);
- `script(layout, rng)`: which candidate is the target, hence the instruction and the steps.

The split makes two properties testable: the same layout with another choice gives the same first frame
but another instruction and target (the target depends on the instruction), and, for the memory
families, the same recall frame and instruction for every target (a memoryless policy is at chance).

The timing families also draw each frame's elapsed time (`Step.dt`, seconds since the previous frame) in
the script, and their answer depends on elapsed time, not on the number of frames (see TimingFamily).
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import ClassVar

from lnn.envs.base import Action, Box
from lnn.envs.gui.layout import grid_boxes
from lnn.envs.gui.render import (
    BACKGROUNDS,
    BUTTON,
    COLORS,
    CONTENT,
    HIGHLIGHT,
    PLAIN,
    RGB,
    SCROLLBAR,
    SHAPES,
    Element,
    Scene,
    center,
)
from lnn.errors import ConfigError

SINGLE_STEP, MULTI_STEP, MEMORY, TIMING = "single_step", "multi_step", "memory", "timing"
KINDS = (SINGLE_STEP, MULTI_STEP, MEMORY, TIMING)

BUTTON_LABELS = ("OK", "Yes", "Help", "Save", "Cancel", "Submit")  # short and of distinct shapes
FIELD_LABELS = ("Name", "Email", "City", "Phone", "Zip", "Age")
WORDS = ("blue", "cat", "tree", "moon", "apple", "river", "stone", "bird", "lamp", "rain", "sun", "book")
MAX_CANDIDATES = 6  # the palette, the shapes and the label vocabularies each have six entries

ENTER = "Enter"  # the key that moves past a frame that only asks to look or wait
WAIT = "Wait"  # the instruction of a delay frame in the memory families


@dataclass(frozen=True)
class Difficulty:
    """Knobs shared by the families; `GuiEnv(**difficulty)` passes them through by name."""

    min_candidates: int = 4  # candidates on a frame (the target + distractors), drawn per episode ...
    max_candidates: int = 6  # ... from [min_candidates, max_candidates]
    sequence_length: int = 3  # click-sequence: squares that light up one after another
    memory_delay: int = 0  # memory families: "Wait" frames (key Enter) between the cue and the recall
    dt_scale: float | tuple[float, float] = 1.0  # timing families: frames come dt_scale times as far apart
    # (DT_RANGE × dt_scale); 2 tests a policy on time slower than it was trained on (the answers are in seconds, so
    # they change with it). [low, high]: each episode draws its own scale, log-uniformly (training across time scales)

    def __post_init__(self):
        for f in fields(self):
            if f.name != "dt_scale" and not isinstance(getattr(self, f.name), int):
                raise ConfigError(f.name, f"must be an integer, got {getattr(self, f.name)!r}")
        scale = self.dt_scale
        if not isinstance(scale, (str, int, float)):
            scale = tuple(scale)  # a list from the command line: [0.5, 2]
            object.__setattr__(self, "dt_scale", scale)
        numbers = scale if isinstance(scale, tuple) else (scale,)
        if (len(numbers) not in (1, 2) or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in numbers)
                or not all(0.5 <= x <= 4 for x in numbers) or (len(numbers) == 2 and not numbers[0] < numbers[1])):  # fmt: skip
            raise ConfigError("dt_scale", f"must be a number in [0.5, 4] (1: the training range) or a range [low, high] "
                                          f"within it (one scale per episode), got {self.dt_scale!r}")  # fmt: skip
        if not 2 <= self.min_candidates <= MAX_CANDIDATES:
            raise ConfigError(
                "min_candidates", f"must be in [2, {MAX_CANDIDATES}], got {self.min_candidates}"
            )
        if not self.min_candidates <= self.max_candidates <= MAX_CANDIDATES:
            raise ConfigError(
                "max_candidates",
                f"must be in [min_candidates={self.min_candidates}, {MAX_CANDIDATES}], got {self.max_candidates}",
            )
        if not 1 <= self.sequence_length <= self.min_candidates:
            raise ConfigError(
                "sequence_length",
                f"must be in [1, min_candidates={self.min_candidates}] (squares light up at most once), "
                f"got {self.sequence_length}",
            )
        if self.memory_delay < 0:
            raise ConfigError("memory_delay", f"must be >= 0, got {self.memory_delay}")

    @classmethod
    def from_options(cls, options: dict) -> Difficulty:
        known = [f.name for f in fields(cls)]
        for key in options:
            if key not in known:
                raise ConfigError(key, f"unknown difficulty option; available: {', '.join(known)}")
        return cls(**options)


@dataclass(frozen=True)
class Step:
    """One frame of an episode and the one action that is correct on it."""

    scene: Scene
    instruction: str
    action: Action  # the correct action; a click aims at the centre of `target`
    target: Box | None = None  # the box a correct click lands in (click steps only)
    candidates: tuple[Box, ...] = ()  # the boxes a click step chooses between, the target included
    focus: Box | None = None  # what a non-click step is about: the lit square, the swatch, the field
    dt: float = 1.0  # seconds since the previous frame (the timing families draw it; 1 elsewhere)


def click_step(scene: Scene, instruction: str, target: Box, candidates: tuple[Box, ...]) -> Step:
    x, y = center(target)
    return Step(scene, instruction, Action("click", x, y), target, candidates)


def key_step(scene: Scene, instruction: str, focus: Box | None = None) -> Step:
    return Step(scene, instruction, Action("key", text=ENTER), focus=focus)


@dataclass(frozen=True)
class Layout:
    """What a frame shows before the target is chosen: the candidates and how an instruction names each."""

    background: RGB
    elements: tuple[Element, ...]  # the candidates
    names: tuple[str, ...] = ()  # names[i]: how an instruction refers to elements[i] ("red square")
    decor: tuple[Element, ...] = ()  # drawn, never a target (the labels above text fields)

    @property
    def boxes(self) -> tuple[Box, ...]:
        return tuple(e.box for e in self.elements)

    def scene(self, changed: dict[int, Element] | None = None, scroll: float | None = None) -> Scene:
        """The frame with candidate i drawn as changed[i] instead (a highlight, a focused field)."""
        changed = changed or {}
        elements = tuple(changed.get(i, e) for i, e in enumerate(self.elements))
        return Scene(self.background, self.decor + elements, scroll)


class Family(ABC):
    """A task family: seeded layouts, seeded targets, and the steps that solve them."""

    name: ClassVar[str]
    kind: ClassVar[str]  # one of KINDS: the training code reports success per kind

    def __init__(self, difficulty: Difficulty = Difficulty()):
        self.difficulty = difficulty

    def episode(self, seed: int) -> tuple[Step, ...]:
        return self.build(seed, seed)

    def build(self, layout_seed: int, choice_seed: int) -> tuple[Step, ...]:
        return tuple(self.script(*self.draws(layout_seed, choice_seed)))

    def draws(self, layout_seed: int, choice_seed: int) -> tuple[object, random.Random]:
        """The layout, and the RNG the script draws its choices from."""
        # String seeds are hashed with SHA-512 by `random`: stable across runs and Python versions, and
        # independent streams for each family and for the layout and the choice.
        layout = self.layout(random.Random(f"{self.name}/layout/{layout_seed}"))
        return layout, random.Random(f"{self.name}/choice/{choice_seed}")

    @abstractmethod
    def layout(self, rng: random.Random): ...

    @abstractmethod
    def script(self, layout, rng: random.Random) -> list[Step]: ...

    def max_steps(self) -> int:
        """The length of the longest episode this family makes at its difficulty."""
        return 1

    def _count(self, rng: random.Random) -> int:
        return rng.randint(self.difficulty.min_candidates, self.difficulty.max_candidates)


def _square_sizes(rng: random.Random, n: int, lo: float = 0.15, hi: float = 0.2) -> list[tuple[float, float]]:
    return [(s, s) for s in (rng.uniform(lo, hi) for _ in range(n))]


# ---------------------------------------------------------------------------------------------------------
# Single step: one click on the candidate the instruction names.


class PickOne(Family):
    """Base of the one-click families: `layout` draws the candidates, the target is uniform over them."""

    kind = SINGLE_STEP
    instruction: ClassVar[str]  # formatted with the target's name

    @abstractmethod
    def layout(self, rng: random.Random) -> Layout: ...

    def script(self, layout: Layout, rng: random.Random) -> list[Step]:
        i = rng.randrange(len(layout.elements))
        return [
            click_step(
                layout.scene(), self.instruction.format(layout.names[i]), layout.boxes[i], layout.boxes
            )
        ]


class ClickColor(PickOne):
    """Squares of distinct colours: "Click the red square"."""

    name = "click-color"
    instruction = "Click the {} square"

    def layout(self, rng):
        n = self._count(rng)
        colors = rng.sample(list(COLORS), n)
        boxes = grid_boxes(rng, _square_sizes(rng, n), cols=4, rows=3)
        elements = tuple(Element("square", b, COLORS[c]) for b, c in zip(boxes, colors))
        return Layout(rng.choice(BACKGROUNDS), elements, tuple(colors))


class ClickShape(PickOne):
    """Distinct shapes in random (possibly repeated) colours: "Click the triangle"."""

    name = "click-shape"
    instruction = "Click the {}"

    def layout(self, rng):
        n = self._count(rng)
        shapes = rng.sample(SHAPES, n)
        colors = [rng.choice(list(COLORS.values())) for _ in range(n)]  # colour is a nuisance here
        boxes = grid_boxes(rng, _square_sizes(rng, n, 0.16, 0.2), cols=4, rows=3)
        elements = tuple(Element(s, b, c) for s, b, c in zip(shapes, boxes, colors))
        return Layout(rng.choice(BACKGROUNDS), elements, tuple(shapes))


class ClickColorShape(PickOne):
    """A colour and a shape together: "Click the blue circle", among others sharing its colour or shape.

    Colours and shapes come from pools of three each, so most distractors share one attribute with the
    target and neither attribute alone finds it.
    """

    name = "click-color-shape"
    instruction = "Click the {}"

    def layout(self, rng):
        n = self._count(rng)
        pairs = [(c, s) for c in rng.sample(list(COLORS), 3) for s in rng.sample(SHAPES, 3)]
        chosen = rng.sample(pairs, n)
        boxes = grid_boxes(rng, _square_sizes(rng, n, 0.16, 0.2), cols=4, rows=3)
        elements = tuple(Element(s, b, COLORS[c]) for (c, s), b in zip(chosen, boxes))
        return Layout(rng.choice(BACKGROUNDS), elements, tuple(f"{c} {s}" for c, s in chosen))


class ClickButton(PickOne):
    """Grey buttons with short, distinct labels: "Click the Save button"."""

    name = "click-button"
    instruction = "Click the {} button"

    def layout(self, rng):
        n = self._count(rng)
        labels = rng.sample(BUTTON_LABELS, n)
        boxes = grid_boxes(rng, [(0.43, 0.15)] * n, cols=2, rows=3)
        elements = tuple(Element("button", b, BUTTON, text=t) for b, t in zip(boxes, labels))
        return Layout(rng.choice(BACKGROUNDS), elements, tuple(labels))


# ---------------------------------------------------------------------------------------------------------
# Multi step: the frame shows where the episode is; the instruction stays the same.


class EnterText(Family):
    """A form of labelled fields: 'Type "moon" in the City field' = click the field, type, then done.

    The focused field is outlined in blue and shows what was typed, so each step's frame tells which
    action comes next. The typed text is the quoted word of the instruction.
    """

    name = "enter-text"
    kind = MULTI_STEP
    LABEL_H, GAP, FIELD_H = 0.1, 0.005, 0.14

    def layout(self, rng):
        n = self._count(rng)
        labels = rng.sample(FIELD_LABELS, n)
        blocks = grid_boxes(rng, [(0.42, self.LABEL_H + self.GAP + self.FIELD_H)] * n, cols=2, rows=3)
        fields_, decor = [], []
        for (x0, y0, x1, y1), label in zip(blocks, labels):
            decor.append(Element("label", (x0, y0, x1, y0 + self.LABEL_H), text=label))
            fields_.append(Element("field", (x0, y1 - self.FIELD_H, x1, y1)))
        return Layout(rng.choice(BACKGROUNDS), tuple(fields_), tuple(labels), tuple(decor))

    def script(self, layout, rng):
        i, word = rng.randrange(len(layout.elements)), rng.choice(WORDS)
        instruction = f'Type "{word}" in the {layout.names[i]} field'
        field = layout.elements[i]
        return [
            click_step(layout.scene(), instruction, field.box, layout.boxes),
            Step(layout.scene({i: replace(field, focused=True)}), instruction, Action("type", text=word), focus=field.box),
            Step(layout.scene({i: replace(field, focused=True, text=word)}), instruction, Action("done")),
        ]

    def max_steps(self):
        return 3


class ScrollClick(Family):
    """A page two screens tall: "Click the green star", scrolling down first when it is below the fold.

    Half the targets are on the first screen (one click), half on the second (scroll, then click), so
    the policy has to look for the target before choosing between scrolling and clicking. The scrollbar
    on the right shows which screen is in view.
    """

    name = "scroll-click"
    kind = MULTI_STEP
    AREA: Box = (CONTENT[0], CONTENT[1], SCROLLBAR[0] - 0.02, CONTENT[3])  # left of the scrollbar

    def layout(self, rng):
        n = self._count(rng)
        pairs = rng.sample([(c, s) for c in COLORS for s in SHAPES], 2 * n)  # unique on the whole page
        background = rng.choice(BACKGROUNDS)
        screens = []
        for part in (pairs[:n], pairs[n:]):
            boxes = grid_boxes(rng, _square_sizes(rng, n, 0.16, 0.19), cols=4, rows=3, area=self.AREA)
            elements = tuple(Element(s, b, COLORS[c]) for (c, s), b in zip(part, boxes))
            screens.append(Layout(background, elements, tuple(f"{c} {s}" for c, s in part)))
        return screens

    def script(self, screens, rng):
        top, bottom = screens
        i = rng.randrange(2 * len(top.elements))
        screen = top if i < len(top.elements) else bottom
        i %= len(top.elements)
        instruction = f"Click the {screen.names[i]}"
        click = click_step(
            screen.scene(scroll=float(screen is bottom)), instruction, screen.boxes[i], screen.boxes
        )
        if screen is top:
            return [click]
        x, y = center(self.AREA)
        return [Step(top.scene(scroll=0.0), instruction, Action("scroll", x, y, text="down")), click]

    def max_steps(self):
        return 2


# ---------------------------------------------------------------------------------------------------------
# Memory: a cue frame shows the target; the recall frame, identical for every target, asks for it.


class MemoryFamily(Family):
    """Cue frames (key Enter), `memory_delay` "Wait" frames (key Enter), then recall clicks.

    Layouts draw identical grey squares unless a subclass says otherwise; the recall frames depend on
    the layout alone, never on the choice.
    """

    kind = MEMORY

    def squares(self, rng: random.Random) -> Layout:
        n = self._count(rng)
        boxes = grid_boxes(rng, [(0.18, 0.18)] * n, cols=4, rows=3)
        return Layout(rng.choice(BACKGROUNDS), tuple(Element("square", b, PLAIN) for b in boxes))

    def waits(self, layout: Layout) -> list[Step]:
        return [key_step(layout.scene(), WAIT) for _ in range(self.difficulty.memory_delay)]

    def lit(self, layout: Layout, i: int) -> Scene:
        return layout.scene({i: replace(layout.elements[i], fill=HIGHLIGHT)})


class RememberTarget(MemoryFamily):
    """One square lights up ("Remember the highlighted square"), then "Click the square that was highlighted"."""

    name = "remember-target"

    def layout(self, rng):
        return self.squares(rng)

    def script(self, layout, rng):
        i = rng.randrange(len(layout.elements))
        return [
            key_step(self.lit(layout, i), "Remember the highlighted square", focus=layout.boxes[i]),
            *self.waits(layout),
            click_step(
                layout.scene(), "Click the square that was highlighted", layout.boxes[i], layout.boxes
            ),
        ]

    def max_steps(self):
        return 2 + self.difficulty.memory_delay


class RememberColor(MemoryFamily):
    """A colour swatch alone ("Remember this color"), then squares of distinct colours: click that colour."""

    name = "remember-color"
    SWATCH: Box = (0.35, 0.42, 0.65, 0.72)

    def layout(self, rng):
        n = self._count(rng)
        colors = rng.sample(list(COLORS), n)
        boxes = grid_boxes(rng, _square_sizes(rng, n), cols=4, rows=3)
        elements = tuple(Element("square", b, COLORS[c]) for b, c in zip(boxes, colors))
        return Layout(rng.choice(BACKGROUNDS), elements, tuple(colors))

    def script(self, layout, rng):
        i = rng.randrange(len(layout.elements))
        cue = Scene(layout.background, (Element("square", self.SWATCH, layout.elements[i].fill),))
        return [
            key_step(cue, "Remember this color", focus=self.SWATCH),
            *self.waits(layout),
            click_step(
                layout.scene(), "Click the square with the color you saw", layout.boxes[i], layout.boxes
            ),
        ]

    def max_steps(self):
        return 2 + self.difficulty.memory_delay


class ClickSequence(MemoryFamily):
    """Squares light up one per frame ("Watch the squares light up"), then are clicked in that order.

    Clicked squares do not change, so every recall frame is the same and only memory tells which square
    comes next.
    """

    name = "click-sequence"

    def layout(self, rng):
        return self.squares(rng)

    def script(self, layout, rng):
        order = rng.sample(range(len(layout.elements)), self.difficulty.sequence_length)
        recall = "Click the squares in the order they lit up"
        return [
            *(key_step(self.lit(layout, i), "Watch the squares light up", focus=layout.boxes[i]) for i in order),
            *self.waits(layout),
            *(click_step(layout.scene(), recall, layout.boxes[i], layout.boxes) for i in order),
        ]

    def max_steps(self):
        return 2 * self.difficulty.sequence_length + self.difficulty.memory_delay


# ---------------------------------------------------------------------------------------------------------
# Timing: frames come after irregular elapsed times (Step.dt), and the answer depends on how long something
# lasted in seconds, not on how many frames showed it.

DT_RANGE = (0.25, 2.5)  # seconds between two frames of a timing family, uniform


def draw_dts(rng: random.Random, frames: int, scale: float | tuple[float, float] = 1.0) -> list[float]:
    """Each frame's dt in DT_RANGE × scale; a (low, high) scale is drawn for the episode first, log-uniformly."""
    if isinstance(scale, tuple):
        scale = math.exp(rng.uniform(math.log(scale[0]), math.log(scale[1])))
    return [round(scale * rng.uniform(*DT_RANGE), 3) for _ in range(frames)]  # ms: readable in datasets


def elapsed(dts: Sequence[float], start: int, stop: int) -> float:
    """Seconds from frame `start` coming on screen to frame `stop` coming: the dts of the frames after start."""
    return sum(dts[start + 1 : stop + 1])


def winner(values: Sequence[float], margin: float, largest: bool) -> int | None:
    """The index of the largest (smallest) value; None unless it beats the runner-up by `margin`. Ties: the first."""
    order = sorted(range(len(values)), key=values.__getitem__, reverse=largest)  # stable, reversed too
    return order[0] if abs(values[order[0]] - values[order[1]]) >= margin else None


class TimingFamily(MemoryFamily):
    """Base of the timing families (it reuses the memory families' squares): a plan of events, each frame's dt.

    A frame's dt is the time since the previous frame came, so frame k+1's dt is how long frame k stayed on
    screen; the first frame's dt is drawn too and never matters. `draw(layout, rng)` -> (plan, dts);
    `answer(plan, dts, margin)` the decision, from elapsed times; `steps(layout, plan, answer)` the frames
    and correct actions. The same decision with every dt = 1 is what a policy that counts frames and
    ignores dt takes (`frame_counting(seed)`): the chance level each family states, measured by
    tests/envs/test_timing_families.py. Draws too close to call (within MARGIN) are drawn again, and so
    are, on AGAINST_FRAMES of the episodes, draws where counting frames gives the right answer.
    """

    kind = TIMING
    MARGIN: ClassVar[float] = 0.3  # seconds: the right answer wins by at least this much
    AGAINST_FRAMES: ClassVar[float] = 0.0  # share of episodes where counting frames must answer wrong

    @abstractmethod
    def draw(self, layout, rng: random.Random) -> tuple[object, list[float]]: ...

    @abstractmethod
    def answer(self, plan, dts: Sequence[float], margin: float) -> int | None: ...

    @abstractmethod
    def steps(self, layout, plan, answer: int) -> list[Step]: ...

    def script(self, layout, rng):
        return self._script(layout, rng, count_frames=False)

    def frame_counting(self, seed: int) -> tuple[Step, ...]:
        """Episode `seed` as a policy that counts frames and ignores dt plays it: the same frames until it
        answers, its own answer (which the env judges against `episode(seed)`)."""
        return tuple(self._script(*self.draws(seed, seed), count_frames=True))

    def _script(self, layout, rng: random.Random, count_frames: bool) -> list[Step]:
        against = rng.random() < self.AGAINST_FRAMES
        while True:
            plan, dts = self.draw(layout, rng)
            timed, counted = self.answer(plan, dts, self.MARGIN), self.answer(plan, [1.0] * len(dts), 0.0)
            if timed is not None and not (against and counted == timed):
                break
        steps = self.steps(layout, plan, counted if count_frames else timed)
        return [replace(step, dt=dt) for step, dt in zip(steps, dts)]


class LongestLight(TimingFamily):
    """Three grey squares light up one after another, each for 1 or 2 frames ("Watch the lights"), then
    "Click the light that stayed on longest" on the plain squares (the same frame for every target).

    A light stays on from its first frame coming to the next light's (or the recall frame's) coming: the
    sum of those frames' dts, drawn in DT_RANGE; the longest wins by >= MARGIN. On half the episodes the
    light shown for the most frames (the first of a tie) is not the longest in time. Chance: a memoryless
    policy 1 / squares (~0.2, 4-6 squares); counting frames instead of time ~0.30 (measured).
    """

    name = "longest-light"
    LIGHTS = 3
    AGAINST_FRAMES = 0.5

    def layout(self, rng):
        return self.squares(rng)

    def draw(self, layout, rng):
        order = rng.sample(range(len(layout.elements)), self.LIGHTS)
        frames = [rng.randint(1, 2) for _ in order]
        starts = [sum(frames[:k]) for k in range(len(order))]
        plan = [(i, a, a + n) for i, a, n in zip(order, starts, frames)]  # square, first lit frame, first after
        return plan, draw_dts(rng, sum(frames) + 1, self.difficulty.dt_scale)

    def answer(self, plan, dts, margin):
        k = winner([elapsed(dts, a, b) for _, a, b in plan], margin, largest=True)
        return None if k is None else plan[k][0]

    def steps(self, layout, plan, square):
        lit = [i for i, a, b in plan for _ in range(b - a)]  # the square lit on each frame
        watch = [key_step(self.lit(layout, i), "Watch the lights", focus=layout.boxes[i]) for i in lit]
        recall = "Click the light that stayed on longest"
        return [*watch, click_step(layout.scene(), recall, layout.boxes[square], layout.boxes)]

    def max_steps(self):
        return 2 * self.LIGHTS + 1


class FastestBlink(TimingFamily):
    """Three grey squares blink twice each, one blink per frame, no square twice in a row ("Watch the squares
    blink"), then "Click the square that blinked fastest" on the plain squares: the one whose two blinks
    came closest together in time.

    A square's interval is the sum of the dts from its first blink's frame to its second's, drawn in
    DT_RANGE; the shortest wins by >= MARGIN. On half the episodes the square with the fewest frames
    between its blinks (the first of a tie) is not the fastest in time. Chance: a memoryless policy
    1 / squares (~0.2); counting frames instead of time ~0.30 (measured).
    """

    name = "fastest-blink"
    SQUARES = 3
    AGAINST_FRAMES = 0.5

    def layout(self, rng):
        return self.squares(rng)

    def draw(self, layout, rng):
        squares = rng.sample(range(len(layout.elements)), self.SQUARES)
        blinks = squares * 2
        rng.shuffle(blinks)
        while any(a == b for a, b in zip(blinks, blinks[1:])):  # twice in a row would read as one long blink
            rng.shuffle(blinks)
        intervals = [(i, blinks.index(i), len(blinks) - 1 - blinks[::-1].index(i)) for i in squares]
        return (blinks, intervals), draw_dts(rng, len(blinks) + 1, self.difficulty.dt_scale)

    def answer(self, plan, dts, margin):
        _, intervals = plan
        k = winner([elapsed(dts, a, b) for _, a, b in intervals], margin, largest=False)
        return None if k is None else intervals[k][0]

    def steps(self, layout, plan, square):
        blinks, _ = plan
        watch = [key_step(self.lit(layout, i), "Watch the squares blink", focus=layout.boxes[i]) for i in blinks]
        recall = "Click the square that blinked fastest"
        return [*watch, click_step(layout.scene(), recall, layout.boxes[square], layout.boxes)]

    def max_steps(self):
        return 2 * self.SQUARES + 1


class WaitGreen(TimingFamily):
    """A bar above 4-6 buttons is grey for 1-2 frames, then turns green: "Click Save when the bar has been
    green for 3 seconds". The policy presses Enter (wait) on every frame until the bar has been green for
    HOLD seconds, then clicks the named button: clicking earlier or waiting a frame longer fails.

    Green frames all look the same, so only elapsed time tells when: the sum of the dts since the bar
    turned green (drawn in DT_RANGE; never within MARGIN of HOLD, and at most MAX_GREEN frames after it).
    Chance: a memoryless policy 0 (deterministic; ~0.12 clicking at random at its best rate); counting
    frames instead of time (click on the 3rd frame after green) ~0.41, the best fixed count (2nd) ~0.44
    (measured).
    """

    name = "wait-green"
    HOLD = 3.0  # seconds the bar must have been green
    MARGIN = 0.2
    MAX_GREEN = 5  # frames after the bar turns green, at most: the episode fits the env's default max_steps (8)
    BAR: Box = (0.06, CONTENT[1] + 0.02, 0.94, CONTENT[1] + 0.1)
    AREA: Box = (CONTENT[0], BAR[3] + 0.02, CONTENT[2], CONTENT[3])  # the buttons, below the bar

    def layout(self, rng):
        n = self._count(rng)
        labels = rng.sample(BUTTON_LABELS, n)
        boxes = grid_boxes(rng, [(0.43, 0.15)] * n, cols=2, rows=3, area=self.AREA)
        elements = tuple(Element("button", b, BUTTON, text=t) for b, t in zip(boxes, labels))
        return Layout(rng.choice(BACKGROUNDS), elements, tuple(labels))

    def draw(self, layout, rng):
        target, grey = rng.randrange(len(layout.elements)), rng.randint(1, 2)
        return (target, grey), draw_dts(rng, grey + 1 + self.MAX_GREEN, self.difficulty.dt_scale)

    def answer(self, plan, dts, margin):
        """The frame to click on: the first at which the bar has been green for HOLD seconds."""
        _, grey = plan
        for frame in range(grey + 1, len(dts)):
            held = elapsed(dts, grey, frame)
            if abs(held - self.HOLD) < margin:
                return None
            if held >= self.HOLD:
                return frame
        return None

    def steps(self, layout, plan, click):
        target, grey = plan
        instruction = f"Click {layout.names[target]} when the bar has been green for {self.HOLD:g} seconds"
        frames = [self.frame(layout, green=k >= grey) for k in range(click + 1)]
        waits = [key_step(frame, instruction, focus=self.BAR) for frame in frames[:-1]]
        return [*waits, click_step(frames[-1], instruction, layout.boxes[target], layout.boxes)]

    def frame(self, layout: Layout, green: bool) -> Scene:
        bar = Element("square", self.BAR, COLORS["green"] if green else PLAIN)
        return Scene(layout.background, (bar, *layout.elements))

    def max_steps(self):
        return 2 + 1 + self.MAX_GREEN


# The registry: family name -> family class, in the order reports list them.
TASKS: dict[str, type[Family]] = {
    f.name: f
    for f in (
        ClickColor,
        ClickShape,
        ClickColorShape,
        ClickButton,
        EnterText,
        ScrollClick,
        RememberTarget,
        RememberColor,
        ClickSequence,
        LongestLight,
        WaitGreen,
        FastestBlink,
    )
}


def families_by_kind() -> dict[str, tuple[str, ...]]:
    """{"single_step": (...), "multi_step": (...), "memory": (...), "timing": (...)}: the names of each kind."""
    return {kind: tuple(name for name, f in TASKS.items() if f.kind == kind) for kind in KINDS}
