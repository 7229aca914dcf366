"""Instructions as hashed word ids: no vocabulary file, identical in Python and in the browser.

Words are lower-cased runs of letters and digits; each maps to 1 + FNV-1a(word) mod (buckets − 1),
and 0 pads. The web page reimplements exactly this (export/web/lnn.js), so keep the two in step.
"""

from __future__ import annotations

import re

import torch

WORD = re.compile(r"[a-z0-9]+")
MAX_TOKENS = 24
FNV_OFFSET, FNV_PRIME = 0x811C9DC5, 0x01000193


def fnv1a(word: str) -> int:
    h = FNV_OFFSET
    for byte in word.encode("utf-8"):
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return h


def instruction_text(task: str, instruction: str) -> str:
    """What the model reads: the task name (as the seed's task id did) and the instruction."""
    return f"{task} {instruction}"


def tokenize(text: str, buckets: int, max_tokens: int = MAX_TOKENS) -> list[int]:
    ids = [1 + fnv1a(w) % (buckets - 1) for w in WORD.findall(text.lower())][:max_tokens]
    return ids + [0] * (max_tokens - len(ids))


def tokenize_batch(texts: list[str], buckets: int, max_tokens: int = MAX_TOKENS) -> torch.Tensor:
    return torch.tensor([tokenize(t, buckets, max_tokens) for t in texts], dtype=torch.long)
