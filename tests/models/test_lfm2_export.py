"""ONNX export of LFM2-Liquid (tiny preset): three graphs, every cache in and out, parity with PyTorch."""

import json

import pytest
import torch

from lnn.errors import ConfigError
from lnn.models import LFM2Hybrid, LFM2LiquidMerged
from lnn.export.lfm2 import export_lfm2


def test_an_adaptive_solver_stops_the_export_with_one_line(tmp_path):
    model = LFM2LiquidMerged(image_size=32, solver="dopri5")
    with pytest.raises(ConfigError) as info:
        export_lfm2(model, tmp_path)
    assert info.value.key == "solver" and "dopri5" in info.value.message and "liquid layer 0" in info.value.message
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("cls, recurrence", [(LFM2LiquidMerged, "scan"), (LFM2Hybrid, "full")])
def test_export_matches_pytorch(tmp_path, cls, recurrence):
    torch.manual_seed(0)
    model = cls(image_size=32, liquid_size=16, recurrence=recurrence)
    with torch.no_grad():
        for branch in model.branches().values():
            branch.mix.normal_(0, 0.5)  # as after training: the liquid layers change the outputs
    parity = export_lfm2(model, tmp_path)
    for name in ("vision.onnx", "decoder_step.onnx", "heads.onnx", "manifest.json", "parity.png"):
        assert (tmp_path / name).exists()
    assert parity["vision_torch_square_vs_get_image_features"] < 1e-5
    for key in ("vision", "decoder_step", "heads", "frame_hidden", "frame_action_logits", "frame_click_logits",
                "frame_liquid_state"):  # fmt: skip
        assert parity[key] < 1e-4, (key, parity[key])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    kinds = [s["kind"] for s in manifest["states"]]
    assert kinds.count("liquid") == 2 and "key" in kinds and "conv" in kinds
