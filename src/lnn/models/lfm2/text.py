"""Tokens for LFM2: a byte tokenizer that needs no file, the real tokenizer from a local directory,
and the chat-style prompt every frame is read in.

No tokenizer can be downloaded here, and the tiny preset has no vocabulary of its own: `ByteTokenizer`
maps UTF-8 bytes to ids 16..271 and keeps the ids below 16 (and the config's image token) for the
special tokens. With `pretrained_path`, the directory's own tokenizer is used instead.

A frame's prompt follows LFM2-VL's chat layout:

    <|startoftext|><|im_start|>user\n <|image_start|> <image>×n <|image_end|> instruction <|im_end|>\n<|im_start|>assistant\n

and a tiled frame's image tokens come per crop as the processor writes them: <|img_row_1_col_1|> <image>×k ...
<|img_thumbnail|> <image>×m (markers the tokenizer lacks, as the byte tokenizer's, are left out).

A frame's instruction is cut or padded to a fixed length; the pads (masked) go in front of the
prompt, so the last token — where the action is read — is at the same position in every frame.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from lnn.errors import ConfigError

BYTE_OFFSET = 16


class ByteTokenizer:
    """UTF-8 bytes as token ids (16 + byte); special tokens below 16 and at the config's ids."""

    def __init__(self, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2, image_token_id: int = 7, vocab_size: int = 512):
        self.pad_id, self.bos_id, self.eos_id, self.image_token_id = pad_id, bos_id, eos_id, image_token_id
        self.im_start_id, self.im_end_id = 3, eos_id  # LFM2 ends a turn with <|im_end|>, its eos
        self.image_start_id, self.image_end_id = 5, 6
        specials = {pad_id, bos_id, eos_id, 3, 5, 6, image_token_id}
        if vocab_size < BYTE_OFFSET + 256 or any(BYTE_OFFSET <= s < BYTE_OFFSET + 256 for s in specials):
            raise ValueError(f"a byte tokenizer needs ids {BYTE_OFFSET}..{BYTE_OFFSET + 255} free (vocab {vocab_size})")

    def encode(self, text: str) -> list[int]:
        return [BYTE_OFFSET + b for b in text.encode("utf-8")]

    def special(self, token: str) -> int | None:
        """No special tokens beyond the fixed ids: the tile markers of a tiled frame are left out."""
        return None

    def decode(self, ids) -> str:
        data = bytes(i - BYTE_OFFSET for i in ids if BYTE_OFFSET <= i < BYTE_OFFSET + 256)
        return data.decode("utf-8", errors="replace")


class HFTokenizer:
    """A transformers tokenizer (from a local directory) behind the same small interface."""

    def __init__(self, tokenizer, image_token_id: int):
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.bos_id = tokenizer.bos_token_id
        self.image_token_id = image_token_id
        self.im_start_id = self.special("<|im_start|>")
        self.im_end_id = self.special("<|im_end|>")
        self.eos_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else self.im_end_id
        self.image_start_id = self.special("<|image_start|>")
        self.image_end_id = self.special("<|image_end|>")

    def special(self, token: str) -> int | None:
        """The id of a special token, None when the vocabulary lacks it."""
        ids = self.tokenizer.convert_tokens_to_ids([token])
        unk = self.tokenizer.unk_token_id
        return ids[0] if ids and ids[0] is not None and ids[0] != unk else None

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def load_tokenizer(pretrained_path, config):
    """The directory's tokenizer if it has tokenizer files (None otherwise); the byte tokenizer without a directory.

    Never runs code shipped with a checkpoint (trust_remote_code=False); a tokenizer that is there but does
    not load stops with one line naming `pretrained_path` and the reason.
    """
    text = config.text_config
    if pretrained_path:
        directory = Path(pretrained_path).expanduser()
        if not any((directory / name).is_file() for name in TOKENIZER_FILES):
            return None
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True, trust_remote_code=False)
        except Exception as e:  # noqa: BLE001 — any loading failure becomes one line naming the key
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError("pretrained_path", f"could not load the tokenizer in {directory}: {reason}") from None
        return HFTokenizer(tokenizer, config.image_token_id)
    return ByteTokenizer(text.pad_token_id or 0, text.bos_token_id, _first(text.eos_token_id), config.image_token_id,
                         text.vocab_size)  # fmt: skip


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) else value


class PromptFormat:
    """Builds the token ids of prompts around `n_image` image tokens, given per crop as (marker, tokens) pairs
    when the frame is tiled (`FrameLayout.crops`); one unmarked crop otherwise."""

    def __init__(self, tokenizer, n_image: int, crops: list[tuple[str | None, int]] | None = None):
        t = tokenizer
        crops = crops or [(None, n_image)]
        if sum(n for _, n in crops) != n_image:
            raise ValueError(f"crops {crops} do not add up to {n_image} image tokens")
        self.tokenizer, self.n_image, self.pad_id = tokenizer, n_image, t.pad_id
        self.prefix = [i for i in (t.bos_id, t.im_start_id) if i is not None] + t.encode("user\n")
        self.image = [t.image_start_id] if t.image_start_id is not None else []
        for marker, tokens in crops:
            marker_id = t.special(marker) if marker else None
            self.image += ([marker_id] if marker_id is not None else []) + [t.image_token_id] * tokens
        self.image += [t.image_end_id] if t.image_end_id is not None else []
        self.suffix = ([t.im_end_id] if t.im_end_id is not None else []) + t.encode("\n")
        self.suffix += ([t.im_start_id] if t.im_start_id is not None else []) + t.encode("assistant\n")

    def text_ids(self, texts: list[str], length: int) -> Tensor:
        """(N, length) ids of each text, truncated to its first `length` tokens, left-padded."""
        rows = []
        for text in texts:
            ids = self.tokenizer.encode(text)[:length] if text else []
            rows.append([self.pad_id] * (length - len(ids)) + ids)
        return torch.tensor(rows, dtype=torch.long).view(len(texts), length)

    def frames(self, text_ids: Tensor) -> tuple[Tensor, Tensor]:
        """(M, L) left-padded instruction ids -> the frames' ids (M, N) and attention mask (M, N).

        The instruction's pads move to the front of the whole prompt (left padding), so a frame read
        token by token from its first real token (the exported decoder step) sees exactly what the
        padded pass sees: masked pads only ever precede a prompt, like a fresh conv and liquid state.
        """
        m = text_ids.shape[0]
        fixed = lambda ids: torch.tensor(ids, dtype=torch.long, device=text_ids.device).expand(m, -1)
        head, tail = fixed(self.prefix + self.image), fixed(self.suffix)
        ids = torch.cat([head, text_ids, tail], 1)
        mask = torch.cat([torch.ones_like(head), (text_ids != self.pad_id).long(), torch.ones_like(tail)], 1)
        order = torch.argsort(mask, dim=1, stable=True)  # pads first, the rest in order
        return ids.gather(1, order), mask.gather(1, order)

    def prompts(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Whole prompts for generate(): ids (B, N) and mask, left-padded to the longest."""
        rows = [self.prefix + self.image + self.tokenizer.encode(text) + self.suffix for text in texts]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[self.pad_id] * (width - len(r)) + r for r in rows], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
        return ids, mask
