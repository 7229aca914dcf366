"""The agent CLI and checkpoint loading, on the embedded GUI env (no browser needed)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lnn.agent import find_checkpoint, load_policy_model
from lnn.agent.cli import parse_args, run
from lnn.errors import ConfigError
from tests.agent.helpers import fake_run
from tests.conftest import run_cli


def test_load_policy_model_from_a_run_dir_or_its_ckpt(tmp_path):
    run_dir, model = fake_run(tmp_path)
    image, tokens = torch.rand(2, 3, 32, 32), model.tokenize(["click-color"] * 2, ["Click the red square"] * 2)
    expected = model.step(image, tokens, model.initial_state(2))["coords"]
    for path in (run_dir, run_dir / "checkpoints" / "best.ckpt"):
        loaded = load_policy_model(path)
        assert not loaded.training and loaded.lnn_checkpoint.run_dir == run_dir
        torch.testing.assert_close(loaded.step(image, tokens, loaded.initial_state(2))["coords"], expected)


def test_checkpoint_paths_that_are_not_runs_say_what_is_expected(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        find_checkpoint(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no checkpoints/best.ckpt"):
        find_checkpoint(tmp_path)
    run_dir, _ = fake_run(tmp_path)
    (run_dir / "config.yaml").unlink()
    with pytest.raises(ConfigError, match="config.yaml not found"):
        find_checkpoint(run_dir / "checkpoints" / "best.ckpt")


def test_arguments_in_every_form():
    assert parse_args(["ckpt=a", "--url", "p.html", "--task", "Click OK", "--headed", "--episodes=3"]) == {
        "ckpt": "a", "url": "p.html", "task": "Click OK", "headless": "false", "episodes": "3"}  # fmt: skip
    with pytest.raises(ConfigError, match="unknown argument; known: ckpt"):
        parse_args(["ckpt=a", "epsiodes=3"])


def test_agent_writes_the_table_the_episodes_and_traces(tmp_path):
    run_dir, _ = fake_run(tmp_path)
    out = run([f"ckpt={run_dir}", "task=click-color,memory", "episodes=4", "trace=2", f"out={tmp_path / 'out'}"])
    table = (out / "success.md").read_text()
    for row in ("| click-color | 4 |", "| remember-target | 4 |", "| remember-color | 4 |", "| [memory] | 12 |", "| [mean] | 16 |"):
        assert row in table  # a kind (memory) stands for all its tasks
    episodes = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 16 and {e["seed"] for e in episodes} == set(range(20_000_000, 20_000_004))  # test seeds
    assert all(len(e["actions"]) == e["steps"] for e in episodes)
    assert all(e["instruction"] for e in episodes)  # what each was asked: a failure can be read
    assert all(e["instruction"].startswith("Click the ") for e in episodes if e["task"] == "click-color")
    gifs = sorted(p.name for p in (out / "trace").glob("*.gif"))
    assert len(gifs) == 8 and "click-color-seed20000000.gif" in gifs and (out / "trace" / "strip.png").exists()
    gif = Image.open(out / "trace" / gifs[0])
    assert gif.n_frames >= 1 and gif.size[0] == 320
    info = json.loads((out / "agent.json").read_text())
    assert info["agent_steps_per_s"] > 0 and info["backend"].startswith("pytorch") and info["env"] == "gui"


def test_trace_draws_the_predicted_click(tmp_path):
    from lnn.agent import EpisodeResult
    from lnn.agent.trace import draw_step
    from lnn.envs import Action

    frame = draw_step(np.full((32, 32, 3), 255, np.uint8), Action("click", 0.25, 0.5), "Click", 1, width=160)
    pixels = np.asarray(frame)
    x, y = round(0.25 * 159), round(0.5 * 159)  # the click point in the 160 x 160 frame
    assert (pixels[y - 1 : y + 2, x + 9] != 255).any() and (pixels[y + 9, x - 1 : x + 2] != 255).any()  # cross-hair arms
    assert (pixels[y - 1 : y + 2, x + 30] == 255).all()
    assert isinstance(EpisodeResult("t", 0, True, 1).trace, list)


@pytest.mark.parametrize("args, message", [
    (["task=click-buton", "env=miniwob"], "error: task — unknown MiniWoB task 'click-buton'; available: "),
    (["task=click-colour"], "error: task — unknown task 'click-colour'; available: "),
    (["task=click-color", "episodes=zero"], "error: episodes — must be an integer"),
])  # fmt: skip
def test_bad_arguments_are_one_line(tmp_path, capsys, args, message):
    from lnn.agent.cli import main

    run_dir, _ = fake_run(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([f"ckpt={run_dir}", *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err


def test_dt_scale_runs_the_timing_families_slower_than_training(tmp_path):
    """dt_scale=2 goes into the env's settings, which the plan records (a resume with another dt_scale is refused)."""
    run_dir, _ = fake_run(tmp_path)
    out = run([f"ckpt={run_dir}", "task=longest-light", "episodes=2", "trace=0", "dt_scale=2", f"out={tmp_path / 'out'}"])
    plan = json.loads((out / "plan.json").read_text())
    assert plan["env_kwargs"]["dt_scale"] == 2.0
    with pytest.raises(ConfigError) as info:
        run([f"ckpt={run_dir}", "task=click-button", "env=miniwob", "dt_scale=2", f"out={tmp_path / 'mw'}"])
    assert info.value.key == "dt_scale"


def test_solver_and_unfolds_integrate_a_checkpoint_otherwise_than_trained(tmp_path):
    """unfolds=3 / solver=rk4: the loaded copy's ODE cells step so (the state moves differently over a long dt),
    the rest as trained; the plan's backend says so (a resume with other sub-steps is refused); bad values and a
    core without ODE cells are one line naming the key."""
    from lnn.agent.cli import open_policy

    run_dir, model = fake_run(tmp_path)  # trained: euler, 1 sub-step
    image, tokens = torch.rand(2, 3, 32, 32), model.tokenize(["click-color"] * 2, ["Click the red square"] * 2)
    dt = torch.full((2,), 3.0)
    trained = model.step(image, tokens, model.initial_state(2), dt=dt)["state"]
    policy, _, backend = open_policy(str(run_dir), unfolds=3)
    cells = policy.model.solver_cells()
    assert [(c.solver, c.unfolds) for c in cells] == [("euler", 3)] * len(cells) and "euler x 3" in backend
    assert [c.unfolds for c in model.solver_cells()] == [1] * len(cells)  # a copy: the checkpoint's model untouched
    again = policy.model.step(image, tokens, policy.model.initial_state(2), dt=dt)["state"]
    assert not torch.allclose(again[0], trained[0])
    policy, _, backend = open_policy(str(run_dir), solver="rk4")
    assert [(c.solver, c.unfolds) for c in policy.model.solver_cells()][0] == ("rk4", 1) and "rk4 x 1" in backend

    out = run([f"ckpt={run_dir}", "task=longest-light", "episodes=1", "trace=0", "unfolds=2", f"out={tmp_path / 'out'}"])
    assert "euler x 2" in json.loads((out / "plan.json").read_text())["backend"]
    with pytest.raises(ConfigError, match="backend"):
        run([f"ckpt={run_dir}", "task=longest-light", "episodes=1", "trace=0", f"out={out}"])
    for bad, key in (("unfolds=0", "unfolds"), ("unfolds=two", "unfolds"), ("solver=leapfrog", "solver")):
        with pytest.raises(ConfigError) as info:
            run([f"ckpt={run_dir}", "task=click-color", bad, f"out={tmp_path / 'bad'}"])
        assert info.value.key == key, bad
    gru_dir, _ = fake_run(tmp_path / "gru", core="gru")
    with pytest.raises(ConfigError, match="no ODE cells") as info:
        run([f"ckpt={gru_dir}", "task=click-color", "unfolds=2", f"out={tmp_path / 'gru_out'}"])
    assert info.value.key == "unfolds"


def test_a_run_trained_on_every_task_is_evaluated_on_every_task(tmp_path):
    """data.tasks: null (experiment=core_comparison) means every family of the run's env, not "name the tasks"."""
    from lnn.envs.registry import env_tasks

    run_dir, _ = fake_run(tmp_path, tasks=None)
    out = run([f"ckpt={run_dir}", "episodes=1", "trace=0", f"out={tmp_path / 'out'}"])
    assert json.loads((out / "plan.json").read_text())["tasks"] == list(env_tasks("gui"))


def test_unknown_task_from_the_command_line(tmp_path):
    run_dir, _ = fake_run(tmp_path)
    result = run_cli("-m", "lnn.agent", f"ckpt={run_dir}", "task=click-buton", "env=miniwob", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: task — unknown MiniWoB task 'click-buton'; available: ")


def test_missing_chromium_is_one_line_saying_how_to_install_it(tmp_path):
    pytest.importorskip("miniwob")
    run_dir, _ = fake_run(tmp_path, env="miniwob", tasks=["click-test"])
    result = run_cli("-m", "lnn.agent", f"ckpt={run_dir}", "episodes=1", cwd=tmp_path,
                     env={"LNN_CHROMIUM": "/nonexistent/chromium"})  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "Chromium not found at /nonexistent/chromium; install it with: apt-get install -y chromium" in result.stderr


def test_pix2act_protocol_sets_its_seeds_and_step_limit(tmp_path):
    from lnn.agent.cli import AgentOptions

    opts = AgentOptions.parse(["ckpt=a", "protocol=pix2act"])
    assert (opts.episodes, opts.seed, opts.max_steps) == (100, 1201539860, 28)
    assert AgentOptions.parse(["ckpt=a", "protocol=pix2act", "episodes=2"]).episodes == 2  # a quick check
    with pytest.raises(ConfigError, match="unknown protocol 'pix2ack'; known: pix2act"):
        AgentOptions.parse(["ckpt=a", "protocol=pix2ack"])
    run_dir, _ = fake_run(tmp_path)
    out = run([f"ckpt={run_dir}", "task=click-color", "protocol=pix2act", "episodes=2", "trace=0", f"out={tmp_path / 'o'}"])
    assert "seeds 1201539860..1201539861, pix2act protocol: at most 28 actions" in (out / "success.md").read_text()
    assert json.loads((out / "agent.json").read_text())["protocol"] == "pix2act"


def test_a_killed_evaluation_keeps_its_episodes_and_resumes(tmp_path):
    """SIGKILL the agent after a few episodes; the same command resumes without running them again, and the
    final table equals an uninterrupted run's."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run_dir, _ = fake_run(tmp_path)
    out = tmp_path / "killed"
    args = [f"ckpt={run_dir}", "task=click-color,remember-target", "episodes=60", "parallel=1", "trace=0"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lnn.agent", *args, f"out={out}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    episodes = out / "episodes.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (episodes.exists() and episodes.read_text().count("\n") >= 5):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = [json.loads(line) for line in episodes.read_text().splitlines()]
    assert 5 <= len(kept) < 120 and not (out / "success.md").exists(), "not killed mid-evaluation"

    run([*args, f"out={out}"])
    info = json.loads((out / "agent.json").read_text())
    assert info["episodes_resumed"] == len(kept) and info["episodes_run"] == 120 - len(kept)
    assert [json.loads(line) for line in episodes.read_text().splitlines()][: len(kept)] == kept  # first in job order
    whole = run([*args, f"out={tmp_path / 'whole'}"])
    assert (out / "success.md").read_text() == (whole / "success.md").read_text()
    assert episodes.read_text() == (whole / "episodes.jsonl").read_text()
    with pytest.raises(ConfigError, match="holds another evaluation .*episodes_per_task"):
        run([*args[:-2], "episodes=3", f"out={out}"])
