"""LFM2-VL with liquid layers: merged into ShortConv layers (LFM2LiquidMerged) or hooked on (LFM2Hybrid)."""

from lnn.models.lfm2.config import PRESETS, build_base, build_config, check_liquid_layers, conv_layers
from lnn.models.lfm2.liquid import LiquidBranch, LiquidContext, affine_scan
from lnn.models.lfm2.merged import HookAdapters, LiquidShortConv, merge_liquid_layers
from lnn.models.lfm2.policy import LFM2Hybrid, LFM2LiquidMerged, LFM2Policy

__all__ = [
    "PRESETS", "HookAdapters", "LFM2Hybrid", "LFM2LiquidMerged", "LFM2Policy", "LiquidBranch", "LiquidContext",
    "LiquidShortConv", "affine_scan", "build_base", "build_config", "check_liquid_layers", "conv_layers",
    "merge_liquid_layers",
]  # fmt: skip
