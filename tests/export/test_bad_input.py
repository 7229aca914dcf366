"""Bad input to the export: one clear line each (ConfigError / DataError), nothing written."""

import shutil

import pytest
import torch
from omegaconf import OmegaConf

from lnn.errors import ConfigError, DataError
from lnn.export.pipeline import ExportOptions, export
from lnn.export.source import build_model, resolve_source
from tests.conftest import ROOT, run_cli
from tests.export.conftest import make_run


def one_line(e) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


def test_nothing_given():
    with pytest.raises(ConfigError, match="nothing to export"):
        resolve_source()


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="no such checkpoint") as e:
        resolve_source(ckpt=str(tmp_path / "nope.ckpt"))
    one_line(e)


def test_missing_run_dir(tmp_path):
    with pytest.raises(ConfigError, match="no such directory"):
        resolve_source(run=str(tmp_path / "nope"))


def test_corrupt_checkpoint(tmp_path):
    run = make_run(tmp_path / "run")
    ckpt = run / "checkpoints" / "best.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:2000])  # truncated
    with pytest.raises(DataError, match="not a readable checkpoint") as e:
        build_model(resolve_source(ckpt=str(ckpt)))
    assert str(ckpt) in one_line(e)


def test_run_without_checkpoints(tmp_path):
    run = make_run(tmp_path / "run")
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").mkdir()
    with pytest.raises(ConfigError, match="has no checkpoints") as e:
        resolve_source(run=str(run))
    one_line(e)


def test_only_last_checkpoint_is_used_and_said(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "checkpoints" / "best.ckpt").unlink()
    source = resolve_source(run=str(run))
    assert source.checkpoint.name == "last.ckpt" and "no best.ckpt" in source.reason


def test_checkpoint_whose_config_does_not_match(tmp_path):
    run = make_run(tmp_path / "run")
    cfg = OmegaConf.load(run / "config.yaml")
    cfg.model.hidden_size = 48
    OmegaConf.save(cfg, run / "config.yaml")
    with pytest.raises(ConfigError, match="does not match the model") as e:
        build_model(resolve_source(run=str(run)))
    assert "shape mismatch" in one_line(e) and "(48" in str(e.value)


def test_checkpoint_without_a_config(tmp_path):
    ckpt = tmp_path / "loose.ckpt"
    torch.save({"state_dict": {}}, ckpt)
    with pytest.raises(ConfigError, match="no config.yaml"):
        resolve_source(ckpt=str(ckpt))


def test_config_with_a_bad_value(tmp_path):
    run = make_run(tmp_path / "run")
    cfg = OmegaConf.load(run / "config.yaml")
    cfg.model.tau_min = -1.0
    OmegaConf.save(cfg, run / "config.yaml")
    with pytest.raises(ConfigError) as e:
        build_model(resolve_source(run=str(run)))
    assert e.value.key.startswith("model.tau_min") and "config.yaml" in e.value.message


def test_output_directory_that_cannot_be_written(tmp_path):
    run = make_run(tmp_path / "run")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot write the export") as e:
        export(resolve_source(run=str(run)), ExportOptions(out=str(blocker / "export"), web=False), log=lambda line: None)
    assert e.value.key == "out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "run"]


def test_existing_export_is_kept_without_overwrite(tmp_path):
    run = make_run(tmp_path / "run")
    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        export(resolve_source(run=str(run)), ExportOptions(out=str(tmp_path / "out"), overwrite=False, web=False))


def sweep(tmp_path, scores):
    """A multirun directory: job i finished with val/success scores[i], or failed (None)."""
    root = tmp_path / "sweep"
    for i, score in enumerate(scores):
        job = root / str(i)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- model.tau_min={0.1 * (i + 1):g}\n")
        if score is None:
            OmegaConf.save(OmegaConf.create({"model": {"tau_min": 0.1 * (i + 1)}}), job / ".hydra" / "config.yaml")
            (job / "train.log").write_text("[x][lnn][ERROR] - error: model.tau_max=0.05 — must be > tau_min\n")
        else:
            make_run(job, seed=i, score=score)
    (root / "multirun.yaml").write_text("{}\n")
    return root


def test_sweep_export_takes_the_best_job_and_says_why(tmp_path):
    root = sweep(tmp_path, [0.2, None, 0.7, 0.4])
    source = resolve_source(run=str(root))
    assert source.checkpoint == root / "2" / "checkpoints" / "best.ckpt"
    assert "job 2" in source.reason and "val/success = 0.7" in source.reason and "1 job(s) failed" in source.reason
    assert source.sweep["finished"] == 3 and source.sweep["failed"] == 1


def test_sweep_in_which_every_job_failed(tmp_path):
    root = sweep(tmp_path, [None, None])
    with pytest.raises(ConfigError, match="every job of the sweep") as e:
        resolve_source(run=str(root))
    assert "must be > tau_min" in one_line(e)


def test_cli_prints_one_line_and_exits_2(tmp_path):
    result = run_cli(str(ROOT / "export.py"), f"ckpt={tmp_path / 'missing.ckpt'}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ckpt — ") and "missing.ckpt" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no outputs/, no log files
