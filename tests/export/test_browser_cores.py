"""The page with other models: a core other than liquid (the LSTM's [h, c] state carried by the page's JS,
no τ plots), and frames of another aspect with click offsets.

Run by CI (`-m browser`), as test_browser.py."""

import json

import numpy as np
import pytest
from PIL import Image

from lnn.export.episodes import run_torch
from tests.export.conftest import make_run
from tests.export.test_browser import _skip_reason, open_page

pytestmark = pytest.mark.browser


def exported(tmp_path, **model):
    """A tiny run with `model`'s settings exported with its page; the export, the model, the first bundled
    episode's frames and PyTorch's trace of it (state carried through every step)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from lnn.export.pipeline import ExportOptions, export
    from lnn.export.source import resolve_source
    from lnn.runs import load_policy

    run_dir = make_run(tmp_path / "run", **model)
    options = ExportOptions(out=str(tmp_path / "export"), plots=False, streams_per_task=1, int8_min_agreement=0.5)
    out = export(resolve_source(run=str(run_dir)), options, log=lambda line: None)
    model = load_policy(run_dir)
    ep = json.loads((out / "episodes" / "index.json").read_text())["episodes"][0]
    frames = np.stack([np.array(Image.open(out / s["frame"]).convert("RGB")) for s in ep["steps"]])
    images = (frames.transpose(0, 3, 1, 2).astype(np.float32) / 255)[:, None]
    tokens = model.tokenize([ep["task"]] * len(frames), [s["instruction"] for s in ep["steps"]]).numpy()[:, None]
    return out, model, frames, run_torch(model, images, tokens)


def test_lstm_export_plays_in_the_page_like_pytorch(tmp_path):
    out, model, frames, ref = exported(tmp_path, core="lstm")

    with open_page(out) as tab:
        records = tab.evaluate("window.lnnPage.runEpisode(0, {precision: 'fp32', reset: false})")
        info = tab.locator("#model-info").inner_text()
        parity = tab.locator("#parity-info").inner_text()
        plots = tab.locator("#tau canvas").count()
    assert len(records) == len(frames) and all(r["tau"] == [] for r in records)
    np.testing.assert_allclose(np.array([r["logits"] for r in records]), ref.action_logits[:, 0], atol=1e-4)
    np.testing.assert_allclose(np.array([r["coords"] for r in records]), ref.coords[:, 0], atol=1e-4)
    assert "core lstm" in info and "no τ" in info and plots == 0
    assert "fp16 same action on 100.0% of steps" in parity  # fp16 is judged by its actions (its τ is reported)


def test_frames_of_another_aspect_with_click_offsets_play_in_the_page_like_pytorch(tmp_path):
    out, model, frames, ref = exported(tmp_path, image_size=[40, 32], click_offset=True)
    assert frames.shape[1:] == (40, 32, 3)  # the bundled frames are at the model's height × width
    with open_page(out) as tab:
        records = tab.evaluate("window.lnnPage.runEpisode(0, {precision: 'fp32', reset: false})")
        info = tab.locator("#model-info").inner_text()
        canvas = tab.evaluate("[document.getElementById('frame').width, document.getElementById('frame').height]")
    np.testing.assert_allclose(np.array([r["logits"] for r in records]), ref.action_logits[:, 0], atol=1e-4)
    np.testing.assert_allclose(np.array([r["coords"] for r in records]), ref.coords[:, 0], atol=1e-4)
    assert "input 40×32 (h×w)" in info and canvas == [384, 480]  # the frame drawn at the model's aspect
