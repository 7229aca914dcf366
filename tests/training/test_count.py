"""model.count_values: how many parts the description fits, as a distribution over counts, taught by the true count
(count-shape's answer) through the part head and the parse."""

import torch

from lnn.envs import PART_ATTRIBUTES
from lnn.errors import ConfigError
from lnn.models import VisionLNNLite
from lnn.training.module import PolicyModule, count_labels

COLOURS = PART_ATTRIBUTES["color"]
RGB = {"red": (255, 0, 0), "blue": (0, 0, 255)}
SLOTS = [(x, y) for y in (2, 13, 24) for x in (2, 13, 24)]  # 6 px squares' corners on a 32 px frame, never touching


def part(x0, y0, x1, y1, colour=-1, size=-1, text=-1):
    return [x0, y0, x1, y1, -1, text, colour, size]


def test_the_count_label_is_how_many_parts_fit_the_description():
    red, blue, large = COLOURS.index("red"), COLOURS.index("blue"), 1
    shown = [part(0, 0, 0.1, 0.1, red, large), part(0.2, 0, 0.3, 0.1, red, 0), part(0.4, 0, 0.5, 0.1, blue, large),
             part(0.6, 0, 0.7, 0.1, text=PART_ATTRIBUTES["text"].index("Q")), [-1.0] * 8]  # fmt: skip
    parts = torch.tensor([shown] * 6 + [[[-1.0] * 8] * 5])
    tasks = ["count-shape"] * 4 + ["click-shape", "click-color", "count-shape"]
    said = ["How many red items are there?", "How many large red items are there?", "How many items are there?",
            "How many teal items are there?", "Click on a Q", "Click on a red", "How many items are there?"]  # fmt: skip
    # teal: not this grammar; click-color: no description; the last frame has no parts: nothing to count
    assert count_labels(tasks, said, parts).tolist() == [2, 1, 4, -1, 1, -1, -1]


def test_the_count_distribution_is_sure_where_the_cells_are():
    model = VisionLNNLite(image_size=32, channels=(8, 16, 16), part_head=True, describe=True, count_values=6)
    sure = torch.full((1, 16), -16.0)
    sure[0, :3] = 0.0  # three cells certainly hold a fitting part
    q = model.count_distribution(sure).exp()
    assert q.argmax() == 3 and q[0, 3] > 0.7 and torch.isclose(q.sum(), torch.tensor(1.0))
    unsure = torch.full((1, 16), -16.0)
    unsure[0, :6] = torch.log(torch.tensor(0.5))  # six cells at even odds: the same mean, a wider spread
    q_unsure = model.count_distribution(unsure).exp()
    assert q_unsure.argmax() == 3 and q_unsure[0, 3] < q[0, 3] - 0.2


def test_count_values_without_describe_stops_with_one_line():
    try:
        VisionLNNLite(image_size=32, channels=(8, 16, 16), part_head=True, count_values=11)
    except ConfigError as error:
        assert error.key == "count_values" and "describe=true" in error.message and "\n" not in error.message
    else:
        raise AssertionError("count_values without describe was accepted")


def counting_batch(n: int, generator: torch.Generator) -> dict:
    """n one-step count-shape episodes (as collate_episodes batches them): 32 px grey frames with up to 3 red and 3 blue squares in a 3 x 3 grid of
    places, asked how many red (or blue) items there are; the parts say each square's colour."""
    images, parts, said = torch.full((n, 1, 32, 32, 3), 217, dtype=torch.uint8), torch.full((n, 1, 9, 8), -1.0), []
    for i in range(n):
        places = torch.randperm(len(SLOTS), generator=generator)[: int(torch.randint(0, 7, (1,), generator=generator))]
        for k, place in enumerate(places.tolist()):
            colour = "red" if torch.rand(1, generator=generator) < 0.5 else "blue"
            x, y = SLOTS[place]
            images[i, 0, y : y + 6, x : x + 6] = torch.tensor(RGB[colour], dtype=torch.uint8)
            parts[i, 0, k] = torch.tensor(part(x / 32, y / 32, (x + 6) / 32, (y + 6) / 32, COLOURS.index(colour)))
        said.append([f"How many {'red' if i % 2 else 'blue'} items are there?"])
    return {"images": images, "mask": torch.ones(n, 1, dtype=torch.bool), "action": torch.zeros(n, 1, dtype=torch.long),
            "key": torch.full((n, 1), -1), "task": ["count-shape"] * n, "instruction": said, "parts": parts}  # fmt: skip


def test_the_part_head_learns_to_count_from_the_count_loss_alone():
    """Trained on loss_count and the parse's loss only (no centre or part loss), held-out frames are counted right far
    above chance: the count's gradient reaches the part head, and neither the parse nor the scorers get any of it."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = VisionLNNLite(image_size=32, channels=(8, 16, 16), hidden_size=16, num_layers=1, feature_size=16,
                          instruction_dim=8, head_size=16, scorer_size=8, part_head=True, describe=True,
                          count_values=7)  # fmt: skip
    module = PolicyModule(model, optimizer=None)
    train, test = counting_batch(192, generator), counting_batch(96, generator)

    module._head_losses(module(train), train)["loss_count"][0].backward()
    assert model.part_head.weight.grad.abs().sum() > 0
    assert model.parse.weight.grad is None and model.click_scorer.cells.weight.grad is None  # taught by their own
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(400):
        optimizer.zero_grad()
        losses = module._head_losses(module(train), train)
        (losses["loss_count"][0] + losses["loss_parse"][0]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        right = float(module._head_losses(module(test), test)["count_acc"][0])
    truth = count_labels(test["task"], [i[0] for i in test["instruction"]], test["parts"][:, 0])
    chance = max(float((truth == c).float().mean()) for c in range(7))  # always saying the commonest count
    assert right >= 0.8 and right > chance + 0.3, f"held-out counts right: {right:.2f} (the commonest count: {chance:.2f})"
