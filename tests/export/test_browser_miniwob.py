"""The page plays MiniWoB episodes the model played itself in Chromium: an export of a run trained on MiniWoB
bundles, per task, the frames the model saw in the browser, what it did and how each episode ended; the page,
running the ONNX step in onnxruntime-web on those frames, makes the same clicks and draws both.

Run by CI (`-m browser`); needs Chromium, Playwright, the miniwob package and onnxruntime-web (`npm ci`).
"""

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.conftest import needs_miniwob_browser
from tests.export.conftest import make_run
from tests.export.test_browser import open_page

pytestmark = [pytest.mark.browser, needs_miniwob_browser]

TASKS = ["click-button", "click-test"]


@pytest.fixture(scope="module")
def miniwob_export(tmp_path_factory):
    from lnn.export.bundle import find_ort_dist
    from lnn.export.pipeline import ExportOptions, export
    from lnn.export.source import resolve_source

    if find_ort_dist() is None:
        pytest.skip("onnxruntime-web is not installed: run `npm ci` in the repository root")
    run = make_run(tmp_path_factory.mktemp("runs") / "run")
    cfg = OmegaConf.load(run / "config.yaml")
    cfg.data = {"env": "miniwob", "tasks": TASKS, "env_kwargs": {}, "max_steps": 3}
    OmegaConf.save(cfg, run / "config.yaml")
    out = tmp_path_factory.mktemp("exports") / "miniwob"
    return export(resolve_source(run=str(run)), ExportOptions(out=str(out), steps=4, streams_per_task=1, plots=False),
                  log=lambda line: None)  # fmt: skip


def test_the_page_plays_the_models_own_miniwob_episodes_and_clicks_as_it_did(miniwob_export):
    index = json.loads((miniwob_export / "episodes" / "index.json").read_text())["episodes"]
    played = [i for i, e in enumerate(index) if e["played"]]
    assert [index[i]["task"] for i in played] == TASKS  # one played stream per task, beside the oracle-driven ones
    assert len(played) < len(index)
    for i in played:
        steps = index[i]["steps"]
        assert len(steps) == 4 and all("action" in s["played"] for s in steps)
        assert any("result" in s["played"] for s in steps)  # max_steps=3: an episode ended within the 4 steps
        assert all(s["truth"] is None or s["truth"]["box"] for s in steps)  # the oracle's target, from the page
    with open_page(miniwob_export) as page:
        labels = page.evaluate("[...document.querySelectorAll('#episode option')].map(o => o.textContent)")
        assert all("played by the model" in labels[i] for i in played)
        for i in played:
            records = page.evaluate(f"window.lnnPage.runEpisode({i}, {{precision: 'fp32', reset: true}})")
            steps = index[i]["steps"]
            assert len(records) == len(steps)
            for record, step in zip(records, steps):
                # the same frames, the same state resets: onnxruntime-web acts as PyTorch did in Chromium
                assert page.evaluate(f"window.lnnPage.app.manifest.actions[{record['action']}]") == step["played"]["action"]
                if step["played"]["action"] == "click":
                    np.testing.assert_allclose(record["coords"], [step["played"]["x"], step["played"]["y"]], atol=1e-4)
            text = page.evaluate("document.getElementById('step-info').textContent")
            assert "played in the browser" in text
