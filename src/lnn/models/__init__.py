"""Policies: screenshot + instruction (+ state) -> action logits, click point, τ, new state."""

from lnn.models.lfm2 import LFM2Hybrid, LFM2LiquidMerged
from lnn.models.lite import FeedForwardStack, VisionLNNLite
from lnn.models.policy import Policy

__all__ = ["FeedForwardStack", "LFM2Hybrid", "LFM2LiquidMerged", "Policy", "VisionLNNLite"]
