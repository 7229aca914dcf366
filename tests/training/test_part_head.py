"""The part head: what the oracle says each part of the screen is (click-shape's shapes) teaches the CNN's cells."""

import math

import torch

from lnn.envs import PART_ATTRIBUTES, Part
from lnn.models import VisionLNNLite
from lnn.models.lite import PART_CLASSES
from lnn.training.module import part_loss

CELLS = torch.tensor([[0.25, 0.75, 0.25, 0.75], [0.25, 0.25, 0.75, 0.75]])  # (2, cells): a 2 x 2 map's centres
COLOURS = PART_ATTRIBUTES["color"]
COLOUR = sum(PART_CLASSES[:2])  # where the colour's logits start


def test_a_part_is_named_by_class_ids_and_unknown_values_are_refused():
    part = Part.named((0.1, 0.2, 0.3, 0.4), type="letter", text="Q", size="large")
    assert part.labels == (0, PART_ATTRIBUTES["text"].index("Q"), -1, 1)  # colour not given: -1
    for bad in ({"color": "teal"}, {"shade": "red"}):
        try:
            Part.named((0, 0, 1, 1), **bad)
        except ValueError as error:
            assert "teal" in str(error) or "shade" in str(error)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_the_cell_at_a_parts_centre_is_judged_on_the_labels_given():
    logits = torch.zeros(1, sum(PART_CLASSES), 4)
    logits[0, COLOUR + COLOURS.index("blue"), 3] = 20.0  # the bottom-right cell says "blue"
    logits[0, COLOUR + COLOURS.index("red"), 0] = 20.0  # the top-left one "red"
    blue_part = [0.6, 0.6, 0.9, 0.9, -1, -1, COLOURS.index("blue"), -1]  # only its colour known
    padding = [-1.0] * 8
    loss, right = part_loss(logits, CELLS, torch.tensor([[blue_part, padding]]))
    assert loss < 1e-6 and right == 1.0
    red_said = [0.6, 0.6, 0.9, 0.9, -1, -1, COLOURS.index("red"), -1]  # the same cell, labelled red: wrong
    loss, right = part_loss(logits, CELLS, torch.tensor([[red_said]]))
    assert loss > 19 and right == 0.0
    with_size = [0.6, 0.6, 0.9, 0.9, -1, -1, COLOURS.index("blue"), 1]  # and a size the logits are even on
    loss, right = part_loss(logits, CELLS, torch.tensor([[with_size]]))
    assert math.isclose(loss, math.log(2) / 2, rel_tol=1e-4) and right == 0.5  # 2 labels: one sure, one a coin
    assert part_loss(logits, CELLS, torch.tensor([[padding]])) is None  # no parts: nothing to learn
    assert part_loss(logits, CELLS, torch.full((1, 0, 8), -1.0)) is None


def test_covered_teaches_every_cell_a_part_covers_and_each_part_once():
    logits = torch.zeros(1, sum(PART_CLASSES), 4)
    logits[0, COLOUR + COLOURS.index("blue"), 3] = 20.0  # the bottom-right cell (nearest the part's centre): blue
    logits[0, COLOUR + COLOURS.index("red"), 1] = 20.0  # the top-right one, also inside the part: red
    tall = torch.tensor([[[0.6, 0.2, 0.9, 0.9, -1, -1, COLOURS.index("blue"), -1]]])  # covers cells 1 and 3
    loss, right = part_loss(logits, CELLS, tall)
    assert loss < 1e-6 and right == 1.0  # the nearest cell alone is right
    loss, right = part_loss(logits, CELLS, tall, covered=True)
    assert math.isclose(loss, 10.0, rel_tol=1e-3) and right == 1.0  # half its weight on a cell that says red
    logits[0, COLOUR + COLOURS.index("blue"), 1] = 40.0  # now both say blue: nothing left to learn
    loss, _ = part_loss(logits, CELLS, tall, covered=True)
    assert loss < 1e-6
    small = torch.tensor([[[0.1, 0.1, 0.2, 0.2, -1, -1, COLOURS.index("red"), -1]]])  # covers no cell's centre
    assert torch.allclose(part_loss(logits, CELLS, small, covered=True)[0], part_loss(logits, CELLS, small)[0])


def test_an_unknown_part_cells_stops_the_run_in_one_line():
    from lnn.errors import ConfigError
    from lnn.training.module import PolicyModule

    model = VisionLNNLite(image_size=32, channels=(8, 16, 16), part_head=True)
    try:
        PolicyModule(model, optimizer=None, part_cells="centre")
    except ConfigError as error:
        assert "module.part_cells" in str(error) and "covered" in str(error) and "\n" not in str(error)
    else:
        raise AssertionError("part_cells=centre was accepted")


def squares(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n grey 32 x 32 frames, each with one 6 px square of a MiniWoB colour somewhere -> (frames (n, 1, 3, 32, 32),
    parts (n, 1, 8): its box and colour)."""
    rgb = {"red": (1, 0, 0), "green": (0, 0.5, 0), "blue": (0, 0, 1), "aqua": (0, 1, 1), "black": (0, 0, 0),
           "magenta": (1, 0, 1), "yellow": (1, 1, 0)}  # fmt: skip
    frames, parts = torch.full((n, 1, 3, 32, 32), 0.85), torch.full((n, 1, 8), -1.0)
    for i in range(n):
        colour = int(torch.randint(len(COLOURS), (1,), generator=generator))
        x, y = (int(v) for v in torch.randint(2, 24, (2,), generator=generator))
        frames[i, 0, :, y : y + 6, x : x + 6] = torch.tensor(rgb[COLOURS[colour]]).view(3, 1, 1)
        parts[i, 0, :4] = torch.tensor([x, y, x + 6, y + 6]) / 32
        parts[i, 0, 6] = colour
    return frames, parts


def test_the_cnn_learns_to_say_what_colour_a_part_is():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = VisionLNNLite(image_size=32, channels=(8, 16, 16), hidden_size=16, num_layers=1, feature_size=16,
                          instruction_dim=8, head_size=16, scorer_size=8, part_head=True)  # fmt: skip
    tokens = model.text_inputs(["t"], [""])["tokens"].view(1, 1, -1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train, train_parts = squares(128, generator)
    for _ in range(150):
        out = model(train, tokens.expand(len(train), 1, -1), parts=True)
        loss, _ = part_loss(out["part_logits"][:, 0], model.cell_xy, train_parts[:, 0].unsqueeze(1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    test, test_parts = squares(64, generator)
    with torch.no_grad():
        out = model(test, tokens.expand(len(test), 1, -1), parts=True)
        assert "part_logits" not in model(test, tokens.expand(len(test), 1, -1))  # not asked (an agent's step): no work
    _, right = part_loss(out["part_logits"][:, 0], model.cell_xy, test_parts[:, 0].unsqueeze(1))
    assert right > 0.9, f"held-out colour accuracy {float(right):.2f} (chance 1/7)"
    assert "part_logits" not in VisionLNNLite(image_size=32, channels=(8, 16, 16)).eval()(test[:1], tokens)  # off: none


def test_the_shapes_description_is_read_into_attribute_values():
    from lnn.envs.miniwob import described_parts

    assert described_parts("click-shape", "Click on a large red Q") == {"size": "large", "color": "red", "text": "Q"}
    assert described_parts("click-shape", "Click on a q") == {"text": "q"}  # case kept: "q" is not "Q"
    assert described_parts("click-shape", "Click on a small digit") == {"size": "small", "type": "digit"}
    assert described_parts("click-shape", "Click on a aqua item") == {"color": "aqua"}
    assert described_parts("count-shape", "How many large circles are there?") == {"size": "large", "text": "circle"}
    assert described_parts("count-shape", "How many ss are there?") == {"text": "s"}  # the letter s, plural
    assert described_parts("click-color", "Click on a red") == {}  # another task's instruction names no part
    assert described_parts("click-shape", "Click on a teal Q") == {}  # not this grammar: nothing, not a guess


def test_the_described_channel_is_high_where_a_fitting_part_is_centred():
    """fitting(): log P(a part is centred here) + the log-probabilities of the values the description names; zero
    where it names none. Cell 3 holds a large red Q, cell 1 a small red Q, cell 0 a large blue circle, cell 2 nothing."""
    text, colour, size = (sum(PART_CLASSES[:i]) for i in (1, 2, 3))
    logits = torch.zeros(1, sum(PART_CLASSES) + 1, 4)
    logits[0, -1] = torch.tensor([8.0, 8.0, -8.0, 8.0])  # centred: cells 0, 1, 3
    glyphs = PART_ATTRIBUTES["text"]
    for cell, (glyph, colour_name, large) in {3: ("Q", "red", 1), 1: ("Q", "red", 0), 0: ("circle", "blue", 1)}.items():
        logits[0, text + glyphs.index(glyph), cell] = 10.0
        logits[0, colour + COLOURS.index(colour_name), cell] = 10.0
        logits[0, size + large, cell] = 10.0

    def said(**named):
        parse = torch.full((1, sum(PART_CLASSES) + len(PART_CLASSES)), -10.0)
        starts = [sum(n + 1 for n in PART_CLASSES[:i]) for i in range(len(PART_CLASSES))]
        for i, (attribute, values) in enumerate(PART_ATTRIBUTES.items()):
            parse[0, starts[i] + (values.index(named[attribute]) if attribute in named else len(values))] = 10.0
        return parse

    fits = VisionLNNLite.fitting(logits, said(size="large", color="red"))[0]
    assert fits.argmax() == 3 and fits[3] > -0.01 and (fits[[0, 1, 2]] < -7).all()
    fits = VisionLNNLite.fitting(logits, said(text="Q"))[0]
    assert fits[1] > -0.01 and fits[3] > -0.01 and fits[0] < -7 and fits[2] < -7  # both Qs fit, the empty cell not
    assert VisionLNNLite.fitting(logits, said()).abs().max() < 1e-3  # nothing named: no channel


def test_the_centre_loss_marks_the_cell_nearest_each_part():
    from lnn.training.module import centre_loss

    part = [0.6, 0.6, 0.9, 0.9, -1, -1, -1, -1]  # centred in cell 3
    right = torch.tensor([[-9.0, -9.0, -9.0, 9.0]])
    assert centre_loss(right, CELLS, torch.tensor([[part]])) < 1e-3
    assert centre_loss(-right, CELLS, torch.tensor([[part]])) > 8
    assert centre_loss(right, CELLS, torch.full((1, 1, 8), -1.0)) is None  # no parts in the frame: nothing to learn


def test_the_model_learns_to_read_descriptions_it_never_saw_whole():
    """The parse is taught on descriptions of a size, a colour, a letter; held out: combinations it never saw."""
    from lnn.training.module import parse_labels, parse_loss

    torch.manual_seed(0)
    model = VisionLNNLite(image_size=32, channels=(8, 16, 16), hidden_size=16, num_layers=1, feature_size=16,
                          instruction_dim=8, head_size=16, scorer_size=8, part_head=True, describe=True)  # fmt: skip
    letters = list("abcdefQqRr")
    described = [f"Click on a {size}{colour}{letter}" for size in ("", "large ", "small ")
                 for colour in ("", "red ", "blue ", "green ") for letter in letters]  # fmt: skip
    held_out = described[1::7]
    train = [d for d in described if d not in held_out] + ["Click on the red button", "Click OK"]
    tasks = ["click-shape" if d.startswith("Click on a ") else "click-button" for d in train]
    tokens, labels = model.tokenize(tasks, train), parse_labels(tasks, train)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss, _ = parse_loss(model.parse_description(tokens), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        _, right = parse_loss(model.parse_description(model.tokenize(["click-shape"] * len(held_out), held_out)),
                              parse_labels(["click-shape"] * len(held_out), held_out))  # fmt: skip
    assert right >= 0.9, f"held-out descriptions read right: {float(right):.2f}"


def test_the_described_channel_is_the_same_in_onnx_where_no_part_is_centred(tmp_path):
    """Cells sure to hold no part (centre logit -200) under a description barely named: onnxruntime's LogSigmoid
    gave -inf there (σ underflows), the channel -16 where PyTorch has ~0, and a trained model's exported step
    drifted from the first frame (fp32 parity failed on τ). fitting() writes log σ out."""
    import onnxruntime as ort

    class Fitting(torch.nn.Module):
        def forward(self, part_logits, parse_logits):
            return VisionLNNLite.fitting(part_logits, parse_logits)

    part_logits = torch.randn(2, sum(PART_CLASSES) + 1, 6)
    part_logits[:, -1] = torch.tensor([-200.0, -90.0, -20.0, 0.0, 20.0, 200.0])
    parse_logits = torch.randn(2, sum(PART_CLASSES) + len(PART_CLASSES))
    parse_logits[:, [sum(n + 1 for n in PART_CLASSES[: i + 1]) - 1 for i in range(len(PART_CLASSES))]] = 9.0  # ~none
    path = tmp_path / "fitting.onnx"
    torch.onnx.export(Fitting(), (part_logits, parse_logits), str(path), dynamo=True, input_names=["p", "q"])
    ours = ort.InferenceSession(str(path)).run(None, {"p": part_logits.numpy(), "q": parse_logits.numpy()})[0]
    expected = VisionLNNLite.fitting(part_logits, parse_logits)
    assert torch.isfinite(expected).all() and expected[:, 0].min() > -15  # a faint description: near 0, not -16
    torch.testing.assert_close(torch.from_numpy(ours), expected, atol=1e-4, rtol=1e-4)


def test_describe_without_the_part_head_stops_with_one_line():
    from lnn.errors import ConfigError

    try:
        VisionLNNLite(image_size=32, channels=(8, 16, 16), describe=True)
    except ConfigError as error:
        assert error.key == "describe" and "part_head=true" in error.message and "\n" not in error.message
    else:
        raise AssertionError("describe without a part head was accepted")
