"""The embedded GUI env: determinism, the oracle, failures, candidates, and what memory tasks hide."""

from __future__ import annotations

import numpy as np
import pytest

from lnn.envs import ACTIONS, Action, GuiEnv
from lnn.envs.gui import KINDS, TASKS, families_by_kind
from lnn.envs.gui.families import MEMORY, Difficulty
from lnn.envs.gui.render import Renderer, center
from lnn.errors import ConfigError

FAMILIES = list(TASKS)
# the families whose click frames are the same for every target (memory, and timing recall)
RECALL = [t for t in FAMILIES if TASKS[t].kind == MEMORY or t in ("longest-light", "fastest-blink")]
SIZE = 96


@pytest.fixture(scope="module")
def env():
    return GuiEnv(image_size=SIZE)


def rollout(env, seed, task):
    """The oracle's episode: (observation, oracle step) per frame, then the last reward and info."""
    obs, done, frames = env.reset(seed, task), False, []
    while not done:
        oracle = env.oracle()
        frames.append((obs, oracle))
        obs, reward, done, info = env.step(oracle.action)
    return frames, reward, info


def wrong_type(action_type: str) -> Action:
    return Action("done" if action_type != "done" else "click")


# --- basics ---------------------------------------------------------------------------------------------


def test_registry_and_kinds():
    assert len(TASKS) >= 8
    by_kind = families_by_kind()
    assert set(by_kind) == set(KINDS)
    assert sorted(n for names in by_kind.values() for n in names) == sorted(TASKS)
    assert len(by_kind["memory"]) >= 2 and len(by_kind["multi_step"]) >= 1
    for name, family in TASKS.items():
        assert family.name == name and family.__doc__
    assert GuiEnv.task_names == tuple(TASKS)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_observation(size):
    obs = GuiEnv(image_size=size).reset(3, "click-button")
    assert obs.screenshot.shape == (size, size, 3) and obs.screenshot.dtype == np.uint8
    assert obs.task == "click-button" and obs.instruction.startswith("Click the ")


def test_height_width_stretches_the_scene_and_boxes_stay_on_their_element():
    square, wide = GuiEnv(image_size=64).reset(5, "click-color"), GuiEnv(["click-color"], image_size=[48, 96])
    obs = wide.reset(5, "click-color")
    assert obs.screenshot.shape == (48, 96, 3) and obs.instruction == square.instruction
    x0, y0, x1, y1 = wide.oracle().target_box  # the target's middle pixel has the colour it has in the square frame
    middle = obs.screenshot[int((y0 + y1) / 2 * 48), int((x0 + x1) / 2 * 96)]
    assert (middle == square.screenshot[int((y0 + y1) / 2 * 64), int((x0 + x1) / 2 * 64)]).all()
    assert not (middle == obs.screenshot[-1, -1]).all()  # not the background


@pytest.mark.parametrize("task", FAMILIES)
def test_deterministic(task):
    a, b = GuiEnv(image_size=SIZE), GuiEnv(image_size=SIZE)
    for seed in (0, 7, 123456789):
        frames_a, _, _ = rollout(a, seed, task)
        frames_b, _, _ = rollout(b, seed, task)
        assert len(frames_a) == len(frames_b)
        for (obs_a, or_a), (obs_b, or_b) in zip(frames_a, frames_b):
            assert np.array_equal(obs_a.screenshot, obs_b.screenshot)
            assert obs_a.instruction == obs_b.instruction and or_a == or_b
    episodes = {b"".join(o.screenshot.tobytes() for o, _ in rollout(a, seed, task)[0]) for seed in range(10)}
    assert len(episodes) == 10  # different seeds, different episodes


def test_unseeded_task_is_drawn_by_seed_from_tasks():
    env = GuiEnv(tasks=["click-color", "enter-text"])
    drawn = [env.reset(seed).task for seed in range(40)]
    assert set(drawn) == {"click-color", "enter-text"}
    for seed, task in enumerate(drawn[:5]):
        same = GuiEnv().reset(seed, task)  # the episode depends on (seed, task) alone
        assert np.array_equal(env.reset(seed).screenshot, same.screenshot)
    assert GuiEnv(tasks="remember-color").reset(5).task == "remember-color"
    # an explicit task may be any family, not only the restricted ones
    assert env.reset(0, "click-sequence").task == "click-sequence"


# --- the oracle and failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("task", FAMILIES)
def test_oracle_solves_every_family(env, task):
    for seed in range(200):
        frames, reward, info = rollout(env, seed, task)
        assert reward == 1.0 and info["success"] and "failure" not in info
        assert info["task"] == task and info["step"] == len(frames)
        for obs, oracle in frames:
            assert oracle.action.type in ACTIONS
            if oracle.action.type == "click":  # the oracle clicks the centre of its target box
                assert (oracle.action.x, oracle.action.y) == pytest.approx(center(oracle.target_box))
            else:
                assert oracle.target_box is None
            if oracle.action.type == "type":  # the text to type is the quoted word of the instruction
                assert f'"{oracle.action.text}"' in obs.instruction


@pytest.mark.parametrize("task", FAMILIES)
def test_wrong_action_type_fails(env, task):
    for seed in range(20):
        env.reset(seed, task)
        steps = len(env.families[task].episode(seed))
        for _ in range(seed % steps):  # fail at every position of the episode
            env.step(env.oracle().action)
        obs, reward, done, info = env.step(wrong_type(env.oracle().action.type))
        assert (reward, done) == (0.0, True)
        assert "expected a" in info["failure"] and info["task"] == task and info["step"] == seed % steps + 1
        assert obs.screenshot.shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize("task", FAMILIES)
def test_click_on_a_distractor_fails(env, task):
    for seed in range(20):
        env.reset(seed, task)
        while env.oracle().action.type != "click":
            env.step(env.oracle().action)
        step = env.current_step
        distractor = next(b for b in step.candidates if b != step.target)
        _, reward, done, info = env.step(Action("click", *center(distractor)))
        assert (reward, done) == (0.0, True) and "outside the target box" in info["failure"]


def test_wrong_text_and_key_fail(env):
    env.reset(0, "enter-text")
    env.step(env.oracle().action)
    _, reward, done, info = env.step(Action("type", text="not the word"))
    assert (reward, done) == (0.0, True) and "typed" in info["failure"]
    env.reset(0, "remember-target")
    _, reward, done, info = env.step(Action("key", text="Escape"))
    assert (reward, done) == (0.0, True) and "Enter" in info["failure"]
    env.reset(0, "remember-target")
    _, reward, done, _ = env.step(Action("key"))  # an empty key text means Enter
    assert (reward, done) == (0.0, False)


def test_episode_must_be_reset(env):
    with pytest.raises(RuntimeError):
        GuiEnv().oracle()
    env.reset(0, "click-color")
    env.step(env.oracle().action)
    with pytest.raises(RuntimeError):
        env.step(Action("done"))


def test_running_past_max_steps_fails():
    env = GuiEnv(tasks=["click-color"], max_steps=2)  # too short for click-sequence, named explicitly
    env.reset(0, "click-sequence")
    env.step(env.oracle().action)
    _, reward, done, info = env.step(env.oracle().action)
    assert (reward, done) == (0.0, True) and "max_steps" in info["failure"]


# --- candidates and targets -----------------------------------------------------------------------------


def _disjoint(a, b):
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


@pytest.mark.parametrize("task", FAMILIES)
def test_click_steps_have_at_least_three_distractors(task):
    family = TASKS[task]()
    for seed in range(100):
        for step in family.episode(seed):
            if step.action.type != "click":
                continue
            boxes = step.candidates
            assert len(boxes) >= 4 and step.target in boxes
            for i, box in enumerate(boxes):
                assert 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1
                assert min(box[2] - box[0], box[3] - box[1]) * SIZE >= 12  # >= 12 px at 96 px
                assert all(_disjoint(box, other) for other in boxes[i + 1 :])


@pytest.mark.parametrize("task", [t for t in FAMILIES if t not in RECALL])
def test_target_depends_on_the_instruction(task):
    """Same layout, other choices: the same first frame, and the instruction alone picks the target."""
    family, renderer = TASKS[task](), Renderer(SIZE)
    for layout_seed in range(10):
        episodes = [family.build(layout_seed, choice) for choice in range(30)]
        first = {renderer.render(e[0].scene).tobytes() for e in episodes}
        assert len(first) == 1
        target_of = {}
        for e in episodes:
            target = e[-1].target if e[-1].action.type == "click" else e[0].target
            assert target_of.setdefault(e[0].instruction, target) == target
        assert len(set(target_of.values())) >= 3  # the target moves with the instruction


@pytest.mark.parametrize("task", RECALL)
def test_memory_recall_frames_do_not_show_the_target(task):
    """Same layout, other targets: each click step's frame and instruction are the same for every target,
    so a policy that sees only the current frame and instruction is at chance (1 / candidates)."""
    family, renderer = TASKS[task](), Renderer(SIZE)
    for layout_seed in range(10):
        views, targets = set(), set()
        for choice in range(40):
            clicks = [s for s in family.build(layout_seed, choice) if s.action.type == "click"]
            views |= {(renderer.render(s.scene).tobytes(), s.instruction) for s in clicks}
            targets.add(clicks[0].target)
        assert len(views) == 1
        assert len(targets) == len(clicks[0].candidates) >= 4  # every candidate is the target sometimes


def test_click_sequence_clicks_do_not_change_the_frame(env):
    frames, _, _ = rollout(env, 4, "click-sequence")
    recall = [obs.screenshot for obs, oracle in frames if oracle.action.type == "click"]
    assert len(recall) == 3 and all(np.array_equal(recall[0], r) for r in recall)


def test_difficulty_options():
    env = GuiEnv(
        tasks=["click-sequence"], min_candidates=5, max_candidates=5, sequence_length=2, memory_delay=1
    )
    frames, reward, _ = rollout(env, 0, "click-sequence")
    assert reward == 1.0 and len(frames) == 2 + 1 + 2
    assert [o.instruction for o, _ in frames][2] == "Wait"
    assert len(GuiEnv(min_candidates=6).families["click-color"].episode(0)[0].candidates) == 6


# --- config errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, key, words",
    [
        ({"tasks": ["click-color", "foo"]}, "tasks", ["'foo'", "click-color", "remember-target"]),
        ({"tasks": []}, "tasks", ["no task family"]),
        ({"image_size": 31}, "image_size", [">= 32"]),
        ({"max_steps": 5}, "max_steps", ["wait-green"]),  # the longest episode of all families
        ({"min_candidates": 1}, "min_candidates", ["[2, 6]"]),
        ({"max_candidates": 7}, "max_candidates", ["6"]),
        ({"sequence_length": 5}, "sequence_length", ["min_candidates"]),
        ({"memory_delay": -1}, "memory_delay", [">= 0"]),
        ({"colour": 3}, "colour", ["unknown difficulty option", "min_candidates"]),
    ],
)
def test_config_errors(kwargs, key, words):
    with pytest.raises(ConfigError) as error:
        GuiEnv(**kwargs)
    assert error.value.key == key
    for word in words:
        assert word in error.value.message


def test_unknown_task_at_reset():
    with pytest.raises(ConfigError) as error:
        GuiEnv().reset(0, "foo")
    assert error.value.key == "task" and "'foo'" in error.value.message


def test_difficulty_defaults_are_valid():
    assert Difficulty().min_candidates >= 4
