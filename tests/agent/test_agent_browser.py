"""The agent in real headless Chromium: MiniWoB tasks, a crash mid-episode, the seed's --url form.

Run with `python -m pytest -m browser tests/agent/test_agent_browser.py`.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import needs_miniwob_browser

pytestmark = [
    pytest.mark.browser,
    needs_miniwob_browser,
]


def test_agent_runs_miniwob_tasks_and_writes_its_table(tmp_path):
    from lnn.agent.cli import run
    from tests.agent.helpers import fake_run

    run_dir, _ = fake_run(tmp_path, env="miniwob", tasks=["click-test", "click-button"])
    out = run([f"ckpt={run_dir}", "episodes=3", "parallel=2", "max_steps=3", "trace=1", f"out={tmp_path / 'out'}"])
    table = (out / "success.md").read_text()
    assert "| click-test | 3 |" in table and "| click-button | 3 |" in table and "| [single-click] | 6 |" in table
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 6 and all(e["success"] or e["failure"] for e in episodes)
    assert sorted(p.name for p in (out / "trace").glob("*.gif")) == ["click-button-seed20000000.gif",
                                                                    "click-test-seed20000000.gif"]  # fmt: skip
    info = json.loads((out / "agent.json").read_text())
    assert info["env"] == "miniwob" and info["agent_steps_per_s"] > 0 and info["aborted_episodes"] == 0


def test_pix2act_protocol_on_two_tasks_and_the_table_beside_published_figures(tmp_path):
    """The protocol's seeds and step limit in Chromium (2 tasks x 2 seeds here; the real run is 100 x 19), then
    experiments/miniwob/pix2act_table.py: blanks where no published figure was found."""
    import subprocess
    import sys
    from pathlib import Path

    from lnn.agent.cli import run
    from tests.agent.helpers import fake_run

    run_dir, _ = fake_run(tmp_path, env="miniwob", tasks=["click-test", "click-button"])
    out = run([f"ckpt={run_dir}", "protocol=pix2act", "episodes=2", "parallel=2", "trace=0", f"out={tmp_path / 'out'}"])
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert {(e["task"], e["seed"]) for e in episodes} == {(t, s) for t in ("click-test", "click-button")
                                                          for s in (1201539860, 1201539861)}  # fmt: skip
    assert all(e["steps"] <= 28 for e in episodes)
    script = Path(__file__).resolve().parents[2] / "experiments" / "miniwob" / "pix2act_table.py"
    env = {**os.environ, "PYTHONPATH": str(script.parents[2] / "src")}
    done = subprocess.run([sys.executable, str(script), str(out), "--out", str(tmp_path / "table")], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "table" / "pix2act_table.md").read_text()
    assert "protocol pix2act: 2 seeds per task (1201539860..1201539861), at most 28 actions" in table
    assert any(line.startswith("| click-test |") and line.endswith("|  |  |") for line in table.splitlines())
    assert (tmp_path / "table" / "pix2act_table.png").stat().st_size > 0


def test_a_browser_killed_mid_episode_fails_that_episode_and_the_run_goes_on():
    from lnn.agent import TorchPolicy, run_episodes
    from lnn.envs.miniwob import MiniWobEnv
    from tests.agent.helpers import tiny_model

    env = MiniWobEnv(["click-test-2"], image_size=32, step_timeout_s=10)

    class KillOnce(TorchPolicy):
        calls = 0

        def act(self, observations):
            KillOnce.calls += 1
            if KillOnce.calls == 3:  # the second step of the second episode (episodes here last 2 steps or more)
                os.kill(env.browser_pid, 9)
            return super().act(observations)

    class Wander(KillOnce):  # clicks the instruction bar: never ends an episode by itself
        def act(self, observations):
            actions, info = super().act(observations)
            from lnn.envs import Action

            return [Action("click", 0.5, 0.02) for _ in actions], info

    try:
        results = run_episodes(Wander(tiny_model()), [env], [("click-test-2", s) for s in range(3)], max_steps=2)
        pid_after = env.browser_pid
    finally:
        env.close()
    assert [r.seed for r in results] == [0, 1, 2]
    assert results[0].failure == "no end after 2 steps" == results[2].failure
    assert results[1].failure.startswith("aborted: ") and "browser crashed" in results[1].failure
    assert env.restarts == 1 and pid_after


def test_the_seeds_url_form_acts_on_a_local_page(tmp_path, monkeypatch, capsys):
    from lnn.agent.cli import run
    from tests.agent.helpers import fake_run

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    page = tmp_path / "page.html"
    page.write_text("<html><body style='margin:0'><button style='width:100%;height:100%'>OK</button></body></html>")
    run_dir, _ = fake_run(tmp_path, env="miniwob", tasks=["click-test"])
    out = run([f"ckpt={run_dir}", "--url", str(page), "--task", "Click the OK button", "--viewport", "320x240",
               "--steps", "2", "--out", str(tmp_path / "out"), "--headed"])  # fmt: skip
    assert "no display" in capsys.readouterr().err  # asked for a window without a display: headless, saying so
    episode = json.loads((out / "episode.json").read_text())
    assert episode["instruction"] == "Click the OK button" and 1 <= episode["steps"] <= 2
    assert (out / "trace" / "web-seed0.gif").exists()
