"""A match_text model's page in headless Chromium: the strip of the named text the page draws with canvas
fillText (Liberation Sans, as Chromium draws Arial) against Pillow's, and the page's outputs against PyTorch's
over the bundled episodes (wait-green's "Click OK when ..." names "OK").

Run by CI (`-m browser`); needs Debian's chromium with fonts-liberation, Playwright and onnxruntime-web (`npm ci`).
"""

import json

import numpy as np
import pytest
from PIL import Image

from lnn.export.episodes import run_torch
from lnn.export.source import build_model, resolve_source
from lnn.models.glyphs import named_text, render_strip
from tests.export.conftest import make_run
from tests.export.test_browser import max_diffs, open_page

pytestmark = pytest.mark.browser
WORDS = ['Click on the link "ipsum".', "Find the email by Marlena and reply", 'Click "Q".', 'Click "q".',
         "Select Ann-Marie", 'Click on the link "consectetur adipiscing".', "Click the button."]  # fmt: skip
STYLES = [{"font_px": 10, "bold": False}, {"font_px": 11, "bold": True}]  # MiniWoB's body text, email-inbox's names


@pytest.fixture(scope="module")
def matched(tmp_path_factory):
    """A match_text run at 48 x 64 frames of a 96 x 128 page (strips at scale 0.5) exported with its page."""
    from lnn.export.bundle import find_ort_dist
    from lnn.export.pipeline import ExportOptions, export

    if find_ort_dist() is None:
        pytest.skip("onnxruntime-web is not installed: run `npm ci` in the repository root")
    root = tmp_path_factory.mktemp("match")
    run = make_run(root / "run", image_size=[48, 64], match_text=True, page_size=[96, 128], match_styles=STYLES)
    out = export(resolve_source(run=str(run)), ExportOptions(out=str(root / "export"), plots=False), log=lambda line: None)
    return run, out


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_the_pages_strips_are_pillows_and_its_steps_pytorchs(matched):
    run, out = matched
    model = build_model(resolve_source(run=str(run)))
    with open_page(out) as page:
        for scale in ((1.0, 1.0), (0.5, 0.5)):  # MiniWoB's native frames, and this model's half-size ones
            page.evaluate(f"window.lnnPage.app.manifest.preprocessing.strip.scale = {list(scale)}")
            for instruction in WORDS:
                drawn = np.array(page.evaluate(f"window.lnnPage.strip({json.dumps(instruction)})")).reshape(-1, 18, 66)
                assert len(drawn) == len(STYLES)
                for ours, style in zip(drawn, STYLES):
                    pillow = render_strip(named_text(instruction), style["font_px"], scale, style["bold"])
                    if not pillow.any():
                        assert not ours.any(), instruction
                        continue
                    r, diff = correlation(ours, pillow), np.abs(ours - pillow).mean()
                    print(f"{instruction!r} {style} at {scale}: correlation {r:.3f}, mean |diff| {diff:.3f}")
                    assert r >= 0.85 and diff <= 0.03, (instruction, style, scale, r, diff)  # measured: 0.88-0.998, <= 0.026
        page.evaluate("window.lnnPage.app.manifest.preprocessing.strip.scale = [0.5, 0.5]")
        index = json.loads((out / "episodes" / "index.json").read_text())["episodes"]
        for i, ep in enumerate(index):
            frames = np.stack([np.array(Image.open(out / s["frame"]).convert("RGB")) for s in ep["steps"]])
            images = (frames.transpose(0, 3, 1, 2).astype(np.float32) / 255)[:, None]
            text = {k: v.numpy()[:, None] for k, v in model.text_inputs([ep["task"]] * len(frames),
                                                                         [s["instruction"] for s in ep["steps"]]).items()}  # fmt: skip
            dt = np.array([s["dt"] for s in ep["steps"]], np.float32)[:, None]
            records = page.evaluate(f"window.lnnPage.runEpisode({i}, {{precision: 'fp32', reset: false}})")
            # the page's own strips: equal to Pillow's up to antialiasing, so the outputs up to a little more
            assert max(max_diffs(records, run_torch(model, images, text, dt=dt))) <= 2e-3, ep["task"]
