"""module.lr_groups: the model's named parameter groups (LFM2: base, liquid, heads), each at its own learning rate."""

from functools import partial

import lightning.pytorch as pl
import pytest
import torch

from lnn.data import FolderDataModule
from lnn.errors import ConfigError
from lnn.models import LFM2Hybrid, LFM2LiquidMerged
from lnn.training.module import PolicyModule
from lnn.training.run import build
from tests.data.test_folder import make_folder


@pytest.mark.parametrize("cls", [LFM2LiquidMerged, LFM2Hybrid])
def test_lfm2_groups_split_the_parameters_into_base_liquid_and_heads(cls):
    model = cls(image_size=32, liquid_size=16, base_tuning="lora", lora_rank=2)
    groups = model.param_groups()
    assert list(groups) == ["base", "liquid", "heads"]
    ids = [id(p) for params in groups.values() for p in params]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}  # each parameter once
    assert {id(p) for p in groups["liquid"]} == {id(p) for b in model.branches().values() for p in b.parameters()}
    assert {id(p) for p in groups["heads"]} == {id(p) for m in (model.head, model.action_head, model.click_query,
                                                                 model.click_keys) for p in m.parameters()}  # fmt: skip
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in groups["base"] if p.requires_grad} == {n for n in names.values() if "lora_" in n}


def fit_one_step(tmp_path, lr_groups):
    """One real training step of the tiny merged model on a folder; -> weights before, the model, the optimizer."""
    torch.manual_seed(0)
    model = LFM2LiquidMerged(image_size=32, liquid_size=16)  # a random base: base_tuning full, everything trains
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    module = PolicyModule(model, partial(torch.optim.AdamW, lr=1e-3), warmup_steps=0, lr_groups=lr_groups)
    data = FolderDataModule(str(make_folder(tmp_path)), image_size=32, batch_size=4, data_dir=str(tmp_path / "cache"),
                            import_workers=1)  # fmt: skip
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, limit_val_batches=0,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(module, datamodule=data)
    return before, model, trainer.optimizers[0]


def moved(before, model, params) -> list[bool]:
    names = {id(p): n for n, p in model.named_parameters()}
    return [not torch.equal(p, before[names[id(p)]]) for p in params]


def test_each_group_trains_at_its_own_rate_and_the_schedule_scales_every_group(tmp_path):
    before, model, optimizer = fit_one_step(tmp_path, {"base": 0.0, "liquid": 1e-2})
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert {n: g["initial_lr"] for n, g in groups.items()} == {"base": 0.0, "liquid": 1e-2, "heads": 1e-3}  # heads: lr
    assert all(g["lr"] == pytest.approx(0.05 * g["initial_lr"]) for g in groups.values())  # cosine's end, every group
    base = model.param_groups()["base"]
    assert not any(moved(before, model, base))  # base lr 0: not a single base weight changed
    assert all(moved(before, model, [b.mix for b in model.branches().values()]))  # the liquid mixtures moved
    assert any(moved(before, model, model.param_groups()["heads"]))
    # the same step without groups moves the base: the test above sees the groups, not a base that cannot move
    before, model, optimizer = fit_one_step(tmp_path / "all", None)
    assert [g["name"] for g in optimizer.param_groups] == ["base", "liquid", "heads"]
    assert sum(moved(before, model, model.param_groups()["base"])) > len(model.param_groups()["base"]) // 2


def test_frozen_parameters_are_not_given_to_the_optimizer():
    from lnn.training.optim import optimizer_groups

    model = LFM2LiquidMerged(image_size=32, liquid_size=16, base_tuning="frozen")
    groups = optimizer_groups(model, {"base": 1e-5, "heads": 1e-2})
    assert [g["name"] for g in groups] == ["liquid", "heads"]  # the frozen base: no group at all
    assert groups[1]["lr"] == 1e-2 and "lr" not in groups[0]
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("lr_groups, key, words", [({"vision": 1e-5}, "module.lr_groups.vision", "its groups: base, liquid, heads"),
                                                   ({"base": -1.0}, "module.lr_groups.base", "learning rate >= 0")])  # fmt: skip
def test_a_bad_group_stops_with_one_line_naming_it(lr_groups, key, words):
    with pytest.raises(ConfigError) as info:
        PolicyModule(LFM2LiquidMerged(image_size=32, liquid_size=16), partial(torch.optim.AdamW), lr_groups=lr_groups)
    assert info.value.key == key and words in info.value.message


def test_lite_is_one_group_and_names_it_in_the_error(make_cfg, tmp_path):
    build(make_cfg("module.lr_groups={model:1.0e-3}"))
    with pytest.raises(ConfigError) as info:
        build(make_cfg("module.lr_groups={base:1.0e-5}"))
    assert info.value.key == "module.lr_groups.base" and "its groups: model" in info.value.message
    assert not (tmp_path / "data").exists()  # stopped before recording anything
