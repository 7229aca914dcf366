"""Instructions as the bytes of their words: distinct strings get distinct ids (no hash buckets), case is
kept, long words go on in further slots, and the encoder tells the words apart and hears their order."""

import json
import re
from pathlib import Path

import pytest
import torch

from lnn.errors import ConfigError
from lnn.models.text import CONTINUES, MAX_WORDS, WORD_BYTES, InstructionEncoder, tokenize, tokenize_batch, words
from lnn.runs import build_model


def miniwob_lists() -> dict[str, list[str]]:
    """MiniWoB's own word lists (ui_utils.js): the click-link words and the email sender names."""
    miniwob = pytest.importorskip("miniwob")
    source = (Path(miniwob.__file__).parent / "html" / "common" / "ui_utils.js").read_text()
    lists = {}
    for name in ("lorem_words", "PEOPLE_NAMES"):
        body = re.search(rf"ui_utils\.{name}\s*=\s*(\[.*?\]);", source, re.S).group(1).replace("'", '"')
        lists[name] = json.loads(re.sub(r",\s*\]", "]", body))
    return lists


def test_every_link_word_and_sender_name_gets_its_own_ids():
    lists = miniwob_lists()
    links = sorted({w.strip(",.") for w in lists["lorem_words"]})
    links += [w.capitalize() for w in links]  # the first word of a sentence is capitalised on the page
    names = lists["PEOPLE_NAMES"]
    assert len(names) > 4900 and len(links) > 300
    texts = [f'click-link Click on the link "{w}".' for w in links]
    texts += [f"email-inbox-delete Find the email by {n} and click the trash icon to delete it." for n in names]
    ids = tokenize_batch(texts)
    assert len(set(map(tuple, ids.tolist()))) == len(texts)  # no two share their input (86 of 169 did)
    # and the encoder, untrained, already gives each its own vector
    torch.manual_seed(0)
    with torch.no_grad():
        vectors = InstructionEncoder(64)(ids)
    distances = torch.cdist(vectors, vectors) + torch.eye(len(texts)) * 1e9
    assert distances.min() > 1e-4


def test_case_is_kept():
    assert tokenize("Click Q") != tokenize("Click q")
    assert tokenize("Q")[:2] == [ord("Q") + 1, 0]


def test_word_slots_bytes_and_continuation():
    assert words('Click on (2,-1). ÖK ♥♥ 确定') == ["Click", "on", "(", "2", ",", "-1", ")", ".", "ÖK", "♥", "♥", "确定"]
    assert tokenize("(2,-1)") != tokenize("(-1,2)") != tokenize("(2,1)")
    ids = tokenize("é abcdefghijklmnop")  # é is 2 bytes; a 16-byte word takes two slots
    slots = [ids[i : i + WORD_BYTES] for i in range(0, len(ids), WORD_BYTES)]
    assert len(ids) == MAX_WORDS * WORD_BYTES and slots[0][:3] == [0xC3 + 1, 0xA9 + 1, 0]
    assert slots[1] == [ord(c) + 1 for c in "abcdefghijkl"] and slots[2][:6] == [CONTINUES, *(ord(c) + 1 for c in "mnop"), 0]
    assert tokenize("abcdefghijklmnop") != tokenize("abcdefghijkl mnop")  # continuing is not a new word
    assert all(i == 0 for i in slots[3]) and tokenize("") == [0] * (MAX_WORDS * WORD_BYTES)
    many = tokenize(" ".join(f"w{i}" for i in range(40)))  # cut to MAX_WORDS slots
    assert many[-WORD_BYTES:][:4] == [ord("w") + 1, ord("3") + 1, ord("1") + 1, 0]


def test_the_encoder_hears_word_order():
    torch.manual_seed(0)
    encoder = InstructionEncoder(16)
    with torch.no_grad():
        a, b, c = encoder(tokenize_batch(["move left then up", "move up then left", "move left then up"]))
    assert not torch.allclose(a, b) and torch.equal(a, c)


def test_a_model_with_hashed_words_is_refused_with_a_clear_line():
    old = {"class": "lnn.models.VisionLNNLite", "kwargs": {"image_size": 32, "instruction_buckets": 256}}
    with pytest.raises(ConfigError) as info:
        build_model(old, "old.ckpt")
    assert info.value.key == "model.instruction_buckets=256"
    assert "hashed-word" in info.value.message and "retrain" in info.value.message and "old.ckpt" in info.value.message


def test_text_bytes_decode_characters_copies_and_the_end():
    """Slot choices: a character ('H'), a copy of the instruction's byte ('é' is two bytes, copied), END."""
    from lnn.models.text import CHARS, END, FIRST_CHAR, text_bytes

    ids = torch.tensor([tokenize('Type "é"')])
    positions = [int(p) for p in (ids[0] == 0xC3 + 1).nonzero()] + [int(p) for p in (ids[0] == 0xA9 + 1).nonzero()]
    logits = torch.zeros(1, 5, CHARS + ids.shape[1])
    for slot, index in enumerate([ord("H") - FIRST_CHAR, CHARS + positions[0], CHARS + positions[1], END, 0]):
        logits[0, slot, index] = 1.0
    out = text_bytes(logits, ids)
    assert out.tolist() == [[ord("H"), 0xC3, 0xA9, -1, FIRST_CHAR]]
    assert bytes(out[0, :3].tolist()).decode() == "Hé"


def test_text_options_are_the_character_or_any_copy_then_the_end():
    from lnn.models.text import CHARS, END, FIRST_CHAR, text_options

    ids = torch.tensor([tokenize('Type "ab" and "b"'), tokenize("")])
    options, trained = text_options(["ab", "€"], ids, 4)
    b_positions = set((ids[0] == ord("b") + 1).nonzero().flatten().tolist())
    assert len(b_positions) == 2  # both b's: copying either is right
    assert set((options[0, 1, CHARS:]).nonzero().flatten().tolist()) == b_positions
    assert options[0, 1, ord("b") - FIRST_CHAR] and options[0, 2, END] and options[0, 2].sum() == 1
    assert trained[0].tolist() == [True, True, True, False]  # after the end: not trained
    assert trained[1].tolist() == [False, False, False, True]  # € is in neither the characters nor the instruction
