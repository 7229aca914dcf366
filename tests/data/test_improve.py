"""A policy's own episodes as training data (lnn.data.improve): kept when solved, relabelled by the oracle
when failed; cached by the checkpoint's hash; chained round by round; and the page's oracle in Chromium
labelling the states an untrained policy visits.

Browser tests: `python -m pytest -m browser tests/data/test_improve.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lnn.data import load_episodes
from lnn.data.improve import KEPT, RELABELLED, file_sha256, own_datasets, play_and_label
from lnn.envs import ACTIONS, Action
from lnn.envs.registry import make_env
from lnn.errors import ConfigError
from tests.conftest import needs_miniwob_browser


class Clicks:
    """A policy clicking at one point, or (`oracle`: the env's) where the oracle would."""

    def __init__(self, env, point=(0.02, 0.02), oracle=False):
        self.env, self.point, self.oracle = env, point, oracle

    def reset(self, batch):
        pass

    def keep(self, rows):
        pass

    def act(self, observations):
        action = self.env.oracle().action if self.oracle else Action("click", *self.point)
        return [action], {"coords": [(action.x, action.y)], "tau": [torch.zeros(1, 1)]}


def oracle_at_reset(env, task, seed):
    env.reset(seed, task)
    return env.oracle()


def test_failed_episode_is_relabelled_with_the_oracle_actions_and_a_solved_one_kept():
    env = make_env("gui", tasks=["click-button"], image_size=32)
    # a click in the corner misses the button: the episode fails; its one state gets the oracle's click
    rows, note, outcome = play_and_label(Clicks(env), env, 7, "click-button", 3, max_steps=4)
    truth = oracle_at_reset(env, "click-button", 3)
    assert outcome == RELABELLED and note is None and rows
    first = rows[0]
    assert (first["episode"], first["seed"], first["step"]) == (7, 3, 0)
    assert ACTIONS[first["action"]] == "click"
    assert first["click"] == pytest.approx([truth.action.x, truth.action.y]) != pytest.approx([0.02, 0.02])
    assert first["target_box"] == pytest.approx(list(truth.target_box))

    # the oracle acting as the policy solves it: kept as played
    rows, note, outcome = play_and_label(Clicks(env, oracle=True), env, 8, "click-button", 3, max_steps=4)
    assert outcome == KEPT and len(rows) == 1 and rows[0]["click"] == pytest.approx([truth.action.x, truth.action.y])
    env.close()


def test_rounds_chain_on_fresh_seeds_cached_by_checkpoint_hash(tmp_path, monkeypatch):
    from tests.agent.helpers import fake_run

    run, _ = fake_run(tmp_path)
    args = dict(env="gui", tasks=("click-button", "click-color"), episodes_per_task=3, oracle_episodes=16,
                env_kwargs={"image_size": 32}, max_steps=4, root=tmp_path / "data")  # fmt: skip
    rounds = own_datasets(run, **args)
    assert len(rounds) == 1 and rounds[0]["seeds"] == [16, 19]  # after the oracle's seeds 0..15
    assert rounds[0]["sha256"] == file_sha256(run / "checkpoints" / "best.ckpt")
    counts = rounds[0]["per_task"]
    assert set(counts) == {"click-button", "click-color"} and all(sum(c.values()) == 3 for c in counts.values())
    episodes = load_episodes(Path(rounds[0]["dataset"]), 32)
    assert len(episodes) == 6 - sum(c.get("skipped", 0) for c in counts.values())

    # the same checkpoint again: the cached dataset, nothing played
    import lnn.data.rollouts as rollouts

    monkeypatch.setattr(rollouts, "_record_shard", lambda *a: pytest.fail("played a cached round again"))
    assert own_datasets(run, **args) == rounds
    monkeypatch.undo()

    # a run trained on round 1 (its improve.json) plays the next seeds; its rounds include round 1's
    (run / "improve.json").write_text(json.dumps({"rounds": rounds}))
    again = own_datasets(run / "checkpoints" / "best.ckpt", **args)
    assert [r["seeds"] for r in again] == [[16, 19], [19, 22]] and again[0] == rounds[0]
    with pytest.raises(ConfigError, match="improve.episodes_per_task"):
        own_datasets(run, **(args | {"episodes_per_task": 10_000_000}))


def test_bad_improve_config_stops_before_any_work(make_cfg, tmp_path):
    from lnn.training.run import check_run_config

    for overrides, key in ((["improve.from=" + str(tmp_path / "nothing")], "improve.from"),
                           (["improve.from=" + str(tmp_path), "improve.init=warm"], "improve.from"),):  # fmt: skip
        with pytest.raises(ConfigError, match=key):
            check_run_config(make_cfg(*overrides))
    from tests.agent.helpers import fake_run

    run, _ = fake_run(tmp_path / "r")
    with pytest.raises(ConfigError, match="improve.init"):
        check_run_config(make_cfg("improve.from=" + str(run), "improve.init=warm"))
    with pytest.raises(ConfigError, match="improve.episodes_per_task"):
        check_run_config(make_cfg("improve.from=" + str(run), "improve.episodes_per_task=0"))


@pytest.mark.slow
def test_a_round_trains_on_oracle_and_own_episodes_starting_from_the_policy(make_cfg):
    from lnn.training.run import train

    first = make_cfg("debug=fast", "data.tasks=[click-button]")
    train(first)
    run = first.paths.output_dir
    cfg = make_cfg("debug=fast", "data.tasks=[click-button]", f"improve.from={run}", "improve.episodes_per_task=4")
    cfg.paths.output_dir = run + "-improved"
    train(cfg)
    out = Path(cfg.paths.output_dir)
    info = json.loads((out / "improve.json").read_text())
    assert info["init"] == "checkpoint" and [r["seeds"] for r in info["rounds"]] == [[16, 20]]
    assert "| click-button |" in (out / "eval" / "improve.md").read_text()


@pytest.mark.browser
@needs_miniwob_browser
def test_miniwob_oracle_labels_the_states_an_untrained_policy_visits_and_training_runs(tmp_path, make_cfg):
    """Real Chromium, 2 tasks x 3 seeds, an untrained tiny Lite: the dataset is written, each relabelled
    episode's first row is the oracle's click on that seed's first frame, and a training run uses it."""
    from tests.agent.helpers import fake_run

    tasks = ("click-button", "click-link")
    run, _ = fake_run(tmp_path / "policy", env="miniwob", tasks=tasks)
    rounds = own_datasets(run, "miniwob", tasks, 3, 500, {"image_size": 32}, max_steps=3, root=tmp_path / "data")
    path, counts = rounds[0]["dataset"], rounds[0]["per_task"]
    assert rounds[0]["seeds"] == [500, 503] and set(counts) == set(tasks)
    assert sum(c.get(KEPT, 0) + c.get(RELABELLED, 0) for c in counts.values()) >= 5

    import datasets as hf

    ds = hf.load_from_disk(path).remove_columns("screenshot")
    firsts = [row for row in ds if row["step"] == 0]  # one-click tasks: the first frame is the state
    env = make_env("miniwob", tasks=list(tasks), image_size=32)
    try:
        truths = [oracle_at_reset(env, row["task"], row["seed"]) for row in firsts]
    finally:
        env.close()
    oracle_clicks = 0
    for row, truth in zip(firsts, truths):
        assert row["target_box"] == pytest.approx(list(truth.target_box), abs=1e-5)  # the oracle's box, always
        if row["click"] == pytest.approx([truth.action.x, truth.action.y], abs=1e-5):
            oracle_clicks += 1  # relabelled: the oracle's click
        else:  # kept: the policy's own click, which solved the episode
            x0, y0, x1, y1 = truth.target_box
            assert x0 <= row["click"][0] <= x1 and y0 <= row["click"][1] <= y1
    assert oracle_clicks >= sum(c.get(RELABELLED, 0) for c in counts.values()) > 0

    cfg = make_cfg("debug=fast", "data=miniwob", f"data.tasks=[{','.join(tasks)}]", "model.image_size=32",
                   "data.episodes_per_task={train:2,val:1,test:1}", f"improve.from={run}", "improve.episodes_per_task=3",
                   "improve.init=scratch", "callbacks.tau_plots=null")  # fmt: skip
    from lnn.training.run import train

    results = train(cfg)
    assert "test/success/click-button" in results
    assert set(json.loads(Path(cfg.paths.output_dir, "improve.json").read_text())["rounds"][0]["per_task"]) == set(tasks)
