"""Instructions as the bytes of their words: no vocabulary file, no collisions, case kept; identical in
Python and in the browser.

The text is split into words: numbers with their sign (`-1`), runs of letters and digits (any script:
`cancél`, `确定`), and every other non-space character on its own (`"`, `.`, `♥`). Each word fills a slot
of WORD_BYTES ids: its UTF-8 bytes + 1 (1..256), 0 padding the slot; a longer word goes on in the next
slots, each opened by CONTINUES. The slots, cut to MAX_WORDS, make one flat row of MAX_WORDS · WORD_BYTES
ids. So two texts that differ in anything but whitespace (within MAX_WORDS slots) get different rows —
"Q" and "q", or any two of MiniWoB's 4,900 sender names — which the hashed words before could not
promise. The web page reimplements exactly this (export/web/lnn.js): in JavaScript the word pattern is
/-?[0-9]+|[\\p{L}\\p{N}]+|\\S/gu.

`InstructionEncoder` is the model side: each word from its bytes, the words in order.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

WORD = re.compile(r"-?[0-9]+|[^\W_]+|\S")
SCHEME = "word-bytes/1"  # what the manifest names; bump when the ids change
MAX_WORDS, WORD_BYTES = 32, 12
CONTINUES = 257  # opens a slot that goes on with the previous slot's word
BYTE_IDS = 258  # 0 pads, 1..256 are bytes, 257 continues


def instruction_text(task: str, instruction: str) -> str:
    """What the model reads: the task name (as the seed's task id did) and the instruction."""
    return f"{task} {instruction}"


def words(text: str) -> list[str]:
    return WORD.findall(text)


def word_slots(word: str, word_bytes: int = WORD_BYTES) -> list[list[int]]:
    """One word -> its slots of byte ids (the first slot its first bytes, each further one opened by CONTINUES)."""
    ids = [b + 1 for b in word.encode("utf-8")]
    slots, rest = [ids[:word_bytes]], ids[word_bytes:]
    while rest:
        slots.append([CONTINUES, *rest[: word_bytes - 1]])
        rest = rest[word_bytes - 1 :]
    return [s + [0] * (word_bytes - len(s)) for s in slots]


def tokenize(text: str, max_words: int = MAX_WORDS, word_bytes: int = WORD_BYTES) -> list[int]:
    """A text -> max_words · word_bytes ids (the word slots, flattened; 0 pads)."""
    slots = [slot for word in words(text) for slot in word_slots(word, word_bytes)][:max_words]
    return [i for slot in slots for i in slot] + [0] * (word_bytes * (max_words - len(slots)))


def tokenize_batch(texts: list[str], max_words: int = MAX_WORDS, word_bytes: int = WORD_BYTES) -> torch.Tensor:
    return torch.tensor([tokenize(t, max_words, word_bytes) for t in texts], dtype=torch.long).view(len(texts), -1)


class InstructionEncoder(nn.Module):
    """(N, words · word_bytes) ids -> (N, dim).

    Each word from its bytes: a byte embedding, two 1-D convolutions and the max over the word's bytes
    (a word never seen in training still gets a vector of its own, built from its letters). The words
    then see their neighbours (a convolution over the word sequence: order counts, as the bigrams did),
    and the mean and the max over the real words make the instruction's vector (layer-normalised).
    """

    def __init__(self, dim: int, char_dim: int = 32, byte_dim: int = 16, word_bytes: int = WORD_BYTES):
        super().__init__()
        self.word_bytes = word_bytes
        self.bytes = nn.Embedding(BYTE_IDS, byte_dim, padding_idx=0)
        # and the sum of the word's byte vectors: a linear path that tells "red" from "blue" from the first steps
        # (the convolutions alone learn a new word's vector far slower than a lookup does)
        self.bag = nn.Embedding(BYTE_IDS, char_dim, padding_idx=0)
        self.chars = nn.Sequential(nn.Conv1d(byte_dim, char_dim, 3, padding=1), nn.ReLU(),
                                   nn.Conv1d(char_dim, char_dim, 3, padding=1), nn.ReLU())  # fmt: skip
        self.order = nn.Conv1d(char_dim, char_dim, 3, padding=1)
        # normalised, at a scale (2) where the instruction moves the scorers' FiLM from the first steps (at 0.5 a
        # short click-color run learned nothing in 150 steps: tests/training/test_learns.py)
        self.out = nn.Sequential(nn.Linear(2 * char_dim, dim), nn.LayerNorm(dim))
        nn.init.constant_(self.out[1].weight, 2.0)

    def words(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """ids (N, W · B) -> word vectors (N, W, C) (zero at empty slots) and which slots hold a word (N, W)."""
        ids = ids.view(ids.shape[0], -1, self.word_bytes)
        real_bytes = (ids > 0).flatten(0, 1).unsqueeze(1)
        h = self.chars(self.bytes(ids.flatten(0, 1)).transpose(1, 2)) * real_bytes  # >= 0: padding drops out of the max
        vectors = h.amax(-1).view(*ids.shape[:2], -1) + self.bag(ids).sum(2)  # padding's bag vector is zero
        return vectors, (ids > 0).any(-1)

    def forward(self, ids: Tensor) -> Tensor:
        vectors, real = self.words(ids)
        real = real.unsqueeze(-1).to(vectors.dtype)
        mixed = (vectors + torch.relu(self.order(vectors.transpose(1, 2)).transpose(1, 2))) * real
        mean = mixed.sum(1) / real.sum(1).clamp(min=1)
        return self.out(torch.cat([mean, mixed.amax(1)], -1))
