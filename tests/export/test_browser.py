"""The exported page in headless Chromium (onnxruntime-web, wasm) against PyTorch over 16-step episodes.

Run by CI (`-m browser`); needs Debian's chromium, Playwright (python) and onnxruntime-web (`npm ci`).
"""

import contextlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lnn.export.bundle import find_ort_dist
from lnn.export.episodes import run_onnx, run_torch
from lnn.export.serve import serve_in_thread
from lnn.export.source import build_model, resolve_source

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("LNN_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-extensions", "--no-first-run", "--mute-audio", "--hide-scrollbars"]  # fmt: skip


def _skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (python) is not installed"
    if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
        return f"no chromium at {CHROMIUM} (scripts/install_system_deps.sh installs Debian's; or set LNN_CHROMIUM)"
    if find_ort_dist() is None:
        return "onnxruntime-web is not installed: run `npm ci` in the repository root (make setup-dev does)"
    return None


@contextlib.contextmanager
def open_page(export_dir: Path, query: str = ""):
    """The export's page served and loaded in headless Chromium (skips without one); no page errors allowed."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    server, url = serve_in_thread(export_dir)
    errors = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            tab = browser.new_page()
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(url + query)
            tab.evaluate("window.lnnPage.ready")
            yield tab
            assert not errors, errors
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def page(tiny_export):
    with open_page(tiny_export) as tab:
        yield tab


@pytest.fixture(scope="module")
def episodes(tiny_export, tiny_run):
    """The bundled episodes' frames, tokens and dt (T, 1) as PyTorch sees them, and the model."""
    index = json.loads((tiny_export / "episodes" / "index.json").read_text())["episodes"]
    model = build_model(resolve_source(run=str(tiny_run)))
    data = []
    for ep in index:
        frames = np.stack([np.array(Image.open(tiny_export / s["frame"]).convert("RGB")) for s in ep["steps"]])
        images = (frames.transpose(0, 3, 1, 2).astype(np.float32) / 255)[:, None]  # (T, 1, 3, S, S)
        tokens = model.tokenize([ep["task"]] * len(frames), [s["instruction"] for s in ep["steps"]]).numpy()[:, None]
        new = np.array([s["new_episode"] for s in ep["steps"]])[:, None]
        new[0] = False
        dt = np.array([s["dt"] for s in ep["steps"]], np.float32)[:, None]
        data.append((images, tokens, new, dt))
    return model, data


def test_two_wasm_threads_give_the_same_steps(tiny_export, episodes):
    # the server isolates the page cross-origin, so onnxruntime-web can run ?threads=2 (a user's faster page)
    model, data = episodes
    images, tokens, _, dt = data[0]
    with open_page(tiny_export, "?threads=2") as tab:
        bench = tab.evaluate("window.lnnPage.benchmark('fp32', 5, 1)")
        assert bench["crossOriginIsolated"] and bench["threads"] == 2
        records = tab.evaluate("window.lnnPage.runEpisode(0, {precision: 'fp32', reset: false})")
    assert max(max_diffs(records, run_torch(model, images, tokens, dt=dt))) <= 1e-4


def test_a_bad_thread_count_stops_the_page_with_a_line_naming_it(tiny_export):
    with pytest.raises(Exception, match=r"\?threads=two: must be a whole number >= 1"):
        with open_page(tiny_export, "?threads=two"):
            pass


def page_trace(records):
    return (np.array([r["logits"] for r in records]), np.array([r["coords"] for r in records]),
            np.array([r["tau"] for r in records]))  # fmt: skip


def max_diffs(records, ref):
    logits, coords, tau = page_trace(records)
    ref_tau = ref.taus()[:, 0]  # (T, layers, k)
    return (np.abs(logits - ref.action_logits[:, 0]).max(), np.abs(coords - ref.coords[:, 0]).max(),
            np.abs(tau - ref_tau).max())  # fmt: skip


@pytest.mark.parametrize("precision, atol", [("fp32", 1e-4), ("fp16", 1e-2)])
def test_sixteen_step_episodes_match_pytorch(page, episodes, precision, atol):
    model, data = episodes
    for i, (images, tokens, _, dt) in enumerate(data):
        records = page.evaluate(f"window.lnnPage.runEpisode({i}, {{precision: '{precision}', reset: false}})")
        assert len(records) == 16 and all(r["tokensMatch"] for r in records)  # the JS tokenizer == Python's
        ref = run_torch(model, images, tokens, dt=dt)  # state carried through all 16 steps, each at its dt
        logits, coords, tau = max_diffs(records, ref)
        assert max(logits, coords, tau) <= atol, (precision, i, logits, coords, tau)


def test_state_reset_at_new_episodes_matches_pytorch(page, episodes):
    model, data = episodes
    images, tokens, new, dt = data[0]
    assert new.any(), "the first bundled episode should chain several env episodes"
    records = page.evaluate("window.lnnPage.runEpisode(0, {precision: 'fp32', reset: true})")
    assert max(max_diffs(records, run_torch(model, images, tokens, new, dt))) <= 1e-4


def test_the_page_feeds_each_steps_dt_as_onnxruntime_does(page, episodes, tiny_export):
    """The timing family's episode (irregular dt): the page feeds each step's recorded dt to the graph and
    shows it; its outputs are onnxruntime's at those times, not at dt = 1."""
    from lnn.export.pipeline import _session

    _, data = episodes
    index = json.loads((tiny_export / "episodes" / "index.json").read_text())["episodes"]
    i = [e["task"] for e in index].index("wait-green")
    images, tokens, _, dt = data[i]
    assert dt.min() < 0.9 and dt.max() > 1.5, dt[:, 0]
    records = page.evaluate(f"window.lnnPage.runEpisode({i}, {{precision: 'fp32', reset: false}})")
    np.testing.assert_allclose([r["dt"] for r in records], dt[:, 0])
    assert page.locator("#step-info").inner_text().endswith(f"dt {dt[-1, 0]:.2f} s")
    fp32 = _session(tiny_export / "model.onnx")
    assert max(max_diffs(records, run_onnx(fp32, images, tokens, 2, [32, 32], dt=dt))) <= 1e-4
    assert max(max_diffs(records, run_onnx(fp32, images, tokens, 2, [32, 32]))) > 1e-3  # dt = 1 differs


def test_int8_runs_in_wasm_as_in_onnxruntime(page, episodes, tiny_export):
    """The page's int8 is onnxruntime's int8 (how close int8 is to PyTorch is the export's parity check: on
    this random model one action wins most steps, so agreeing with PyTorch on it would prove little)."""
    from lnn.export.pipeline import _session

    _, data = episodes
    int8, fp32 = (_session(tiny_export / name) for name in ("model.int8.onnx", "model.onnx"))
    to_fp32 = []
    for i, (images, tokens, _, dt) in enumerate(data):
        records = page.evaluate(f"window.lnnPage.runEpisode({i}, {{precision: 'int8', reset: false}})")
        assert max(max_diffs(records, run_onnx(int8, images, tokens, 2, [32, 32], dt=dt))) <= 1e-4, i
        to_fp32.append(max(max_diffs(records, run_onnx(fp32, images, tokens, 2, [32, 32], dt=dt))))
    assert max(to_fp32) > 1e-3  # int8 weights really ran: fp32's outputs are farther away than the bound


def test_dropped_screenshots_play_as_an_episode(page, episodes, tiny_export, tmp_path):
    model, data = episodes
    images = data[1][0][:3]  # three frames, dropped as files (the same pixels: no resize at this size)
    paths = []
    for t, image in enumerate(images):
        paths.append(tmp_path / f"shot-{t}.png")
        Image.fromarray((image[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(paths[-1])
    page.set_input_files("#files", [str(p) for p in paths])
    page.wait_for_function("window.lnnPage.app.episodes.length === 4 && window.lnnPage.app.episode.custom")
    records = page.evaluate("window.lnnPage.runEpisode(3, {precision: 'fp32'})")
    assert len(records) == 3 and [r["dt"] for r in records] == [1, 1, 1]  # no recorded time: dt = 1
    task = page.evaluate("window.lnnPage.app.episode.task")
    tokens = model.tokenize([task] * 3, [""] * 3).numpy()[:, None]  # no instruction typed: all padding
    assert max(max_diffs(records, run_torch(model, images, tokens))) <= 1e-4
    assert page.locator("#latency").inner_text().startswith("step ")
    assert page.locator("#tau canvas").count() == 2


def test_the_page_shows_a_drag_from_press_to_release_and_the_heads_outputs(page, tmp_path):
    """A model with the drag, key and text heads that drags: the page reads release (as PyTorch's), the key
    and the typed text, and says where the drag goes."""
    import torch

    from lnn.envs import ACTIONS
    from lnn.export.pipeline import ExportOptions, export
    from lnn.rollout import decode_action
    from tests.export.conftest import make_run

    run = make_run(tmp_path / "run", num_actions=7, drag_head=True, key_head=True, text_head=True)
    for name in ("best.ckpt", "last.ckpt"):
        ckpt = torch.load(run / "checkpoints" / name, weights_only=False)
        ckpt["state_dict"]["model.action_head.2.bias"][ACTIONS.index("drag")] = 50.0
        torch.save(ckpt, run / "checkpoints" / name)
    out = export(resolve_source(run=str(run)), ExportOptions(out=str(tmp_path / "export"), plots=False,
                                                             streams_per_task=1), log=lambda line: None)  # fmt: skip
    model = build_model(resolve_source(run=str(run)))
    ep = json.loads((out / "episodes" / "index.json").read_text())["episodes"][0]
    frames = np.stack([np.array(Image.open(out / s["frame"]).convert("RGB")) for s in ep["steps"]])
    images = (frames.transpose(0, 3, 1, 2).astype(np.float32) / 255)[:, None]
    tokens = model.tokenize([ep["task"]] * len(frames), [s["instruction"] for s in ep["steps"]]).numpy()[:, None]
    dt = np.array([s["dt"] for s in ep["steps"]], np.float32)[:, None]
    new = np.array([s["new_episode"] for s in ep["steps"]])[:, None]
    new[0] = False
    ref = run_torch(model, images, tokens, resets=new, dt=dt)
    server, url = serve_in_thread(out)  # in a tab of the module's browser (one Playwright per thread)
    tab = page.context.browser.new_page()
    errors = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    try:
        tab.goto(url)
        tab.evaluate("window.lnnPage.ready")
        records = tab.evaluate("window.lnnPage.runEpisode(0, {precision: 'fp32'})")
        shown = tab.locator("#chosen").inner_text()
    finally:
        tab.close()
        server.shutdown()
        server.server_close()
    assert not errors, errors
    release = np.array([r["release"] for r in records])
    assert np.abs(release - ref.heads["release"][:, 0]).max() <= 1e-4
    last = records[-1]
    (x, y), (x2, y2) = last["coords"], last["release"]
    assert shown.startswith(f"drag from ({x:.3f}, {y:.3f}) to ({x2:.3f}, {y2:.3f})"), shown
    typed = decode_action(ACTIONS.index("type"), (0, 0), "", typed=ref.heads["text_bytes"][-1, 0]).text
    assert last["text"] == typed and last["key"] is not None
