"""Training learns: one short seeded run on the easiest family beats chance by a clear margin, and its
checkpoint — a model whose clicks vary and whose click map is sure — exports with parity (slow tier)."""

import csv
import json

import numpy as np
import pytest

from lnn.envs.gui.families import Difficulty
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow

# click-color (click the square of the named colour among 4-6): 150 steps of 32 episodes, ~1.5 min on 2 cores
ARGS = ["debug=fast", "data.tasks=[click-color]", "data.episodes_per_task.train=2400", "data.episodes_per_task.val=20",
        "data.episodes_per_task.test=100", "data.batch_size=32", "trainer.max_epochs=2", "trainer.limit_train_batches=75",
        "module.warmup_steps=10"]  # fmt: skip


def chance() -> float:
    """Success of clicking one of the candidates at random: the mean of 1/n over the candidate counts."""
    d = Difficulty()
    counts = range(d.min_candidates, d.max_candidates + 1)
    return sum(1 / n for n in counts) / len(counts)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("learns")
    result = run_cli(str(ROOT / "train.py"), *ARGS, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (cwd / "logs" / "runs").iterdir()
    return cwd, run


def test_a_short_run_on_click_color_learns(trained):
    _, run = trained
    with open(run / "csv" / "metrics.csv") as f:
        losses = [float(r["train/loss_step"]) for r in csv.DictReader(f) if r.get("train/loss_step")]
    assert len(losses) == 150
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < first / 4, (first, last)  # seen: 6.6 -> 0.45; with lr=0 it stays at 7
    success = json.loads((run / "results.json").read_text())["test/success/click-color"]  # 100 test episodes
    assert success >= 3 * chance(), (success, chance())  # chance 0.21; seen: 1.0


def test_the_trained_checkpoint_exports_with_parity_on_where_it_clicks(trained):
    from lnn.export.episodes import record_streams, run_torch, stream_inputs
    from lnn.export.source import build_model, resolve_source

    cwd, run = trained
    model = build_model(resolve_source(run=str(run)))  # its outputs vary: a random model's barely do
    reference = run_torch(model, *stream_inputs(model, record_streams("gui", ["click-color"], model.image_size, 16, 2)))
    assert reference.coords.std(axis=(0, 1)).min() > 0.1  # clicks spread over the screen
    logits = reference.click_logits - reference.click_logits.max(-1, keepdims=True)
    peak = 1 / np.exp(logits).sum(-1)  # the probability of the map's peak cell
    assert peak.mean() > 8 / logits.shape[-1]  # a sure map, not a flat one (seen: 16 times a flat map's)

    exported = run_cli(str(ROOT / "export.py"), f"run={run}", "web.enabled=false", "plots=false", cwd=cwd)
    assert exported.returncode == 0, exported.stdout[-2000:] + exported.stderr[-3000:]
    parity = json.loads((run / "export" / "manifest.json").read_text())["parity"]
    assert all(parity[p]["passed"] for p in ("fp32", "fp16", "int8"))
    assert parity["fp32"]["max_abs_diff"]["coords"] <= 1e-4 and parity["fp16"]["max_abs_diff"]["coords"] <= 1e-2
    int8 = parity["int8"]
    assert int8["action_agreement"] >= 0.95 and int8["click_agreement"] >= 0.95 and int8["click"]["same_spot"] >= 0.95
