"""CI's end-to-end MiniWoB check (issue 5, item 6): record a few seeds in Chromium with two workers,
train a tiny model for a few steps, run the agent for a few episodes, and find the table written.
Under 3 minutes on a 2-core machine."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, needs_miniwob_browser, run_cli

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_miniwob_browser,
]


def test_record_train_and_run_the_agent(tmp_path):
    train = run_cli(str(ROOT / "train.py"), "data=miniwob", "debug=fast", "data.tasks=[click-test,click-button]",
                    "data.episodes_per_task={train: 6, val: 2, test: 2}", "data.record_workers=2",
                    "trainer.max_epochs=1", "trainer.limit_train_batches=2", cwd=tmp_path, timeout=300)  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    data = [p for p in (tmp_path / "data_cache").iterdir() if p.name.startswith("miniwob-train-")]
    assert len(data) == 1 and json.loads((data[0] / "recording.json").read_text())["workers"] == 2
    run = next((tmp_path / "logs" / "runs").iterdir())
    assert "| click-test | 2 |" in (run / "eval" / "success.md").read_text()  # the training run's own test episodes

    agent = run_cli("-m", "lnn.agent", f"ckpt={run}", "episodes=3", "trace=1", f"out={tmp_path / 'agent'}",
                    cwd=tmp_path, timeout=200)  # fmt: skip
    assert agent.returncode == 0, agent.stderr[-3000:]
    table = (tmp_path / "agent" / "success.md").read_text()
    assert "| click-test | 3 |" in table and "| click-button | 3 |" in table and "| [mean] | 6 |" in table
    assert (tmp_path / "agent" / "trace" / "strip.png").exists()
    assert "agent steps in" in agent.stdout and f"results: {tmp_path / 'agent'}" in agent.stdout
