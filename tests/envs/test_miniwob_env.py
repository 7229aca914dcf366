"""MiniWobEnv in real headless Chromium. Run with `python -m pytest -m browser tests/envs/test_miniwob_env.py`.

One browser serves the whole module (launching costs ~1 s); the fault tests restart it on purpose.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from lnn.envs.base import PART_ATTRIBUTES, Action
from lnn.errors import ConfigError

pytest.importorskip("miniwob", reason="the MiniWoB++ task pages come from the miniwob package (pip install miniwob)")

from lnn.envs.miniwob import (  # noqa: E402
    ORACLE_KINDS,
    ORACLE_TASKS,
    BrowserMissingError,
    EpisodeAborted,
    MiniWobEnv,
    run_oracle_episode,
)
from tests.conftest import needs_miniwob_browser  # noqa: E402

TASKS = ["click-button", "click-test-2", "grid-coordinate", "count-sides", "click-option", "navigate-tree", "click-tab",
         "enter-text", "drag-box", "drag-items", "enter-text-2", "count-shape", "click-shape",
         "click-widget"]


@pytest.fixture(scope="module")
def env():
    with MiniWobEnv(TASKS, step_timeout_s=10) as env:
        yield env


# ------------------------------------------------------------------ no browser needed


def test_unknown_task_is_a_config_error_naming_the_available_ones():
    with pytest.raises(ConfigError) as e:
        MiniWobEnv(["click-button", "click-buton"])
    assert e.value.key == "tasks"
    assert "unknown MiniWoB task 'click-buton'" in str(e.value) and "click-button" in str(e.value)


def test_missing_chromium_says_how_to_install_it():
    with pytest.raises(BrowserMissingError, match="apt-get install -y chromium fonts-liberation"):
        MiniWobEnv(["click-test"], executable_path="/nonexistent/chromium")


def test_registry_only_lists_tasks_with_an_oracle():
    assert set(ORACLE_TASKS) <= set(ORACLE_KINDS)
    assert set(ORACLE_TASKS.values()) <= {"single-click", "two-click", "multi-click", "drag", "typing"}


# ------------------------------------------------------------------ in Chromium


@pytest.mark.browser
@needs_miniwob_browser
def test_same_seed_same_episode(env):
    first = env.reset(3, "click-button")
    assert first.screenshot.shape == (210, 160, 3) and first.screenshot.dtype == np.uint8
    assert first.task == "click-button" and first.instruction.startswith("Click on the")
    other = env.reset(4, "click-button")
    again = env.reset(3, "click-button")
    assert again.instruction == first.instruction
    np.testing.assert_array_equal(again.screenshot, first.screenshot)
    assert (other.instruction, other.screenshot.tobytes()) != (first.instruction, first.screenshot.tobytes())


@pytest.mark.browser
@needs_miniwob_browser
def test_same_seed_same_episode_in_a_fresh_browser(env):
    # a fresh page has not loaded the tree's icons yet, and a used one has focus and hover left over
    for seed in range(3):
        run_oracle_episode(env, seed, "navigate-tree")
    used = env.reset(7, "navigate-tree")
    with MiniWobEnv(["navigate-tree"]) as fresh_env:
        fresh = fresh_env.reset(7)
    assert used.instruction == fresh.instruction
    np.testing.assert_array_equal(used.screenshot, fresh.screenshot)


@pytest.mark.browser
@needs_miniwob_browser
def test_python_registry_matches_the_page_oracles(env):
    env.reset(0, "click-button")
    assert set(env._page.evaluate("lnn.oracleTasks")) == set(ORACLE_KINDS)


@pytest.mark.browser
@needs_miniwob_browser
def test_task_defaults_to_seed_modulo_tasks(env):
    assert env.reset(len(TASKS) + 1).task == TASKS[1]


@pytest.mark.browser
@needs_miniwob_browser
@pytest.mark.parametrize("task", ["click-button", "count-sides", "click-option", "navigate-tree", "click-tab"])
def test_oracle_solves_the_task(env, task):
    for seed in range(3):
        episode = run_oracle_episode(env, seed, task)
        assert episode.success, (task, seed, episode.reason)
        for _obs, step in episode.steps:
            x0, y0, x1, y1 = step.target_box
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
            assert x0 <= step.action.x <= x1 and y0 <= step.action.y <= y1


@pytest.mark.browser
@needs_miniwob_browser
@pytest.mark.parametrize("task", ["drag-box", "drag-items", "enter-text-2"])
def test_oracle_solves_drag_and_typing_tasks(env, task):
    # real drags (press, mousemoves, release) move jQuery UI draggables and sortables; typing fills a field
    kinds = set()
    for seed in range(3):
        episode = run_oracle_episode(env, seed, task)
        assert episode.success, (task, seed, episode.reason)
        kinds |= {step.action.type for _obs, step in episode.steps}
    assert kinds == ({"type", "click"} if task == "enter-text-2" else {"drag", "click"} if task == "drag-box" else {"drag"})


@pytest.mark.browser
@needs_miniwob_browser
def test_oracle_drag_and_type_steps(env):
    env.reset(0, "drag-box")
    step = env.oracle()
    a = step.action
    assert a.type == "drag"
    assert 0 <= a.x <= 1 and 0 <= a.y <= 1 and 0 <= a.x2 <= 1 and 0 <= a.y2 <= 1
    x0, y0, x1, y1 = step.target_box  # the small box, where the press lands
    assert x0 <= a.x <= x1 and y0 <= a.y <= y1
    assert (a.x2, a.y2) != (a.x, a.y)

    # typing: click the field, then a type step that targets nothing and focuses the field
    env.reset(0, "enter-text-2")
    click = env.oracle()
    assert click.action.type == "click"
    env.step(click.action)
    typing = env.oracle()
    assert typing.action.type == "type" and typing.action.text.strip()
    assert typing.target_box is None and typing.focus_box == click.target_box


@pytest.mark.browser
@needs_miniwob_browser
def test_a_click_can_focus_what_its_answer_is_read_from(env):
    # count-sides: the click goes to a numbered button, the look to the polygon's canvas above them
    env.reset(0, "count-sides")
    step = env.oracle()
    assert step.action.type == "click" and step.focus_box != step.target_box
    (fx0, fy0, fx1, fy1), (tx0, ty0, tx1, ty1) = step.focus_box, step.target_box
    assert fx1 - fx0 > 0.8 and fy1 < ty0  # the 150 px canvas across the task area, over the buttons
    assert tx0 <= step.action.x <= tx1 and ty0 <= step.action.y <= ty1
    env.reset(0, "count-shape")  # the count is read from the shapes' svg, above the count buttons
    step = env.oracle()
    assert step.focus_box != step.target_box and step.focus_box[3] <= step.target_box[1]
    env.reset(0, "click-button")
    plain = env.oracle()
    assert plain.focus == plain.target_box  # an oracle that names no look: the focus is the target


@pytest.mark.browser
@needs_miniwob_browser
@pytest.mark.parametrize("task", ["click-shape", "click-widget"])
def test_every_other_box_an_oracle_names_is_as_right_to_click(env, task):
    # click-shape's descriptions are lossy ("a large item"), click-widget's 5 widgets repeat types: every
    # shape or widget that fits wins, and the oracle names them all, so training does not punish a click on
    # one the oracle happened not to choose
    named = 0
    for seed in range(6):
        env.reset(seed, task)
        step = env.oracle()
        named += len(step.other_boxes)
        for x0, y0, x1, y1 in step.other_boxes:
            assert (x0, y0, x1, y1) != step.target_box
            env.reset(seed, task)
            _, reward, done, info = env.step(Action("click", (x0 + x1) / 2, (y0 + y1) / 2))  # its centre
            assert done and reward > 0 and info["success"], (seed, (x0, y0, x1, y1))
    assert named >= 3  # most seeds fit several


@pytest.mark.browser
@needs_miniwob_browser
@pytest.mark.parametrize("task", ["click-shape", "count-shape"])
def test_the_shapes_oracles_say_what_every_shape_is(env, task):
    # `parts`: every shape of the grid with its type, text, colour and size, read from the page's own grid; the
    # shapes the instruction asks for are among them, with the labels it names
    for seed in range(4):
        words = env.reset(seed, task).instruction.rstrip("?").split()
        step = env.oracle()
        assert 3 <= len(step.parts) <= 20
        names = [{name: values[i] for (name, values), i in zip(PART_ATTRIBUTES.items(), part.labels)}
                 for part in step.parts]  # fmt: skip
        for part, name in zip(step.parts, names):
            x0, y0, x1, y1 = part.box
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and min(part.labels) >= 0
            assert (name["type"] == "shape") == (name["text"] in ("circle", "rectangle", "triangle"))
            assert name["size"] == ("large" if y1 - y0 > 15 / 210 else "small"), (name, part.box)  # 20 px or 10 px
        if task == "click-shape":  # the clicked shape is a part, and it has what the instruction names
            clicked = names[[part.box for part in step.parts].index(step.target_box)]
            for attribute in ("size", "color"):
                said = set(words) & set(PART_ATTRIBUTES[attribute])
                assert not said or said == {clicked[attribute]}, (step.action, words, clicked)


@pytest.mark.browser
@needs_miniwob_browser
def test_wrong_clicks_do_not_succeed(env):
    # a click on the instruction does nothing; "done" then ends the episode without success
    env.reset(0, "click-button")
    _, reward, done, info = env.step(Action("click", 0.5, 0.05))
    assert (reward, done, info["success"]) == (0.0, False, False)
    _, reward, done, info = env.step(Action("done"))
    assert (reward, done, info["success"], info["reason"]) == (0.0, True, False, "agent-done")

    # the circle next to the right one on grid-coordinate's 30 px grid: the task answers -1
    env.reset(0, "grid-coordinate")
    right = env.oracle().action
    dx = 30 / 160 if right.x < 0.5 else -30 / 160
    _, reward, done, info = env.step(Action("click", right.x + dx, right.y))
    assert done and reward == -1.0 and not info["success"]
    assert info["reason"] is None  # the task gives no reason (not the string "undefined")


@pytest.mark.browser
@needs_miniwob_browser
def test_other_actions_run_and_keep_the_episode_going(env):
    env.reset(1, "click-button")
    for action in [Action("type", text="hello"), Action("key", text="Tab"), Action("scroll", 0.5, 0.5, "down"),
                   Action("navigate", text="http://example.com")]:
        obs, reward, done, info = env.step(action)
        assert not done and reward == 0.0
    assert info["ignored"]  # navigate
    assert "unknown key" in env.step(Action("key", text="NoSuchKey"))[3]["ignored"]  # the browser lives on
    assert env.step(Action("done"))[2]
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(Action("click", 0.5, 0.5))


@pytest.mark.browser
@needs_miniwob_browser
def test_dt_is_the_wall_clock_time_between_screenshots(env):
    import time

    assert env.reset(1, "click-button").dt == 1.0  # nothing came before an episode's first frame
    time.sleep(0.3)
    first = env.step(Action("key", text="Tab"))[0].dt
    second = env.step(Action("key", text="Tab"))[0].dt
    assert first >= 0.3 and 0 < second < first  # the policy's think time counts; seconds, not steps
    assert env.reset(2, "click-button").dt == 1.0


def _click_on(env, selector: str) -> Action:
    """A click at the centre of the element (read from the page: enter-text has no oracle)."""
    x0, y0, x1, y1 = env._page.evaluate("s => lnn.box(document.querySelector(s))", selector)
    return Action("click", (x0 + x1) / 2, (y0 + y1) / 2)


@pytest.mark.browser
@needs_miniwob_browser
def test_typing_and_keys_reach_the_page(env):
    obs = env.reset(2, "enter-text")
    name = obs.instruction.split('"')[1]
    for action in [_click_on(env, "#tt"), Action("type", text=name + "x"), Action("key", text="Backspace"),
                   _click_on(env, "#subbtn")]:
        _, reward, done, info = env.step(action)
    assert done and reward == 1.0 and info["success"]


@pytest.mark.browser
@needs_miniwob_browser
@pytest.mark.parametrize("size, shape", [(64, (64, 64, 3)), ([105, 80], (105, 80, 3))])
def test_image_size_resizes_to_a_square_or_height_width(env, size, shape):
    env.image_size = size
    try:
        assert env.reset(0, "click-tab").screenshot.shape == shape
    finally:
        env.image_size = None


@pytest.mark.browser
@needs_miniwob_browser
def test_killed_browser_aborts_the_episode_and_the_env_recovers(env):
    env.reset(5, "click-button")
    restarts, old_pid = env.restarts, env.browser_pid
    os.kill(old_pid, 9)
    with pytest.raises(EpisodeAborted, match="browser crashed") as e:
        env.step(Action("click", 0.5, 0.5))
    assert e.value.reason
    assert env.restarts == restarts + 1 and env.browser_pid != old_pid
    assert run_oracle_episode(env, 5, "click-button").success


@pytest.mark.browser
@needs_miniwob_browser
def test_hung_page_times_out_and_the_env_recovers(env):
    env.reset(6, "click-test-2")
    env.step_timeout_s = 2.0
    try:
        env._page.evaluate("setTimeout(() => { while (true) {} }, 0)")  # the page's main thread never returns
        with pytest.raises(EpisodeAborted, match="exceeded step_timeout_s=2"):
            env.step(Action("click", 0.5, 0.5))
    finally:
        env.step_timeout_s = 10.0
    assert run_oracle_episode(env, 6, "click-test-2").success


def _mojibake(text: str) -> bool:
    """UTF-8 bytes read as Latin-1 ("确定" shown as "ç¡®å®š") round-trip back to different text."""
    try:
        return text.encode("latin-1").decode("utf-8") != text
    except UnicodeError:
        return False


@pytest.mark.browser
@needs_miniwob_browser
def test_pages_are_read_as_utf8():
    with MiniWobEnv(["unicode-test"], step_timeout_s=10) as env:
        instructions = [env.reset(seed, "unicode-test").instruction for seed in range(12)]
    assert any(any(ord(c) > 0x2000 for c in i) for i in instructions), instructions  # symbols and CJK arrive
    assert not any(_mojibake(i) for i in instructions), instructions


@pytest.mark.browser
@needs_miniwob_browser
def test_the_frames_show_the_instruction_in_the_query_box(env):
    """The pixels-only setting (model.instruction=pixels) relies on it: MiniWoB draws the utterance in #query,
    which lies inside the observed task area, with text pixels in it."""
    for task in ("grid-coordinate", "click-tab"):
        obs = env.reset(20_000_000, task)
        x0, y0, x1, y1 = env._page.evaluate("lnn.box(document.getElementById('query'))")
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and (y1 - y0) * 210 >= 40  # the 50 px box at the top
        assert env._page.evaluate("document.getElementById('query').innerText").strip() == obs.instruction
        h, w = obs.screenshot.shape[:2]
        box = obs.screenshot[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)].astype(int)
        assert (box.sum(-1) < 300).mean() > 0.01  # dark glyphs on the yellow (255, 255, 0) box
