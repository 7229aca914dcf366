"""How the LFM2-VL base trains (`model.base_tuning`): frozen, LoRA adapters through `peft`, or in full.

Liquid layers and heads always train. `lora` freezes the base and injects LoRA adapters (peft's
`inject_adapter_in_model`, so the base stays the same transformers module, merged liquid layers
included) into the text decoder's attention and ShortConv projections named in `lora_targets`; the
adapters' B matrices start at zero, so the model still computes exactly what the pretrained one did.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor, nn

from lnn.errors import ConfigError

BASE_TUNINGS = ("frozen", "lora", "full")
# projections of the text decoder: attention (q/k/v/out_proj) and ShortConv (in_proj, out_proj)
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "in_proj")


def resolve_base_tuning(base_tuning: str | None, freeze_base: bool | None, pretrained: bool = False) -> str:
    """base_tuning, or from the older `freeze_base` alias (true: frozen, false: full) when it is null; both
    null: frozen for real weights (`pretrained`), full for a random preset base."""
    if base_tuning is None:
        return ("frozen" if pretrained else "full") if freeze_base is None else ("frozen" if freeze_base else "full")
    if base_tuning not in BASE_TUNINGS:
        raise ConfigError("base_tuning", f"must be one of {', '.join(BASE_TUNINGS)}, got {base_tuning!r}")
    if freeze_base and base_tuning == "full":
        raise ConfigError("freeze_base", "is true but base_tuning=full trains the base: set one of them")
    return base_tuning


def check_lora(rank, alpha, targets) -> tuple[str, ...]:
    if not (isinstance(rank, int) and rank >= 1):
        raise ConfigError("lora_rank", f"must be an integer >= 1, got {rank!r}")
    if not (isinstance(alpha, (int, float)) and alpha > 0):
        raise ConfigError("lora_alpha", f"must be > 0, got {alpha!r}")
    targets = tuple(LORA_TARGETS if targets is None else targets)
    unknown = [t for t in targets if t not in LORA_TARGETS]
    if unknown or not targets:
        raise ConfigError("lora_targets", f"{unknown or 'empty'}: choose among {', '.join(LORA_TARGETS)}")
    return targets


def add_lora(base: nn.Module, rank: int, alpha: float, targets: tuple[str, ...]) -> int:
    """Inject LoRA adapters into the decoder's projections named in targets; -> the number of adapted modules."""
    from peft import LoraConfig, inject_adapter_in_model

    # the decoder's own projections only: not the vision tower, not the liquid branches' read-outs
    pattern = rf".*language_model\.layers\.\d+\.(self_attn|conv|conv\.shortconv)\.({'|'.join(targets)})"
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=pattern), base)
    return sum(1 for name, _ in base.named_modules() if name.endswith(".lora_A"))


def apply_base_tuning(base: nn.Module, tuning: str) -> None:
    """Set which base weights train: none (frozen), the LoRA adapters only (lora), or all (full)."""
    base.requires_grad_(tuning == "full")
    if tuning == "lora":
        for name, p in base.named_parameters():
            if "lora_" in name:
                p.requires_grad_(True)


# --- checkpoints of a base loaded from pretrained_path: only what trained, and the base's fingerprint -----------
HASH_KEY = "base_sha256"


def frozen_base(policy) -> dict[str, Tensor]:
    """The base weights that do not train, by their state-dict names (tied names included)."""
    params = policy.base.named_parameters(prefix="base", remove_duplicate=False)
    return {name: p for name, p in params if not p.requires_grad}


def base_fingerprint(weights: dict[str, Tensor]) -> Tensor:
    """sha256 of the frozen base weights (names, dtypes and bytes), as 32 uint8 (it travels in the state dict)."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        t = weights[name].detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return torch.tensor(list(digest.digest()), dtype=torch.uint8)


def slim_checkpoints(policy) -> None:
    """Checkpoints of `policy` store its trained weights and the sha256 of its frozen base instead of the base
    (re-attached from `pretrained_path` when loading; a different base is refused with one line)."""
    cache: dict = {}

    def fingerprint() -> Tensor:
        if "sha256" not in cache:
            cache["sha256"] = base_fingerprint(frozen_base(policy))
        return cache["sha256"]

    def drop_frozen(module, state_dict, prefix, local_metadata) -> None:
        for name in frozen_base(policy):
            state_dict.pop(prefix + name, None)
        state_dict[prefix + HASH_KEY] = fingerprint()

    def reattach(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors) -> None:
        saved = state_dict.pop(prefix + HASH_KEY, None)
        if saved is None:  # a checkpoint with the whole base in it
            return
        if not torch.equal(saved.cpu(), fingerprint()):
            raise ConfigError("pretrained_path", f"{policy.pretrained_path} is not the base this checkpoint was trained "
                                                 "on (the sha256 of its frozen weights differs); give that base's directory")  # fmt: skip
        for name, p in frozen_base(policy).items():
            state_dict.setdefault(prefix + name, p.detach())

    policy.register_state_dict_post_hook(drop_frozen)
    policy.register_load_state_dict_pre_hook(reattach)
