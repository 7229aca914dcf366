import pytest

from lnn.agent import TorchPolicy, run_episodes, success_table
from lnn.agent import format_table
from lnn.envs import Action
from tests.agent.helpers import ScriptedEnv, tiny_model


class AlwaysClick:
    def __init__(self):
        self.batch = []

    def reset(self, batch):
        self.batch = list(range(batch))

    def act(self, observations):
        import torch

        return [Action("click", 0.5, 0.5) for _ in observations], {"tau": [torch.zeros(len(observations), 1)],
                                                                   "coords": [(0.5, 0.5)] * len(observations)}  # fmt: skip

    def keep(self, rows):
        self.batch = [self.batch[r] for r in rows]


def test_an_aborted_episode_fails_with_its_reason_and_the_run_goes_on():
    faults = {(1, 1): "abort", (2, 0): "abort"}  # seed 1 at its second step, seed 2 at its first
    envs = [ScriptedEnv(faults=faults), ScriptedEnv(faults=faults)]
    jobs = [("scripted", seed) for seed in range(5)]
    results = run_episodes(AlwaysClick(), envs, jobs)
    assert [r.seed for r in results] == list(range(5))
    failed = {r.seed: r.failure for r in results if not r.success}
    assert set(failed) == {1, 2} and failed[1] == "aborted: browser crashed at seed 1 step 1"
    assert all(r.success and r.steps == 2 for r in results if r.seed not in failed)


def test_episodes_that_do_not_end_fail_after_max_steps():
    results = run_episodes(AlwaysClick(), [ScriptedEnv(length=9)], [("scripted", 0)], max_steps=3)
    assert results[0].failure == "no end after 3 steps" and results[0].steps == 3 and not results[0].success


def test_traces_are_kept_for_the_chosen_episodes_only():
    policy = TorchPolicy(tiny_model())
    results = run_episodes(policy, [ScriptedEnv(), ScriptedEnv()], [("scripted", s) for s in range(3)],
                           record=lambda task, seed: seed == 1)  # fmt: skip
    assert [len(r.trace) for r in results] == [0, 2, 0]
    step = results[1].trace[0]
    assert step["screenshot"].shape == (32, 32, 3) and len(step["coords"]) == 2 and len(step["tau"]) == 2
    assert all(len(r.actions) == r.steps for r in results)


def test_success_table_has_a_mean_over_tasks_with_an_interval():
    from lnn.agent import EpisodeResult

    results = [EpisodeResult("a", s, s < 8, 1) for s in range(10)] + [EpisodeResult("b", s, s < 4, 1) for s in range(10)]
    rows = {r["task"]: r for r in success_table(results, {"a": "k", "b": "k"})}
    assert rows["a"]["success"] == 0.8 and rows["[all]"]["success"] == 0.6 == pytest.approx(rows["[mean]"]["success"])
    assert rows["a"]["ci_low"] < 0.8 < rows["a"]["ci_high"] and (rows["[mean]"]["ci_low"], rows["[mean]"]["ci_high"]) == (rows["[all]"]["ci_low"], rows["[all]"]["ci_high"])
    assert "| [mean] | 20 | 60.0% |" in format_table(list(rows.values()))


def test_closed_loop_evaluation_stops_episodes_that_never_end(monkeypatch):
    from types import SimpleNamespace

    from lnn.envs import registry
    from lnn.training.closed_loop import evaluate_model

    monkeypatch.setitem(registry.ENVS, "scripted", ("tests.agent.helpers", "ScriptedEnv", "SCRIPTED_TASKS"))
    dm = SimpleNamespace(env="scripted", tasks=("scripted",), env_kwargs={"length": 10**6}, max_envs=2, max_steps=3)
    results = evaluate_model(tiny_model(), dm, [("scripted", s) for s in range(3)], parallel=8)
    assert [r.failure for r in results] == ["no end after 3 steps"] * 3


@pytest.mark.parametrize("n", [1, 7, 50, 100, 450])
def test_wilson_interval_contains_the_rate_even_at_zero_and_one(n):
    from lnn.agent import wilson_interval

    for wins in range(n + 1):
        low, high = wilson_interval(wins, n)
        assert 0.0 <= low <= wins / n <= high <= 1.0
    assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0
