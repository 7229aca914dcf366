"""The GUI timing families: frames after irregular dt, answers that need elapsed time, and dt reaching the
policy through the one episode runner."""

from __future__ import annotations

import pytest
import torch

from lnn.envs import Action, GuiEnv
from lnn.envs.base import FrameClock
from lnn.envs.gui import KINDS, TASKS, families_by_kind
from lnn.envs.gui.families import DT_RANGE, PLAIN, TIMING, Difficulty, WaitGreen, elapsed
from lnn.envs.gui.render import Renderer
from lnn.envs.registry import check_tasks
from lnn.errors import ConfigError
from lnn.rollout import OraclePolicy, TorchPolicy, run_episodes

TIMING_TASKS = ("longest-light", "wait-green", "fastest-blink")
SEEDS = range(200)
# Success over SEEDS of a policy that counts frames and ignores dt (each family's script with dt = 1), as
# measured: longest-light 0.30, fastest-blink 0.33, wait-green 0.41 (1000 seeds). The bounds leave room
# for 200 seeds' noise; the oracle, which uses dt, solves every episode.
FRAME_COUNTING_AT_MOST = {"longest-light": 0.42, "fastest-blink": 0.45, "wait-green": 0.53}
FRAME_COUNTING_AT_LEAST = 0.15  # it is a real baseline (right whenever frames and time agree), not broken


class ScriptPolicy:
    """Plays fixed action scripts, one per (task, seed) job, in job order; records the dt each job is given."""

    def __init__(self, scripts: list[list[Action]]):
        self.scripts, self.rows, self.dts, self.started = scripts, [], [[] for _ in scripts], 0

    def reset(self, batch):  # the runner takes the jobs len(envs) at a time, in order
        self.rows = list(range(self.started, self.started + batch))
        self.started += batch

    def act(self, observations):
        actions = []
        for row, obs in zip(self.rows, observations):
            self.dts[row].append(obs.dt)
            actions.append(self.scripts[row][len(self.dts[row]) - 1])
        return actions, {}

    def keep(self, rows):
        self.rows = [self.rows[r] for r in rows]

    @staticmethod
    def trace_step(obs, action, info, row):
        return {}


def success(policy, envs, task, seeds=SEEDS) -> float:
    results = run_episodes(policy, envs, [(task, s) for s in seeds], desc=None)
    return sum(r.success for r in results) / len(results)


def test_registered_as_the_timing_kind():
    assert TIMING in KINDS and families_by_kind()[TIMING] == TIMING_TASKS
    assert check_tasks("gui", ["timing"]) == TIMING_TASKS
    assert GuiEnv().max_steps >= max(TASKS[t]().max_steps() for t in TIMING_TASKS)  # they fit the default


@pytest.mark.parametrize("task", TIMING_TASKS)
def test_dt_is_drawn_per_frame_and_deterministic_per_seed(task):
    family = TASKS[task]()
    for seed in range(50):
        steps = family.episode(seed)
        assert steps == TASKS[task]().episode(seed)  # frames, actions and dts: the same per seed
        dts = [s.dt for s in steps]
        assert all(DT_RANGE[0] <= dt <= DT_RANGE[1] for dt in dts) and len(set(dts)) > 1
    assert len({tuple(s.dt for s in family.episode(seed)) for seed in range(20)}) == 20
    # the other families' frames come 1 apart
    assert {s.dt for t in TASKS if TASKS[t].kind != TIMING for s in TASKS[t]().episode(0)} == {1.0}


@pytest.mark.parametrize("task", TIMING_TASKS)
def test_dt_scale_stretches_time_and_the_answers_follow_it(task):
    """dt_scale=2: every dt drawn in twice DT_RANGE (a test beyond the training range), and the oracle, which
    answers in seconds, still solves every episode in the env."""
    slow = TASKS[task](Difficulty(dt_scale=2))
    dts = [s.dt for seed in range(30) for s in slow.episode(seed)]
    assert all(2 * DT_RANGE[0] <= dt <= 2 * DT_RANGE[1] for dt in dts) and max(dts) > DT_RANGE[1]
    envs = [GuiEnv(image_size=32, dt_scale=2) for _ in range(4)]
    assert success(OraclePolicy(envs), envs, task) == 1.0
    assert [s.dt for s in TASKS[task](Difficulty(dt_scale=1)).episode(0)] == [s.dt for s in TASKS[task]().episode(0)]


@pytest.mark.parametrize("task", TIMING_TASKS)
def test_a_dt_scale_range_draws_one_scale_per_episode(task):
    """dt_scale=[0.5, 2] (training across time scales): each episode's dts share one scale drawn in the range, the
    scales spread over it, episodes stay deterministic per seed, and the oracle solves every one in the env."""
    family = TASKS[task](Difficulty(dt_scale=[0.5, 2]))  # a list, as from the command line
    assert family.difficulty.dt_scale == (0.5, 2)
    episodes = [[s.dt for s in family.episode(seed)] for seed in range(60)]
    assert episodes[:5] == [[s.dt for s in TASKS[task](Difficulty(dt_scale=(0.5, 2))).episode(seed)] for seed in range(5)]
    assert all(0.5 * DT_RANGE[0] <= dt <= 2 * DT_RANGE[1] for dts in episodes for dt in dts)
    every = [dt for dts in episodes for dt in dts]
    assert min(every) < DT_RANGE[0] and max(every) > DT_RANGE[1]  # faster and slower than scale 1 can draw
    envs = [GuiEnv(image_size=32, dt_scale=[0.5, 2]) for _ in range(4)]
    assert success(OraclePolicy(envs), envs, task, seeds=range(40)) == 1.0


@pytest.mark.parametrize("value", [0.1, 5, "slow", True, [2, 1], [0.5, 5], [1, 2, 3]])
def test_a_dt_scale_out_of_range_is_one_line_naming_it(value):
    with pytest.raises(ConfigError) as info:
        GuiEnv(dt_scale=value)
    assert info.value.key == "dt_scale"


@pytest.mark.parametrize("task", TIMING_TASKS)
def test_observations_carry_the_frames_dt(task):
    env = GuiEnv(image_size=32)
    for seed in range(10):
        obs, done, seen = env.reset(seed, task), False, []
        while not done:
            seen.append(obs.dt)
            obs, _, done, _ = env.step(env.oracle().action)
        assert seen == [s.dt for s in env.families[task].episode(seed)]


def _lit(step):
    """The square lit on a watch frame (its focus), None on the recall frame."""
    return step.focus if step.action.type == "key" else None


def test_longest_light_answer_is_the_longest_in_time():
    """Recomputed from the frames alone: a light is on from its frame's arrival to the next change."""
    family = TASKS["longest-light"]()
    for seed in SEEDS:
        steps = family.episode(seed)
        on: dict = {}
        for k in range(1, len(steps)):
            on[_lit(steps[k - 1])] = on.get(_lit(steps[k - 1]), 0.0) + steps[k].dt  # frame k-1 lasted dt_k
        ranked = sorted(on.values(), reverse=True)
        assert max(on, key=on.get) == steps[-1].target and ranked[0] - ranked[1] >= family.MARGIN


def test_fastest_blink_answer_is_the_shortest_interval_in_time():
    family = TASKS["fastest-blink"]()
    for seed in SEEDS:
        steps = family.episode(seed)
        dts, blinks = [s.dt for s in steps], [_lit(s) for s in steps[:-1]]
        assert all(a != b for a, b in zip(blinks, blinks[1:])) and all(blinks.count(b) == 2 for b in blinks)
        gap = {b: elapsed(dts, blinks.index(b), len(blinks) - 1 - blinks[::-1].index(b)) for b in blinks}
        ranked = sorted(gap.values())
        assert min(gap, key=gap.get) == steps[-1].target and ranked[1] - ranked[0] >= family.MARGIN


def test_wait_green_clicks_on_the_first_frame_green_for_hold_seconds():
    family, renderer = TASKS["wait-green"](), Renderer(32)
    for seed in SEEDS:
        steps = family.episode(seed)
        bars = [s.scene.elements[0] for s in steps]
        assert bars[0].box == WaitGreen.BAR and bars[0].fill == PLAIN
        green = next(k for k, b in enumerate(bars) if b.fill != PLAIN)
        held = [elapsed([s.dt for s in steps], green, k) for k in range(green, len(steps))]
        assert held[-1] >= WaitGreen.HOLD > held[-2]  # clicks at once: neither early nor late
        assert all(abs(h - WaitGreen.HOLD) >= WaitGreen.MARGIN for h in held)
        assert [s.action.type for s in steps] == ["key"] * (len(steps) - 1) + ["click"]
        # every green frame looks the same: a memoryless policy cannot tell when to click
        views = {(renderer.render(s.scene).tobytes(), s.instruction) for s in steps[green:]}
        assert len(views) == 1


@pytest.mark.parametrize("task", TIMING_TASKS)
def test_oracle_solves_every_episode_and_counting_frames_does_not(task):
    family, envs = TASKS[task](), [GuiEnv(image_size=32) for _ in range(4)]
    assert success(OraclePolicy(envs), envs, task) == 1.0
    counting = success(ScriptPolicy([[s.action for s in family.frame_counting(seed)] for seed in SEEDS]), envs, task)
    assert FRAME_COUNTING_AT_LEAST <= counting <= FRAME_COUNTING_AT_MOST[task], counting


def test_waiting_too_long_or_clicking_early_fails():
    env, steps = GuiEnv(image_size=32), TASKS["wait-green"]().episode(3)
    early = [s.action for s in steps[:-2]] + [steps[-1].action]
    late = [s.action for s in steps[:-1]] + [Action("key", text="Enter")]
    for script in (early, late):
        env.reset(3, "wait-green")
        for action in script:
            _, reward, done, info = env.step(action)
        assert (reward, done) == (0.0, True) and "expected a" in info["failure"]


def test_the_runner_passes_the_envs_dt_to_the_policy():
    jobs = [("longest-light", s) for s in range(6)] + [("click-color", 0)]
    episodes = [TASKS[t]().episode(s) for t, s in jobs]
    policy = ScriptPolicy([[s.action for s in e] for e in episodes])
    results = run_episodes(policy, [GuiEnv(image_size=32) for _ in range(3)], jobs, desc=None)
    assert all(r.success for r in results)
    assert policy.dts == [[s.dt for s in e] for e in episodes]


class DtModel(torch.nn.Module):
    """The Lite step API, answering "key"; records the dt of each step."""

    image_size = 32

    def __init__(self):
        super().__init__()
        self.dts = []

    def initial_state(self, batch):
        return [torch.zeros(batch, 1)]

    def tokenize(self, tasks, instructions):
        return torch.zeros(len(tasks), 4, dtype=torch.long)

    def text_inputs(self, tasks, instructions):
        return {"tokens": self.tokenize(tasks, instructions)}

    def step(self, image, tokens, state, dt=None):
        self.dts.append(dt.tolist())
        logits = torch.zeros(image.shape[0], 6)
        logits[:, 4] = 1.0
        return {"action_logits": logits, "coords": torch.full((image.shape[0], 2), 0.5), "tau_values": [], "state": state}


def test_torch_policy_passes_dt_to_the_model():
    model = DtModel()
    run_episodes(TorchPolicy(model), [GuiEnv(image_size=32), GuiEnv(image_size=32)],
                 [("wait-green", 0), ("wait-green", 1)], desc=None)  # fmt: skip
    frames = [TASKS["wait-green"]().episode(s) for s in (0, 1)]
    first = [[e[k].dt for e in frames if k < len(e)] for k in range(len(model.dts))]
    # the key presses are right until each bar has been green long enough: every frame until the click
    assert len(model.dts) == len(first) and model.dts == [pytest.approx(row) for row in first]


def test_frame_clock_measures_wall_clock_seconds(monkeypatch):
    now = iter([10.0, 10.25, 12.0, 50.0])
    monkeypatch.setattr("lnn.envs.base.time.monotonic", lambda: next(now))
    clock = FrameClock()
    assert [clock.tick(), clock.tick(), clock.tick()] == [1.0, 0.25, 1.75]  # the first frame: 1
    clock.reset()
    assert clock.tick() == 1.0
