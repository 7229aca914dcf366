"""LFM2-VL configurations built in code (nothing is downloaded), and the base model they build.

Presets:

* `lfm2_vl_450m` — exactly the published LFM2-VL-450M architecture (450,822,656 parameters): the text
  decoder is LFM2-350M (16 layers, hidden 1024, attention at 2, 5, 8, 10, 12, 14, ShortConv elsewhere),
  the vision encoder SigLIP2 NaFlex base (patch 16), a 2× pixel-unshuffle projector (hidden 2560).
  transformers' default `Lfm2VlConfig()` is a different (1.6B-like) model, hence the explicit config.
* `tiny` — the same structure at toy size (4 text layers: conv, conv, attention, conv; hidden 64;
  vision hidden 32, patch 4) for tests and CPU runs.

Real weights load only from a local directory (`pretrained_path`), whose config then wins over the preset.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lnn.errors import ConfigError

ATTENTION_450M = (2, 5, 8, 10, 12, 14)
PARAMS_450M = 450_822_656

PRESETS: dict[str, dict] = {
    "lfm2_vl_450m": {
        "text": dict(
            vocab_size=65536, hidden_size=1024, intermediate_size=6656, num_hidden_layers=16,
            num_attention_heads=16, num_key_value_heads=8, max_position_embeddings=128_000, norm_eps=1e-5,
            conv_L_cache=3, conv_bias=False, block_multiple_of=256, block_ffn_dim_multiplier=1.0,
            block_auto_adjust_ff_dim=True, tie_word_embeddings=True,
            layer_types=["full_attention" if i in ATTENTION_450M else "conv" for i in range(16)],
            rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
            pad_token_id=0, bos_token_id=1, eos_token_id=7,
        ),
        "vision": dict(
            hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
            num_channels=3, patch_size=16, num_patches=256, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
            vision_use_head=False,
        ),
        "vl": dict(image_token_id=396, projector_hidden_size=2560, projector_hidden_act="gelu", projector_bias=True,
                   projector_use_layernorm=True, downsample_factor=2),
        "liquid_layers": [0, 3, 15],
        "liquid_size": 256,
    },
    "tiny": {
        "text": dict(
            vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, norm_eps=1e-5,
            conv_L_cache=3, conv_bias=False, block_multiple_of=32, block_ffn_dim_multiplier=1.0,
            block_auto_adjust_ff_dim=True, tie_word_embeddings=True,
            layer_types=["conv", "conv", "full_attention", "conv"],
            rope_parameters={"rope_type": "default", "rope_theta": 10_000.0},
            pad_token_id=0, bos_token_id=1, eos_token_id=2,
        ),
        "vision": dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_channels=3,
            patch_size=4, num_patches=256, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, vision_use_head=False,
        ),
        "vl": dict(image_token_id=7, projector_hidden_size=64, projector_hidden_act="gelu", projector_bias=True,
                   projector_use_layernorm=True, downsample_factor=2),
        "liquid_layers": [0, 3],
        "liquid_size": 32,
    },
}  # fmt: skip

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_config(preset: str, attn_implementation: str | None = None):
    """The Lfm2VlConfig of a preset."""
    from transformers import Lfm2VlConfig

    if preset not in PRESETS:
        raise ConfigError("preset", f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    config = Lfm2VlConfig(
        text_config={"model_type": "lfm2", **spec["text"]},
        vision_config={"model_type": "siglip2_vision_model", **spec["vision"]},
        tie_word_embeddings=True,
        **spec["vl"],
    )
    if attn_implementation:
        config._attn_implementation = attn_implementation
    return config


def check_pretrained_path(path: str | Path) -> Path:
    """The directory if it holds a config and weights; else a ConfigError naming what is missing."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ConfigError("pretrained_path", f"{directory} is not a directory; give a local LFM2-VL checkpoint "
                                             "directory (config.json + model.safetensors), or null for random weights")  # fmt: skip
    missing = []
    if not (directory / "config.json").is_file():
        missing.append("config.json")
    if not any((directory / name).is_file() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES[:2]))
    if missing:
        raise ConfigError("pretrained_path", f"{directory} has no {' and no '.join(missing)}; "
                                             "it must be a saved LFM2-VL checkpoint directory")  # fmt: skip
    return directory


def load_config(path: str | Path):
    """The Lfm2VlConfig of a checked local directory; a config that is not transformers' own lfm2_vl (an older
    checkpoint whose `auto_map` needs remote code, or another model) stops with one line. Never runs remote code."""
    from transformers import Lfm2VlConfig

    directory = check_pretrained_path(path)
    try:
        raw = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError("pretrained_path", f"could not read {directory / 'config.json'}: {e}") from None
    model_type = raw.get("model_type")
    if model_type != "lfm2_vl":
        remote = " with `auto_map` (code shipped with the checkpoint, which lnn never runs)" if raw.get("auto_map") else ""
        raise ConfigError("pretrained_path", f"{directory} holds a {model_type!r} model{remote}, not transformers' "
                                             "built-in 'lfm2_vl'; use a checkpoint saved by transformers >= 5 "
                                             "(config.json model_type: lfm2_vl)")  # fmt: skip
    return Lfm2VlConfig.from_pretrained(str(directory), local_files_only=True)


def build_base(preset: str = "tiny", pretrained_path: str | None = None, dtype: str = "float32",
               attn_implementation: str = "sdpa"):  # fmt: skip
    """Lfm2VlForConditionalGeneration: random weights from a preset, or real ones from a local directory."""
    from transformers import Lfm2VlForConditionalGeneration

    if dtype not in DTYPES:
        raise ConfigError("base_dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if pretrained_path:
        directory = check_pretrained_path(pretrained_path)
        try:
            return Lfm2VlForConditionalGeneration.from_pretrained(
                directory, config=load_config(directory), dtype=DTYPES[dtype], attn_implementation=attn_implementation,
                local_files_only=True, trust_remote_code=False,
            )
        except (OSError, ValueError) as e:
            raise ConfigError("pretrained_path", f"could not load {directory}: {str(e).splitlines()[0]}") from None
    config = build_config(preset, attn_implementation)
    model = Lfm2VlForConditionalGeneration(config)
    return model.to(DTYPES[dtype])


def conv_layers(text_config) -> list[int]:
    """Indices of the ShortConv layers of an LFM2 text config."""
    return [i for i, kind in enumerate(text_config.layer_types) if kind == "conv"]


def default_liquid_layout(text_config) -> dict:
    """Liquid defaults for a decoder read from a directory: the first, a quarter-way and the last ShortConv
    layer, hidden / 4 neurons (for LFM2-VL-450M: [0, 3, 15] and 256, its preset's values)."""
    conv = conv_layers(text_config)
    layers = sorted({conv[0], conv[len(conv) // 4], conv[-1]}) if conv else []
    return {"liquid_layers": layers, "liquid_size": max(1, text_config.hidden_size // 4)}


def default_image_size(config) -> int:
    """Square frames giving 8 × 8 = 64 image tokens (LFM2-VL's minimum): 8 × patch × downsample (tiny 64, 450M 256)."""
    return 8 * config.vision_config.patch_size * config.downsample_factor


def check_liquid_layers(indices, text_config, key: str = "liquid_layers") -> list[int]:
    """The indices, sorted and unique, if each names a ShortConv layer; else a ConfigError listing the valid ones."""
    valid = conv_layers(text_config)
    if indices is None:
        raise ConfigError(key, f"give a list of ShortConv layer indices; valid: {valid}")
    if isinstance(indices, int):
        indices = [indices]
    indices = list(indices)
    if not indices:
        raise ConfigError(key, f"is empty; give at least one ShortConv layer index from {valid}")
    bad = []
    for i in indices:
        if not isinstance(i, int) or isinstance(i, bool):
            bad.append(f"{i!r} is not an integer")
        elif not 0 <= i < len(text_config.layer_types):
            bad.append(f"{i} is out of range (the decoder has {len(text_config.layer_types)} layers)")
        elif text_config.layer_types[i] != "conv":
            bad.append(f"{i} is an attention layer")
    if bad:
        raise ConfigError(key, f"{'; '.join(bad)}: liquid layers merge into ShortConv layers only; valid indices: {valid}")
    if len(set(indices)) != len(indices):
        raise ConfigError(key, f"lists a layer twice ({indices}); valid indices: {valid}")
    return sorted(indices)
