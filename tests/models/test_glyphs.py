"""Finding a named word never seen in training: words drawn with the page's font at random places among
distractor words; a small pointer trained on one word list must point to held-out words far above chance
with the text-match channel, and falls to about chance without it."""

import random

import numpy as np
import pytest
import torch
from torch import nn

from lnn.models.glyphs import TextMatch, correlate, ink, named_text, render_strip, rows_correlate, strips
from lnn.models.lite import CellScorer
from lnn.models.text import InstructionEncoder, tokenize_batch

pytest.importorskip("PIL")
SIZE, CELL, WORDS_PER_FRAME = (48, 128), 8, 5  # frame (h, w); the map's cells are 8 x 8 pixels: 6 x 16 cells


def vocabulary(rng: random.Random, count: int, taken: set) -> list[str]:
    words = []
    while len(words) < count:
        word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 7)))
        word = word.capitalize() if rng.random() < 0.5 else word
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def scenes(rng: random.Random, vocab: list[str], count: int):
    """Frames (N, 3, H, W) with WORDS_PER_FRAME words drawn at random, non-overlapping places; the
    instruction names one; its box (x0, y0, x1, y1) in pixels."""
    from PIL import Image, ImageDraw, ImageFont

    from lnn.models.glyphs import PAGE_FONT_PX, font_file

    font = ImageFont.truetype(str(font_file()), PAGE_FONT_PX)
    frames, instructions, boxes = [], [], []
    while len(frames) < count:
        image = Image.new("RGB", SIZE[::-1], "white")
        draw, placed = ImageDraw.Draw(image), []
        for word in rng.sample(vocab, WORDS_PER_FRAME):
            for _ in range(50):
                x, y = rng.randint(0, SIZE[1] - 45), rng.randint(0, SIZE[0] - 12)
                box = draw.textbbox((x, y), word, font=font)
                free = all(box[2] + 3 < b[0] or b[2] + 3 < box[0] or box[3] + 3 < b[1] or b[3] + 3 < box[1] for _, b in placed)
                if free and box[2] < SIZE[1] and box[3] < SIZE[0]:
                    draw.text((x, y), word, fill="black", font=font)
                    placed.append((word, box))
                    break
        if len(placed) < 3:
            continue
        word, box = rng.choice(placed)
        frames.append(np.asarray(image))
        instructions.append(f'Click on the link "{word}".')
        boxes.append(box)
    images = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    return images, instructions, torch.tensor(boxes, dtype=torch.float32)


def inside(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 4) boxes -> (N, cells) whether each cell's centre lies in the box."""
    ys, xs = torch.meshgrid(torch.arange(SIZE[0] // CELL), torch.arange(SIZE[1] // CELL), indexing="ij")
    cx, cy = (xs.flatten() + 0.5) * CELL, (ys.flatten() + 0.5) * CELL
    b = boxes.unsqueeze(-1)
    return (cx >= b[:, 0] - 1) & (cx <= b[:, 2] + 1) & (cy >= b[:, 1] - 1) & (cy <= b[:, 3] + 1)


class Pointer(nn.Module):
    """A CNN map (stride 8), the instruction's vector and, with `match`, the text-match channel -> cell scores."""

    def __init__(self, match: bool):
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
                                 nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU())  # fmt: skip
        self.text = InstructionEncoder(32)
        self.match = TextMatch() if match else None
        self.scorer = CellScorer(33, 32, 32)

    def forward(self, images, ids, strip):
        screen = ink(images)
        feats = self.cnn(screen)
        found = self.match(screen, strip, CELL) if self.match else torch.zeros_like(feats[:, :1])
        return self.scorer(torch.cat([feats, found], 1).flatten(2), self.text(ids))


def test_the_named_text_rule_and_strips():
    assert named_text('Click on the link "ipsum".') == "ipsum"
    assert named_text("Find the email by Marlena and click the trash icon to delete it.") == "Marlena"
    assert named_text("Click the button.") == "" and not render_strip("").any()
    strip = render_strip("Q")
    assert strip.shape == (18, 66) and strip.max() > 0.8 and not np.array_equal(strip, render_strip("q"))
    squeezed = render_strip("ipsum", scale=(0.8, 128 / 210))  # a 160 x 210 page stretched to 128 x 128
    assert (squeezed > 0.3).any(0).sum() < (strip.shape[1]) and (squeezed > 0.3).any(1).sum() < (render_strip("ipsum") > 0.3).any(1).sum()


def test_the_correlation_is_each_samples_own_conv_at_any_batch_size():
    torch.manual_seed(0)
    f, k = torch.randn(3, 4, 21, 16, dtype=torch.float64), torch.randn(3, 4, 9, 33, dtype=torch.float64)
    by_conv = torch.cat([torch.nn.functional.conv2d(f[i : i + 1], k[i : i + 1], padding=(4, 16)) for i in range(3)])
    two = torch.stack([k, k.flip(0)], 1)  # two kernels per sample (styles)
    flipped = torch.cat([torch.nn.functional.conv2d(f[i : i + 1], k[2 - i : 3 - i], padding=(4, 16)) for i in range(3)])
    torch.testing.assert_close(correlate(f, two), torch.cat([by_conv, flipped], 1))  # FFTs (PyTorch)
    torch.testing.assert_close(rows_correlate(f, two), torch.cat([by_conv, flipped], 1))  # a matmul (ONNX graphs)
    match, screen = TextMatch().double(), torch.rand(3, 1, 210, 160, dtype=torch.float64)
    strip = strips(['Click "alpha".', "Find Bob's email", "Click the button."]).double()
    together = match(screen, strip, 8)
    assert together.shape == (3, 1, 27, 20)  # the map of three stride-2 layers over 210 x 160: ceil(210 / 8) rows
    torch.testing.assert_close(together[1:2], match(screen[1:2], strip[1:2], 8))
    assert not together[2].any()  # nothing named: no match anywhere
    coarse = TextMatch(stride=4).double()(screen, strip, 8)  # matched every 4th pixel: the same map of cells
    assert coarse.shape == (3, 1, 27, 20) and not coarse[2].any()


@pytest.mark.slow  # ~1m45 of CPU: three small pointers trained 150 steps each
def test_a_word_never_seen_in_training_is_found_by_its_look():
    rng = random.Random(0)
    taken: set = set()
    train_vocab, test_vocab = vocabulary(rng, 150, taken), vocabulary(rng, 100, taken)
    train, test = scenes(rng, train_vocab, 800), scenes(rng, test_vocab, 200)

    def inputs(data):
        images, instructions, boxes = data
        return images, tokenize_batch(instructions), strips(instructions), inside(boxes)

    train, test = inputs(train), inputs(test)

    def accuracy(match: bool, **shape) -> float:
        torch.manual_seed(0)
        model = Pointer(match)
        if shape:
            model.match = TextMatch(**shape)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for step in range(150):
            rows = torch.randint(0, len(train[0]), (24,))
            logits = model(train[0][rows], train[1][rows], train[2][rows])
            p = torch.log_softmax(logits, -1)
            loss = -torch.logsumexp(p.masked_fill(~train[3][rows], -1e9), -1).mean()  # click inside the box
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            pick = model(*test[:3]).argmax(-1)
        return test[3].gather(1, pick.unsqueeze(1)).float().mean().item()

    with_match, without = accuracy(True), accuracy(False)
    # the browser's cheaper match: every 4th pixel down the page, every 2nd along a line, 4 features (an eighth
    # of the multiply-adds); every 4th pixel both ways finds ~70%: a word's place along its line is what counts
    fast = accuracy(True, channels=4, stride=[4, 2])
    print(f"held-out words: {100 * with_match:.0f}% with the match channel ({100 * fast:.0f}% with the fast match), "
          f"{100 * without:.0f}% without (~{100 / WORDS_PER_FRAME:.0f}% picks a word at random)")
    assert with_match >= 0.8 and fast >= 0.8
    assert without <= 0.45


@pytest.mark.parametrize("stride", [2, 4, [4, 2]])
def test_the_instruction_box_hides_the_named_texts_own_quote(stride):
    # MiniWoB shows the instruction in its query box (the top 50 px), so the named word always matches there too
    from lnn.errors import ConfigError
    from lnn.models.lite import VisionLNNLite

    torch.manual_seed(0)
    word = torch.from_numpy(render_strip("ipsum").copy())  # (18, 66), ink as the page draws it
    screen = torch.ones(1, 3, 210, 160)
    for top in (8, 120):  # the quote in the query box, the link in the body (112 px apart: the same phase at stride 4)
        screen[0, :, top : top + 18, 40:106] = 1 - word
    screen[0, :, 52:70, 0:66] = 1 - word  # a third copy just below the box, where the rows left out are read
    made = dict(image_size=[210, 160], page_size=[210, 160], match_text=True, hidden_size=16, num_layers=1,
                match_stride=stride)
    best = {}
    for box in (None, [0, 0, 50, 160]):
        torch.manual_seed(0)  # the same weights
        model = VisionLNNLite(**made, instruction_box=box).eval()
        strip = model.text_inputs(["click-link"], ['Click on the link "ipsum".'])["strip"]
        with torch.no_grad():
            match = model.text_match(ink(screen), strip, model.map_stride, model.match_keep, model.match_top)[0, 0]
            every_row = model.text_match(ink(screen), strip, model.map_stride, model.match_keep)[0, 0]  # (27, 20) cells
        torch.testing.assert_close(match, every_row, atol=1e-4, rtol=0)  # rows above the box's bottom left out, not changed
        with torch.no_grad():  # in float64, where the FFTs of two sizes round alike: the same up to 1e-12
            exact = [model.double().text_match(ink(screen).double(), strip.double(), model.map_stride,
                                               model.match_keep, top) for top in (model.match_top, 0)]  # fmt: skip
        torch.testing.assert_close(*exact, atol=1e-12, rtol=0)
        model.float()
        assert model.match_top == ((25 if stride == 2 else 13) if box else 0)  # rows whose centres lie in it: 0..48 px
        quote, link = match[: 50 // 8].max(), match[120 // 8 : 140 // 8].max()
        best[str(box)] = (quote.item(), link.item())
    quote, link = best["None"]
    assert link > 0.5 and quote == pytest.approx(link, abs=1e-4)  # two equal copies: the quote competes
    quote, link = best["[0, 0, 50, 160]"]
    assert quote == 0 and link == pytest.approx(best["None"][1])  # the box hides the quote only
    with pytest.raises(ConfigError, match="instruction_box"):
        VisionLNNLite(**made, instruction_box=[50, 0, 0, 160])
    with pytest.raises(ConfigError, match="instruction_box"):
        VisionLNNLite(**{**made, "match_text": False}, instruction_box=[0, 0, 50, 160])
    for bad in (3, [2, 3], [2]):
        with pytest.raises(ConfigError, match="match_stride"):
            VisionLNNLite(**{**made, "match_stride": bad})
    with pytest.raises(ConfigError, match="match_channels"):
        VisionLNNLite(**{**made, "match_channels": 0})


def test_match_styles_find_a_name_drawn_bold_and_match_lines_mark_its_row():
    # email-inbox draws sender names bold at 11 px: the body style matches them poorly, their own style exactly
    from lnn.errors import ConfigError
    from lnn.models.lite import VisionLNNLite

    name = torch.from_numpy(render_strip("Marlena", 11, bold=True).copy())
    screen = torch.ones(1, 3, 210, 160)
    screen[0, :, 120:138, 20:86] = 1 - name
    bold = {"font_px": 11, "bold": True}
    made = dict(image_size=[210, 160], page_size=[210, 160], match_text=True, hidden_size=16, num_layers=1)
    found = {}
    for styles in (None, [{"font_px": 10, "bold": False}, bold]):
        torch.manual_seed(0)  # the same weights
        model = VisionLNNLite(**made, match_styles=styles, match_lines=True).eval()
        text = model.text_inputs(["email-inbox-delete"], ["Find the email by Marlena and click the trash icon to delete it."])
        assert text["strip"].shape == (1, 1 if styles is None else 2, 18, 66)
        with torch.no_grad():
            feats = model.encode_frames(screen, text["strip"])  # (1, C + 3 + P, cells): match, its row's, its column's
        c = model.cnn[-2].out_channels
        match, row, column = (feats[0, c + i].view(model.map_hw) for i in range(3))
        found[styles is None] = match.max().item()
        peak_row, peak_col = divmod(int(match.flatten().argmax()), model.map_hw[1])
        torch.testing.assert_close(row[peak_row], match.max().expand(model.map_hw[1]))  # every cell of its row knows
        torch.testing.assert_close(column[:, peak_col], match.max().expand(model.map_hw[0]))
        assert (row.amax(1) <= match.max()).all() and row[peak_row + 3].max() < match.max()
    assert found[False] > 0.9 and found[False] > found[True] + 0.1  # its own style: an exact copy
    with pytest.raises(ConfigError, match="match_styles"):
        VisionLNNLite(**made, match_styles=[{"font_px": 10}])
    with pytest.raises(ConfigError, match="match_lines"):
        VisionLNNLite(**{**made, "match_text": False}, match_lines=True)
