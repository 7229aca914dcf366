"""The optimizer's parameter groups: the model's named groups (LFM2: base, liquid, heads), each at its own
learning rate where `module.lr_groups` names it, frozen parameters left out."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from lnn.errors import ConfigError


def optimizer_groups(model: nn.Module, lr_groups: Mapping | None = None) -> list[dict]:
    """torch param groups {"name", "params"[, "lr"]} of the model's trainable parameters; a group that
    lr_groups does not name keeps the optimizer's lr. An unknown name or a bad lr: ConfigError naming the key."""
    model = getattr(model, "_orig_mod", model)  # torch.compile wraps the model
    groups = model.param_groups()
    lr_groups = dict(lr_groups or {})
    for name, lr in lr_groups.items():
        key = f"module.lr_groups.{name}"
        if name not in groups:
            raise ConfigError(key, f"is not a parameter group of {type(model).__name__} (its groups: "
                                   f"{', '.join(groups)}); rename or drop it")  # fmt: skip
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr < 0:
            raise ConfigError(key, f"must be a learning rate >= 0 (0: the group does not move), got {lr!r}")
    out = []
    for name, params in groups.items():
        trainable = [p for p in params if p.requires_grad]  # frozen weights: no optimizer state, no decay
        if trainable:
            out.append({"name": name, "params": trainable} | ({"lr": float(lr_groups[name])} if name in lr_groups else {}))
    return out
