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

import functools
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


@functools.lru_cache(maxsize=8192)  # at most 8192 · 384 int64 ids: 25 MB
def _token_row(text: str, max_words: int, word_bytes: int) -> Tensor:
    return torch.tensor(tokenize(text, max_words, word_bytes), dtype=torch.long)


def tokenize_batch(texts: list[str], max_words: int = MAX_WORDS, word_bytes: int = WORD_BYTES) -> torch.Tensor:
    """(N,) texts -> (N, max_words · word_bytes) ids. The same texts come back on every frame of an episode and in
    every epoch, so each text's row is cached: building a (128, 384) tensor from Python lists took ~5% of a step."""
    if not texts:
        return torch.zeros(0, max_words * word_bytes, dtype=torch.long)
    return torch.stack([_token_row(t, max_words, word_bytes) for t in texts])


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

    def contexts(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """ids -> each word's vector in its context (N, W, C) (it sees its neighbours; zero at empty slots), and
        which slots hold a word (N, W, 1) as floats."""
        vectors, real = self.words(ids)
        real = real.unsqueeze(-1).to(vectors.dtype)
        return (vectors + torch.relu(self.order(vectors.transpose(1, 2)).transpose(1, 2))) * real, real

    def forward(self, ids: Tensor) -> Tensor:
        mixed, real = self.contexts(ids)
        mean = mixed.sum(1) / real.sum(1).clamp(min=1)
        return self.out(torch.cat([mean, mixed.amax(1)], -1))


# The text head's own characters: printable ASCII (bytes 32..126), then END (the text ends here). Its other
# choices copy a byte of the instruction's ids (position p: byte ids[p] - 1).
FIRST_CHAR, LAST_CHAR = 32, 126
END = LAST_CHAR - FIRST_CHAR + 1  # index of end-of-text among the characters
CHARS = END + 1
TEXT_SLOTS = 16  # bytes a type action's text can have (UTF-8); a longer text is cut


class TextHead(nn.Module):
    """What to type, in one step (no loop: it exports as one ONNX step): `slots` output slots, the i-th
    byte of the text in slot i. Each slot scores CHARS characters (printable ASCII and END) and a copy of
    every byte of the instruction's ids — the i-th byte of a word named in the instruction — so a word
    is copied, whatever it is, and digits or another case come from the characters.

    A slot's query is the policy's state (with the instruction's vector) plus the slot's embedding; a
    byte's key is its id, its offset in its word slot and its word in context (which word follows the
    quote, the colon...). decode: argmax per slot, up to the first END.
    """

    def __init__(self, query_size: int, context_size: int, slots: int = TEXT_SLOTS, dim: int = 64,
                 word_bytes: int = WORD_BYTES):  # fmt: skip
        super().__init__()
        self.word_bytes, self.dim = word_bytes, dim
        self.state = nn.Linear(query_size, dim)
        self.slot = nn.Parameter(torch.randn(slots, dim) * 0.5)
        self.query = nn.Sequential(nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.chars = nn.Linear(dim, CHARS)
        self.byte = nn.Embedding(BYTE_IDS, dim, padding_idx=0)
        self.offset = nn.Parameter(torch.randn(word_bytes, dim) * 0.5)
        self.word = nn.Linear(context_size, dim)

    def forward(self, query: Tensor, ids: Tensor, contexts: Tensor) -> Tensor:
        """query (N, Q), ids (N, P) (P = words · word_bytes), contexts (N, words, C) -> logits (N, slots, CHARS + P)."""
        q = self.query(self.state(query).unsqueeze(1) + self.slot)  # (N, slots, dim)
        words = contexts.shape[1]
        keys = self.byte(ids) + self.offset.repeat(words, 1)  # (N, P, dim): the byte, its offset in its word slot
        keys = keys + self.word(contexts).repeat_interleave(self.word_bytes, 1)  # ... and its word in context
        copy = torch.einsum("nsd,npd->nsp", q, keys) / self.dim**0.5
        copyable = (ids > 0) & (ids < CONTINUES)  # bytes, not padding nor a continuation mark
        copy = copy.masked_fill(~copyable.unsqueeze(1), -1e4)
        return torch.cat([self.chars(q), copy], -1)


def text_bytes(logits: Tensor, ids: Tensor) -> Tensor:
    """The text head's choice per slot (N, slots, CHARS + P), ids (N, P) -> (N, slots) int64 bytes, -1 at END
    (and wherever a copied position holds no byte). What TorchPolicy, OnnxPolicy and the page decode."""
    best = logits.argmax(-1)
    char = best + FIRST_CHAR
    copied = ids.gather(1, (best - CHARS).clamp(min=0)) - 1
    out = torch.where(best < END, char, torch.where(best == END, torch.full_like(best, -1), copied))
    return torch.where(out > 255, torch.full_like(out, -1), out)


def text_options(texts: list[str], ids: Tensor, slots: int) -> tuple[Tensor, Tensor]:
    """The right choices of each slot for typing `texts` (N,) given the instruction ids (N, P): (N, slots,
    CHARS + P) bool — the byte's character and every instruction position holding that byte; END after the
    text — and which slots are trained (N, slots): up to END, where some choice is right."""
    n, positions = ids.shape
    options = torch.zeros(n, slots, CHARS + positions, dtype=torch.bool)
    for i, text in enumerate(texts):
        data = text.encode("utf-8")[:slots]
        for s, byte in enumerate(data):
            if FIRST_CHAR <= byte <= LAST_CHAR:
                options[i, s, byte - FIRST_CHAR] = True
            options[i, s, CHARS:] = ids[i].cpu() == byte + 1
        if len(data) < slots:
            options[i, len(data), END] = True
    return options, options.any(-1)
