"""model=lfm2_liquid / model=lfm2_hybrid through Hydra: they build, and a bad key stops the run in one line."""

import json

import pytest

from lnn.errors import ConfigError
from lnn.models import LFM2Hybrid, LFM2LiquidMerged
from lnn.training.run import build
from tests.conftest import ROOT, run_cli


@pytest.mark.parametrize("model, cls", [("lfm2_liquid", LFM2LiquidMerged), ("lfm2_hybrid", LFM2Hybrid)])
def test_builds_with_every_solver_key(make_cfg, model, cls):
    for solver in ("rk4", "semi_implicit", "dopri5"):
        built = build(make_cfg(f"model={model}", f"solver={solver}", "debug=fast"))[0]
        assert isinstance(built, cls) and built.image_size == 64
        assert all(b.cell.solver == solver for b in built.branches().values())


def test_freeze_base_and_recurrence_reach_the_model(make_cfg):
    model = build(make_cfg("model=lfm2_liquid", "model.freeze_base=true", "model.recurrence=full",
                           "model.liquid_layers=[1,3]", "model.liquid_size=8"))[0]  # fmt: skip
    assert list(model.branches()) == [1, 3] and model.liquid_size == 8
    assert all(b.recurrence == "full" for b in model.branches().values())
    assert not any(p.requires_grad for n, p in model.base.named_parameters() if ".liquid." not in n)


@pytest.mark.parametrize("override, key", [("model.liquid_layers=[0,2]", "model.liquid_layers"),
                                           ("model.liquid_layers=[9]", "model.liquid_layers"),
                                           ("model.pretrained_path=/nonexistent", "model.pretrained_path"),
                                           ("model.image_size=60", "model.image_size"),
                                           ("model.tau_max=0.5", "model.tau_max")])  # fmt: skip
def test_bad_value_names_its_key(make_cfg, tmp_path, override, key):
    with pytest.raises(ConfigError) as info:
        build(make_cfg("model=lfm2_liquid", override))
    assert info.value.key.split("=")[0] == key
    assert not (tmp_path / "data").exists()


def test_experiment_450m_composes(make_cfg):
    cfg = make_cfg("experiment=lfm2_450m")
    assert cfg.model.preset == "lfm2_vl_450m" and cfg.model.image_size == 256 and cfg.model.freeze_base
    assert cfg.trainer.precision == "bf16-mixed"


def test_cli_attention_layer_is_one_line(tmp_path):
    result = run_cli(str(ROOT / "train.py"), "model=lfm2_liquid", "model.liquid_layers=[0,2]", cwd=tmp_path, timeout=120,
                     env={"PYTHONPATH": str(ROOT / "src")})  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model.liquid_layers=[0, 2]"), lines
    assert "2 is an attention layer" in lines[0] and "valid indices: [0, 1, 3]" in lines[0]


@pytest.mark.slow
def test_export_py_on_an_lfm2_liquid_run_writes_its_graphs(tmp_path):
    trained = run_cli(str(ROOT / "train.py"), "model=lfm2_liquid", "debug=fast", "evaluate.episodes_per_task=1",
                      cwd=tmp_path, timeout=600)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    run = next((tmp_path / "logs" / "runs").iterdir())
    exported = run_cli(str(ROOT / "export.py"), f"run={run}", cwd=tmp_path, timeout=600, env={"LNN_ORT_DIST": ""})
    assert exported.returncode == 0, exported.stderr[-2000:]
    out = run / "export"
    assert {"vision.onnx", "decoder_step.onnx", "heads.onnx", "manifest.json"} <= {p.name for p in out.iterdir()}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["checkpoint"].endswith(".ckpt")
    assert "parity" in exported.stdout  # and no onnxruntime-web was needed: this tmp_path has no node_modules
    assert "open the page" not in exported.stdout and not (out / "web").exists()
    for option in ("fp16=full", "int8=dynamic", "web.enabled=false", "serve=true", "unfolds=2", "parity.steps=4"):
        refused = run_cli(str(ROOT / "export.py"), f"run={run}", option, cwd=tmp_path, timeout=300)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1, (option, refused.stderr[-2000:])
        assert lines[0].startswith(f"error: {option.split('=')[0]} — ") and "does not apply to an LFM2 export" in lines[0], lines
    kept = run_cli(str(ROOT / "export.py"), f"run={run}", f"out={tmp_path / 'again'}", "overwrite=true", cwd=tmp_path,
                   timeout=600)  # fmt: skip
    assert kept.returncode == 0 and (tmp_path / "again" / "decoder_step.onnx").exists(), kept.stderr[-2000:]
