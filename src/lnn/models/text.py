"""Instructions as hashed word ids: no vocabulary file, identical in Python and in the browser.

The lower-cased text is split into words: numbers with their sign (`-1`), runs of letters and digits
(any script: `cancél`, `确定`), and single symbols outside ASCII (`♥`); ASCII punctuation is dropped.
The ids are the words, then the adjacent word pairs ("a b": the bigrams carry order, which a bag of
words loses — `(2,-1)` vs `(-1,2)`), cut to MAX_TOKENS; each maps to 1 + FNV-1a(UTF-8 bytes) mod
(buckets − 1), and 0 pads. The web page reimplements exactly this (export/web/lnn.js), so keep the two
in step: in JavaScript the word pattern is /-?[0-9]+|[\p{L}\p{N}\p{M}]+|[^\p{L}\p{N}\p{M}\s\x00-\x7f]/gu.
"""

from __future__ import annotations

import re

import torch

WORD = re.compile(r"-?[0-9]+|[^\W_]+|[^\w\s\x00-\x7f]")
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


def words(text: str) -> list[str]:
    """The words of a text, then its adjacent word pairs (what gets hashed)."""
    found = WORD.findall(text.lower())
    return found + [f"{a} {b}" for a, b in zip(found, found[1:])]


def tokenize(text: str, buckets: int, max_tokens: int = MAX_TOKENS) -> list[int]:
    ids = [1 + fnv1a(w) % (buckets - 1) for w in words(text)][:max_tokens]
    return ids + [0] * (max_tokens - len(ids))


def tokenize_batch(texts: list[str], buckets: int, max_tokens: int = MAX_TOKENS) -> torch.Tensor:
    return torch.tensor([tokenize(t, buckets, max_tokens) for t in texts], dtype=torch.long)
