"""Export a trained policy to the browser: `python export.py run=<run or sweep dir> | ckpt=<file>` (conf/export.yaml)."""

import hydra
from omegaconf import DictConfig


def export(cfg: DictConfig) -> str:
    from lnn.export.pipeline import ExportOptions, export
    from lnn.export.source import resolve_source

    options = ExportOptions(
        out=cfg.out, overwrite=cfg.overwrite, solver=cfg.solver, unfolds=cfg.unfolds,
        solver_tolerance=cfg.solver_tolerance, fold_linear=cfg.fold_linear, steps=cfg.parity.steps,
        streams_per_task=cfg.parity.streams_per_task, fp32_atol=cfg.parity.fp32_atol, fp16_atol=cfg.parity.fp16_atol,
        fp16_tau_atol=cfg.parity.fp16_tau_atol, fp16_min_agreement=cfg.parity.fp16_min_agreement,
        fp16_min_click_agreement=cfg.parity.fp16_min_click_agreement, int8_min_agreement=cfg.parity.int8_min_agreement,
        int8_min_click_agreement=cfg.parity.int8_min_click_agreement, click_tie_ratio=cfg.parity.click_tie_ratio,
        fallback_tensors=cfg.parity.fallback_tensors,
        fp16=cfg.fp16, int8=cfg.int8, plots=cfg.plots, web=cfg.web.enabled, ort_dist=cfg.web.ort_dist,
        explicit=explicit_keys(),
    )  # fmt: skip
    out = export(resolve_source(ckpt=cfg.ckpt, run=cfg.run), options, log=lambda line: print(line, flush=True))
    if cfg.serve:
        from lnn.export.serve import serve

        if not cfg.web.enabled:
            from lnn.errors import ConfigError

            raise ConfigError("serve", "there is no page to serve with web.enabled=false")
        serve(out, cfg.port)
    elif (out / "web").is_dir():  # none with web.enabled=false, nor for LFM2 (which refuses serve=true)
        print(f"open the page: python -m lnn.export.serve {out}   (or export again with serve=true)")
    return str(out)


def explicit_keys() -> tuple[str, ...]:
    """The keys given on the command line (`key=value`, `+key=value`, `~key`); none outside a Hydra run."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return ()
    return tuple(o.lstrip("+~").split("=")[0] for o in HydraConfig.get().overrides.task)


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from lnn.config import run_or_explain

    run_or_explain(export, cfg)


if __name__ == "__main__":
    main()
