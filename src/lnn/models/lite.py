"""The Lite policy: a tiny CNN, an instruction encoder, a liquid stack (or another core: `core`), and
action + click heads.

Shape at defaults follows the seed's VisionLNNLite (CNN 3→32→64→128, stride 2; 4 liquid layers of
width 256 with one τ per sample; heads 128→64). Two changes, both for clicking:

* the seed pooled the CNN map to one vector, which throws away *where* things are; here the map keeps
  its positions (coordinates appended as two channels) and is read by attention: the instruction
  picks what to pool, and the click head scores every map cell for the liquid state (`CellScorer`),
  so `coords` is a soft-argmax over the screen (in [0, 1] by construction) and `click_logits` can
  be trained on the probability of clicking inside the target box;
* the instruction reaches the model as the bytes of its words (`text.py`), not only a task id, so the
  target can depend on what the instruction says — any word, case kept, seen in training or not.

With `match_text`, the instruction's named text (a quoted span, a sender's name) is also drawn as the
page draws it and matched over the screen by its look (`glyphs.py`): one more map channel, "the named
text is here", which the attention pool and the click scorer read — a word never seen in training is
found as well as a familiar one. The strip comes in beside the tokens (`text_inputs`).

Frames may be non-square (`image_size` [height, width], e.g. MiniWoB's 210 × 160 task area unstretched),
and with `click_offset` the click point is pixel-precise: the chosen cell's centre plus an offset the
scorer predicts for that cell, not the map's mean.

Three optional heads act beyond clicks (all off by default: older checkpoints and configs are unchanged):
`drag_head` — where a drag lets the button go, a second click map over the same cells (`release`; the
press point is the click point); `key_head` — which of lnn.envs.KEYS a key action presses; `text_head` —
what a type action types (`TextHead`: characters, or bytes copied from the instruction).
And `part_head` — what the part of the screen in each map cell is (auxiliary labels the oracle reads from the
page: a shape's type, letter, colour, size), from the CNN's features alone: it only teaches, unless `describe`
reads the instruction's description of a shape against it (a channel "a part that fits is centred here").

`forward` runs whole episodes (B, T, ...); `step` is one frame with the state in and out — the call
the agent and the ONNX export use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from lnn.errors import ConfigError
from lnn.frames import frame_size, plain_size
from lnn.liquid import CELLS, LiquidStack
from lnn.liquid.cell import as_step_dt
from lnn.models.glyphs import BODY, TextMatch, font_file, ink, strips
from lnn.models.policy import Described, records_spec
from lnn.models.text import (MAX_WORDS, TEXT_SLOTS, WORD_BYTES, InstructionEncoder, TextHead, instruction_text,
                             text_bytes, tokenize_batch)

CORES = (*CELLS, "feedforward")
# the action classes and keys the optional heads serve, as lnn.envs numbers them (models do not import envs;
# tests/models/test_lite.py checks these against lnn.envs.ACTIONS and KEYS)
DRAG_ACTION = 6  # ACTIONS.index("drag")
NUM_KEYS = 12  # len(KEYS)
# the action classes whose point datasets record (click, drag: the press): the point a feedback model remembers
POINTING = (0, DRAG_ACTION)
PART_CLASSES = (3, 65, 7, 2)  # values per attribute of lnn.envs.PART_ATTRIBUTES: type, text, color, size
PARSE_PLACES = 8  # describe: a word's place from the instruction's end, one-hot (the last 7 words; then "further")


def unflatten(x: Tensor, real: Tensor | None, batch: int, steps: int) -> Tensor:
    """(N, ...) values of the real steps -> (B, T, ...), zeros at padded steps."""
    if real is not None:
        x = x.new_zeros(batch * steps, *x.shape[1:]).index_copy(0, real, x)
    return x.view(batch, steps, *x.shape[1:])


class CellScorer(nn.Module):
    """Scores every cell of a feature map for a query: a per-cell MLP whose hidden units the query
    scales and shifts (FiLM). Nonlinear, so a query can ask for a conjunction — "red" and "square",
    or "at the remembered place" — that no single feature channel holds.

    With `direct_size`, a second query (the instruction's words) also scores each cell on its own: a dot product of
    it with the cell's features, added to the first output. "Which feature matters for this task" (the star icon, the
    fitting part, a grid place) is then one linear read of the words, not something the FiLM must find among the
    state's and the look's inputs."""

    def __init__(self, map_channels: int, query_size: int, hidden: int = 64, outputs: int = 1, direct_size: int = 0):
        super().__init__()
        self.cells = nn.Conv1d(map_channels, hidden, 1)
        self.film = nn.Linear(query_size, 2 * hidden)
        self.score = nn.Conv1d(hidden, outputs, 1)
        self.direct_query = nn.Linear(direct_size, hidden) if direct_size else None
        self.direct_cells = nn.Conv1d(map_channels, hidden, 1) if direct_size else None

    def forward(self, feats: Tensor, query: Tensor, direct: Tensor | None = None) -> Tensor:
        """feats (N, C, cells), query (N, Q) (direct (N, D) with direct_size) -> scores (N, cells), or
        (N, outputs, cells) for outputs > 1."""
        gamma, beta = self.film(query).unsqueeze(-1).chunk(2, 1)
        scores = self.score(torch.relu(self.cells(feats) * (1 + gamma) + beta))
        if self.direct_query is not None:
            keys = self.direct_cells(feats)  # (N, hidden, cells)
            said = torch.bmm(self.direct_query(direct).unsqueeze(1), keys) / keys.shape[1] ** 0.5  # (N, 1, cells)
            scores = torch.cat([scores[:, :1] + said, scores[:, 1:]], 1)
        return scores.squeeze(1) if scores.shape[1] == 1 else scores


def position_features(xy: Tensor, frequencies: int) -> Tensor:
    """(2, cells) positions in (0, 1) -> (2 + 4·frequencies, cells): x, y and sin/cos(π·k·x), ... .

    With them "the cell at the place I remember" is a dot product, which the scorers learn quickly."""
    k = torch.arange(1, frequencies + 1, dtype=xy.dtype).view(-1, 1, 1) * torch.pi
    waves = torch.cat([torch.sin(k * xy), torch.cos(k * xy)]).flatten(0, 1)
    return torch.cat([xy, waves])


def text_styles(styles) -> tuple[dict, ...]:
    """model.match_styles ([{font_px, bold}, ...] or null: body text) -> plain dicts, checked."""
    if styles is None:
        return (dict(BODY),)
    good = isinstance(styles, Sequence) and not isinstance(styles, str) and len(styles) >= 1 and all(
        isinstance(s, Mapping) and set(s) == {"font_px", "bold"} and isinstance(s["bold"], bool)
        and isinstance(s["font_px"], (int, float)) and 4 <= s["font_px"] <= 40 for s in styles)  # fmt: skip
    if not good:
        raise ConfigError("match_styles", f"must be a list of {{font_px: 4..40, bold: true|false}} (MiniWoB: "
                                          f"[{{font_px: 10, bold: false}}, {{font_px: 11, bold: true}}]), got {styles!r}")  # fmt: skip
    return tuple({"font_px": float(s["font_px"]), "bold": bool(s["bold"])} for s in styles)


def outside_box(box, frame: tuple[int, int], scale: tuple[float, float], stride: tuple[int, int] = (2, 2)) -> Tensor:
    """[top, left, bottom, right] in page px -> (1, 1, h, w) at TextMatch's (rows, columns) stride over a frame of
    (height, width) shown at scale (x, y) of the page: 1 where a place's centre lies outside the box, 0 inside."""
    if not (isinstance(box, Sequence) and not isinstance(box, str) and len(box) == 4  # a list, or Hydra's ListConfig
            and all(isinstance(v, (int, float)) for v in box) and box[0] < box[2] and box[1] < box[3]):  # fmt: skip
        raise ConfigError("instruction_box", f"must be [top, left, bottom, right] in page px with top < bottom and "
                                             f"left < right (MiniWoB's query box: [0, 0, 50, 160]), got {box!r}")  # fmt: skip
    top, left, bottom, right = box
    places = [(size - 1) // 2 + 1 for size in frame]  # TextMatch's first convolution: stride 2
    places = [(size - 1) // 2 + 1 if s == 4 else size for size, s in zip(places, stride)]  # and its second
    ys = torch.arange(places[0]) * stride[0] / scale[1]  # a place's centre, in page px
    xs = torch.arange(places[1]) * stride[1] / scale[0]
    inside = ((ys >= top) & (ys < bottom)).view(-1, 1) & ((xs >= left) & (xs < right)).view(1, -1)
    return (~inside).float().view(1, 1, *inside.shape)


class FeedForwardStack(nn.Module):
    """The ablation: residual MLP blocks in place of the liquid layers; no state, no τ.

    Each block has two (H × H) matmuls, the same weight count as a liquid layer's W_in and W_rec.
    The elapsed time dt is an input feature (`time_weight`), as for the other cores without time.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 4, **_ignored):
        super().__init__()
        self.inp = nn.Linear(input_size, hidden_size) if input_size != hidden_size else nn.Identity()
        self.time_weight = nn.Parameter(torch.zeros(hidden_size))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, hidden_size))
            for _ in range(num_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in range(num_layers))

    def initial_state(self, batch: int, ref: Tensor) -> list[Tensor]:
        return []

    def forward(self, x: Tensor, state=None, dt=None):
        x = self.inp(x) + as_step_dt(dt, x.shape[0], x.shape[1], x) * self.time_weight
        for block, norm in zip(self.blocks, self.norms):
            x = norm(x + block(x))
        return x, [], []


def core_parameters(core: str, width: int, input_size: int, head_size: int, num_layers: int, **cell_kwargs) -> int:
    """Parameters of the parts of Lite whose size depends on the core's width: input projection, core, head.

    Counted on the meta device: no memory, no random numbers drawn."""
    stack = LiquidStack if core != "feedforward" else FeedForwardStack
    with torch.device("meta"):
        parts = nn.ModuleList([nn.Linear(input_size, width), stack(width, width, num_layers, core=core, **cell_kwargs),
                               nn.Linear(width, head_size)])  # fmt: skip
    return sum(p.numel() for p in parts.parameters())


def matching_width(core: str, budget: int, **shell) -> int:
    """The width at which `core`'s width-dependent parameters come nearest to `budget` (they grow with width)."""
    low, high = 1, 8
    while core_parameters(core, high, **shell) < budget:
        low, high = high, 2 * high
    while high - low > 1:  # smallest width at or above the budget lies in (low, high]
        mid = (low + high) // 2
        low, high = (mid, high) if core_parameters(core, mid, **shell) < budget else (low, mid)
    return min((low, high), key=lambda w: abs(core_parameters(core, w, **shell) - budget))


def core_width_for(core: str, core_width: int | None, hidden_size: int, shell: dict) -> int:
    """core_width when given; else hidden_size for the liquid core, and the budget's width for another."""
    if core_width is not None:
        if not isinstance(core_width, int) or core_width < 1:
            raise ConfigError("core_width", f"must be a positive integer or null (match the budget), got {core_width!r}")
        return core_width
    if core == "liquid":
        return hidden_size
    return matching_width(core, core_parameters("liquid", hidden_size, **shell), **shell)


# What the model is told besides the screenshot: the task name and instruction as text (hashed words), or
# nothing ("pixels": Pix2Act's setting; MiniWoB draws the instruction in the task area's query box).
INSTRUCTION_INPUTS = ("text", "pixels")


class VisionLNNLite(Described, nn.Module):
    """`core` picks what carries the state between frames (CORES): the same shell around it (vision,
    instruction, heads), and the same parameter budget: `hidden_size` is the liquid core's width, and
    another core's width is the one at which the whole model has as many parameters as with the liquid
    core at `hidden_size`. The chosen width is printed and stored in the model's spec (`core_width`), so
    a checkpoint rebuilds the same model; an explicit `core_width` wins (for any core)."""

    family = "lite"

    @records_spec
    def __init__(
        self,
        num_actions: int = 6,
        image_size: int | list[int] = 224,
        channels: tuple[int, ...] = (32, 64, 128),
        feature_size: int = 128,
        instruction_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 4,
        head_size: int = 128,
        scorer_size: int = 64,
        position_frequencies: int = 2,
        look_input: bool = False,
        look_to_heads: bool = False,
        feedback: bool = False,
        hold_input: bool = False,
        hold_flag: bool = False,
        map_memory: int = 0,
        click_offset: bool = False,
        match_text: bool = False,
        page_size: int | list[int] | None = None,
        instruction_box: list[int] | None = None,
        match_styles: list[dict] | None = None,
        match_lines: bool = False,
        match_stride: int | list[int] = 2,
        match_channels: int = 8,
        core: str = "liquid",
        core_width: int | None = None,
        tau_min: float = 1.0,
        tau_max: float = 10.0,
        solver: str = "rk4",
        unfolds: int = 1,
        tau_per: str = "sample",
        rtol: float = 1e-3,
        atol: float = 1e-4,
        bptt_steps: int | None = None,
        impl: str = "auto",
        instruction: str = "text",
        instruction_buckets: int | None = None,
        drag_head: bool = False,
        key_head: bool = False,
        text_head: bool = False,
        text_slots: int = TEXT_SLOTS,
        part_head: bool = False,
        describe: bool = False,
        count_values: int = 0,
        word_scores: bool = False,
    ):
        super().__init__()
        if instruction not in INSTRUCTION_INPUTS:
            raise ConfigError("instruction", f"must be one of {', '.join(INSTRUCTION_INPUTS)}, got {instruction!r}")
        self.instruction = instruction
        min_size = 4 * 2 ** len(channels)  # a map of at least 4 × 4 cells to click in
        height, width = frame_size(image_size)
        if min(height, width) < min_size:
            raise ConfigError(
                "image_size", f"{image_size} is too small for a CNN of {len(channels)} stride-2 layers; use >= {min_size}"
            )
        if core not in CORES:
            raise ConfigError("core", f"must be one of {', '.join(CORES)}, got {core!r}")
        if core == "ltc" and solver not in ("semi_implicit", "dopri5"):
            raise ConfigError("solver", f"core=ltc is stiff (rates grow with its width), {solver} diverges at dt = 1; "
                                        "use solver=semi_implicit (ncps's step; e.g. model.unfolds=6)")  # fmt: skip
        if instruction_buckets is not None:  # only a spec written before the byte encoder has it
            raise ConfigError("instruction_buckets", "hashed-word instructions were replaced by the bytes of each word "
                                                     "(no collisions, case kept): a model with hashed words cannot be "
                                                     "loaded by this version; retrain it (and drop the key)")  # fmt: skip
        sizes = {"num_actions": num_actions, "feature_size": feature_size, "instruction_dim": instruction_dim,
                 "hidden_size": hidden_size, "num_layers": num_layers, "head_size": head_size,
                 "scorer_size": scorer_size, **{f"channels[{i}]": c for i, c in enumerate(channels)}}  # fmt: skip
        for key, value in sizes.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(key, f"must be a positive integer, got {value!r}")
        flags = {"match_text": match_text, "match_lines": match_lines, "drag_head": drag_head, "key_head": key_head,
                 "text_head": text_head, "look_input": look_input, "look_to_heads": look_to_heads, "feedback": feedback,
                 "hold_input": hold_input, "hold_flag": hold_flag, "part_head": part_head,
                 "describe": describe, "word_scores": word_scores}  # fmt: skip
        for key, value in flags.items():
            if not isinstance(value, bool):
                raise ConfigError(key, f"must be true or false, got {value!r}")
        if drag_head and num_actions <= DRAG_ACTION:
            raise ConfigError("num_actions", f"is {num_actions}, but drag_head needs the drag action: set "
                                             f"model.num_actions={DRAG_ACTION + 1}")  # fmt: skip
        if text_head and not (isinstance(text_slots, int) and text_slots >= 1):
            raise ConfigError("text_slots", f"must be a positive integer, got {text_slots!r}")
        self.num_actions, self.core_type = num_actions, core
        self.image_size = plain_size(image_size)  # as given: N or [height, width]
        self.max_tokens = MAX_WORDS * WORD_BYTES  # the width of `tokens`: word slots of byte ids

        layers, c_in = [], 3
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            c_in = c_out
        self.cnn = nn.Sequential(*layers)
        for _ in channels:
            height, width = (height - 1) // 2 + 1, (width - 1) // 2 + 1
        self.map_hw = (height, width)  # the click map's rows and columns
        self.map_stride = 2 ** len(channels)  # screen pixels per map cell
        ys, xs = torch.meshgrid((torch.arange(height) + 0.5) / height, (torch.arange(width) + 0.5) / width, indexing="ij")
        self.register_buffer("cell_xy", torch.stack([xs, ys]).flatten(1), persistent=False)  # (2, cells), in (0, 1)
        self.register_buffer("cell_wh", torch.tensor([1 / width, 1 / height]), persistent=False)  # a cell's extent
        self.register_buffer("cell_position", position_features(self.cell_xy, position_frequencies), persistent=False)
        # match_text: the named text's strip, drawn as the frame shows the page: scaled (x, y) by the frame's size
        # over the page's (page_size; null: the frame is the page, scale 1)
        self.text_match = TextMatch(match_channels, match_stride) if match_text else None
        if match_text:
            font_file()  # the strip's font: a missing one stops the run here
        page_h, page_w = frame_size(page_size, "page_size") if page_size is not None else frame_size(image_size)
        self.strip_scale = (frame_size(image_size)[1] / page_w, frame_size(image_size)[0] / page_h)
        # instruction_box: where the page shows the instruction itself (MiniWoB's query box); the named text always
        # matches its own quote there, so the match is zeroed in it (MiniWoB click-link: the match's best cell was the
        # link's on 25% of frames, 58% with the box left out)
        shaping = {"instruction_box": instruction_box is not None, "match_styles": match_styles is not None,
                   "match_lines": match_lines, "match_stride": match_stride != 2,
                   "match_channels": match_channels != 8}  # fmt: skip
        for key, used in shaping.items():
            if used and not match_text:
                raise ConfigError(key, "shapes model.match_text's map, which is off; set model.match_text=true")
        if instruction_box is not None:
            self.register_buffer("match_keep", outside_box(instruction_box, frame_size(image_size), self.strip_scale,
                                                           self.text_match.stride), persistent=False)  # fmt: skip
            self.match_top = int(self.match_keep[0, 0].amax(1).eq(0).cumprod(0).sum())  # rows it covers whole
        else:
            self.match_keep, self.match_top = None, 0
        # match_styles: the named text drawn in each style the page uses, the best match kept; match_lines: the
        # match's best in each cell's row and column too, so a cell knows it is in the named text's row (a list
        # row's delete icon, a label's box). Together: email-inbox-delete 28 -> 100% (experiments/miniwob/README.md)
        self.match_styles = text_styles(match_styles)
        self.match_lines = match_lines
        if describe and not part_head:
            raise ConfigError("describe", "reads what the part head sees, which is off; set model.part_head=true too")
        # describe: the instruction's description of a shape ("a large red item", "Qs") read into attribute values
        # (`parse`), and per cell how likely the part there fits it, from the part head (one more channel the scorers
        # read), and how many parts fit (one more core input: count-shape's answer)
        self.describe = describe
        # count_values: instead of that sum, the count's distribution over 0 .. count_values - 1 (a Gaussian of the
        # cells' Poisson-binomial mean and variance): a 1-of-V code the core and the pointers' direct path read ("the
        # button showing 3"), not a scalar they must decode. The sum (its mean) is taught by the true count
        # (training's loss_count, a Huber loss: the distribution's own log-likelihood gave steps 20x larger at the
        # start, when every cell is half sure, and its run counted worse and saw the parts worse than without it)
        if not (isinstance(count_values, int) and count_values >= 0):
            raise ConfigError("count_values", f"must be an integer >= 0 (0: the sum as one input), got {count_values!r}")
        if count_values and not describe:
            raise ConfigError("count_values", "counts the parts the description fits, but describe is off; set "
                                              "model.describe=true too, or count_values=0")  # fmt: skip
        self.count_values = count_values
        self.register_buffer("count_range", torch.arange(count_values, dtype=torch.float32), persistent=False)
        count_size = count_values or int(describe)
        c_map = c_in + int(match_text) * (1 + 2 * match_lines) + describe + len(self.cell_position)

        self.instruction_encoder = InstructionEncoder(instruction_dim)
        self.pool_scorer = CellScorer(c_map, instruction_dim, scorer_size)  # what the instruction looks at
        seen_size = c_map
        self.seen_norm = nn.BatchNorm1d(seen_size)  # frames share most of what is seen: keep what differs
        self.image_proj = nn.Linear(seen_size, feature_size)
        cell_kwargs = dict(tau_min=tau_min, tau_max=tau_max, solver=solver, unfolds=unfolds, tau_per=tau_per, rtol=rtol,
                           atol=atol, bptt_steps=bptt_steps, impl=impl)  # fmt: skip
        # look_input: where the model looked (the attention-weighted cell position) also enters the core
        # on its own, not only mixed with appearance by image_proj: the place to remember, in plain sight
        self.looked_size = len(self.cell_position) if look_input else 0
        # feedback: the previous step's action (which kind, and where it pointed) enters the core, and the state
        # carries it between steps (the last state tensor: [one-hot kind, x, y, pointed]). Recall frames that
        # look alike (click-sequence) then differ by what was just done; training feeds the recorded actions
        self.feedback = feedback
        self.feedback_size = num_actions + len(self.cell_position) if feedback else 0
        core_input = self.core_input = feature_size + instruction_dim + self.looked_size + self.feedback_size + count_size
        if hold_flag and not hold_input:
            raise ConfigError("hold_flag", "marks the held sub-step of model.hold_input, which is off; set "
                                           "model.hold_input=true too, or hold_flag=false")  # fmt: skip
        # hold_flag: one more input, 1 on the held sub-step and 0 on the read, so the core can tell the two apart
        # (with equal inputs only its state can): a neuron may then count reads (frames) and ignore the holds' time
        self.hold_flag = hold_flag
        shell = dict(input_size=core_input + hold_flag, head_size=head_size, num_layers=num_layers, **cell_kwargs)
        width = self.width = core_width_for(core, core_width, hidden_size, shell)
        self.input_proj = nn.Linear(core_input + hold_flag, width)
        # hold_input: over a frame's dt (the time since the previous frame came) the screen showed the previous
        # frame, so the core integrates that time with the previous frame's input held, then reads the new frame
        # in one more unit step. Without it the new frame is integrated over the time before it came: how long
        # a light stayed on is then a product of dt and what the state remembers, not a sum the ODE forms itself
        self.hold_input = hold_input
        stack = LiquidStack if core != "feedforward" else FeedForwardStack
        self.core = stack(width, width, num_layers, core=core, **cell_kwargs)
        self.head = nn.Sequential(nn.Linear(width, head_size), nn.ReLU())
        self.action_head = nn.Sequential(nn.Linear(head_size, 64), nn.ReLU(), nn.Linear(64, num_actions))
        # Where to click, given the state and (directly, not only through the state) the instruction.
        # The state is batch-normalised first: what all episodes share otherwise dominates it, every
        # query looks alike, and training sits on a plateau of "spread over all candidates".
        self.state_norm = nn.BatchNorm1d(head_size)
        # click_offset: two more outputs per cell, where in (and around) the cell to click
        self.click_offset = click_offset
        # map_memory: K traces over the map's cells, each a leaky integrator (its own learned τ) of where the model
        # looked, written through a gate the frame and instruction open: "the square that was lit" stays a place on
        # the map that the pointers read beside the features, not a code the core must learn to hold and decode
        if not (isinstance(map_memory, int) and map_memory >= 0):
            raise ConfigError("map_memory", f"must be an integer >= 0 (traces over the map; 0: none), got {map_memory!r}")
        self.map_memory = map_memory
        if map_memory:
            taus = torch.logspace(0, 2, map_memory) if map_memory > 1 else torch.tensor([10.0])  # 1 .. 100 frames
            self.trace_log_tau = nn.Parameter(taus.log())
            self.trace_gate = nn.Linear(core_input, map_memory)
        c_point = c_map + map_memory  # what the pointers read per cell: features (+ traces)
        # look_to_heads: what the look sees this frame also goes to the heads directly, not only through the core.
        # The answer of count-sides / identify-shape is in it (a linear probe reads it on 90% of held-out frames,
        # experiments/miniwob/look_probe.py) while the 21-task policy, reading it only through the core, clicked one
        # button on every page
        self.look_to_heads = look_to_heads
        query_size = head_size + instruction_dim + feature_size * look_to_heads  # the heads' query
        # word_scores: the instruction's words also score each cell directly (CellScorer's direct_size), beside the FiLM
        # they share with the state and the look. A seed whose FiLM never learned to read the words lost whole tasks
        # that choose by them (email-inbox-important: the click did not move when the instruction was swapped)
        self.word_scores = word_scores
        pointer = dict(map_channels=c_point, query_size=query_size, hidden=scorer_size, outputs=3 if click_offset else 1,
                       direct_size=instruction_dim * word_scores + count_values)  # fmt: skip
        self.click_scorer = CellScorer(**pointer)
        # the optional heads: where a drag is released (a second map, placed as the click is), which key, what text
        self.release_scorer = CellScorer(**pointer) if drag_head else None
        # the key, from the state and (directly, as the click) the instruction: "press Tab" names it
        self.key_head = nn.Sequential(nn.Linear(query_size, 64), nn.ReLU(), nn.Linear(64, NUM_KEYS)) \
            if key_head else None  # fmt: skip
        self.text_head = TextHead(query_size, self.instruction_encoder.order.out_channels, text_slots) \
            if text_head else None  # fmt: skip
        # part_head: a training signal (which describe also reads). Each map cell's CNN features say, linearly, what the
        # part centred there is (the oracle's `parts`: click-shape's letters, digits and shapes, their colours and
        # sizes), so the scorers can ask for "a large red item" of features that hold it (experiments/miniwob)
        # (describe: one more output, whether a part is centred in the cell at all)
        self.part_head = nn.Conv1d(c_in, sum(PART_CLASSES) + describe, 1) if part_head else None
        # describe: each word (in its context, and its place from the end: the description ends the instruction, the
        # article "a" comes before it) scores each attribute's values; per attribute the words' soft best (logsumexp:
        # a hard max never reaches the right word) against "names none", a learned score. Taught by the values
        # lnn.envs.miniwob.described_parts reads from MiniWoB's grammar
        self.parse = nn.Linear(self.instruction_encoder.order.out_channels + PARSE_PLACES, sum(PART_CLASSES)) \
            if describe else None  # fmt: skip
        self.parse_none = nn.Parameter(torch.zeros(len(PART_CLASSES))) if describe else None

        if core != "liquid" and core_width is None:
            total = sum(p.numel() for p in self.parameters())
            liquid = total - core_parameters(core, width, **shell) + core_parameters("liquid", hidden_size, **shell)
            print(f"core={core}: width {width}, {total / 1e6:.2f}M params ({100 * (total / liquid - 1):+.1f}% vs liquid)")
        self.resolved_kwargs = {"core_width": width if core != "liquid" else core_width}

    def liquid_cells(self) -> list:
        """The cells with a bounded τ (the liquid core's): what the τ plots and the export's τ outputs read."""
        return [layer.cell for layer in self.core.layers] if self.core_type == "liquid" else []

    def solver_cells(self) -> list:
        """The cells an ODE solver integrates: the liquid core's or the LTC core's."""
        return [layer.cell for layer in self.core.layers] if self.core_type in ("liquid", "ltc") else []

    # --- pieces ---------------------------------------------------------------------------------
    def tokenize(self, tasks: list[str], instructions: list[str]) -> Tensor:
        """(N,) task names and instructions -> (N, L) byte ids of the words; an empty instruction is all padding,
        and so is every instruction with `instruction="pixels"` (the model reads it from the screenshot)."""
        if self.instruction == "pixels":
            return torch.zeros(len(tasks), self.max_tokens, dtype=torch.long)
        texts = [instruction_text(t, i) if i else "" for t, i in zip(tasks, instructions)]
        return tokenize_batch(texts)

    def text_inputs(self, tasks: list[str], instructions: list[str]) -> dict[str, Tensor]:
        """What the model is told of each instruction, by input name (forward's and step's keywords, the ONNX
        step's inputs): `tokens`, and with match_text the `strip` (N, S, *glyphs.STRIP) (S: match_styles) of its named text —
        blank with `instruction="pixels"`, where the match channel is zero."""
        inputs = {"tokens": self.tokenize(tasks, instructions)}
        if self.text_match is not None:
            named = instructions if self.instruction == "text" else [""] * len(instructions)
            inputs["strip"] = strips(named, self.match_styles, scale=self.strip_scale)
        return inputs

    def encode_instruction(self, tokens: Tensor) -> Tensor:
        """(N, L) byte ids of the words -> (N, D). Training encodes each distinct instruction once: a batch of
        episodes repeats a few instructions over all its frames (the same result, a fraction of the work)."""
        return self.per_instruction(self.instruction_encoder, tokens)

    def per_instruction(self, read, tokens: Tensor) -> Tensor:
        """read(tokens) computed once per distinct instruction while training (the same result, less work)."""
        if not self.training or tokens.shape[0] < 2:
            return read(tokens)
        distinct, where = torch.unique(tokens, dim=0, return_inverse=True)
        return read(distinct)[where]

    def encode_frames(self, images: Tensor, strip: Tensor | None = None) -> Tensor:
        """(N, 3, H, W) in [0, 1] (and with match_text the strips (N, S, *STRIP)) -> (N, C (+ 1 or 3) + P,
        cells): CNN features (and where the named text matches, with match_lines its row's and column's best) with
        each cell's position (last: `looked` reads it)."""
        parts = [self.cnn((images - 0.5) * 4).flatten(2)]
        if self.text_match is not None:
            keep = None if self.match_keep is None else self.match_keep.to(images.dtype)
            match = self.text_match(ink(images), strip.to(images.dtype), self.map_stride, keep, self.match_top)
            parts.append(match.flatten(2))
            if self.match_lines:
                parts += [match.amax(3, keepdim=True).expand_as(match).flatten(2),
                          match.amax(2, keepdim=True).expand_as(match).flatten(2)]  # fmt: skip
        parts.append(self.cell_position.to(images.dtype).expand(images.shape[0], -1, -1))
        return torch.cat(parts, 1)

    # --- the policy -----------------------------------------------------------------------------
    def forward(self, images: Tensor, tokens: Tensor, state: list[Tensor] | None = None, dt=None,
                mask: Tensor | None = None, strip: Tensor | None = None, previous: Tensor | None = None,
                parts: bool = False) -> dict:  # fmt: skip
        """images (B, T, 3, H, W) in [0, 1], tokens (B, T, L) (and with match_text strip (B, T, S, *STRIP):
        `text_inputs` gives both) -> outputs per step (B, T, ...).

        `mask` (B, T) marks real steps of padded episodes: frames are only encoded where it is true
        (padding costs nothing in the CNN); every output per step (logits, coords, maps, τ) is zero at
        padded steps, as LFM2-Liquid's are.
        With feedback, `previous` (B, T, A + 3) is each step's previous action (`previous_actions`: training
        passes the recorded ones); without it, one step at a time, the state's last tensor holds it.
        `parts`: with part_head, also `part_logits` (N, sum(PART_CLASSES), cells) (training asks; an agent's step
        does not, and skips the work).
        """
        batch, steps = images.shape[:2]
        state, held, trace, last = self.split_state(state, batch, images)
        if self.feedback and previous is None:
            if steps != 1:
                raise ValueError("a feedback model needs `previous` (the previous actions) for more than one step")
            previous = last.unsqueeze(1)
        if self.text_match is not None and strip is None:
            raise ValueError("a match_text model needs the strip of the named text: pass model.text_inputs(...)")
        frames, tokens = images.flatten(0, 1), tokens.flatten(0, 1)
        strip = strip.flatten(0, 1) if strip is not None else None
        real = mask.flatten().nonzero().squeeze(1) if mask is not None else None
        if real is not None:
            frames, tokens = frames[real], tokens[real]
            strip = strip[real] if strip is not None else None
        feats = self.encode_frames(frames, strip)  # (N, C+P, cells), N = real frames
        words = self.encode_instruction(tokens)  # (N, D)
        asked = (parts or self.describe) and self.part_head is not None
        seen_parts = self.part_head(feats[:, : self.part_head.in_channels]) if asked else None
        count_logits = None
        if self.describe:
            parse_logits = self.per_instruction(self.parse_description, tokens)
            # (N, cells); training's count loss teaches the part head through it (not the parse: it has exact labels,
            # and a run that let the count teach it read 86% of the descriptions right, not 95%)
            fits_taught = self.fitting(seen_parts, parse_logits.detach(), detach=not (parts and self.count_values))
            fits = fits_taught.detach()
            if self.count_values:
                count_logits = self.count_distribution(fits)
            where = len(self.cell_position)
            # / 4: the channel spans [-4, 0], near the other channels' scale (it is clamped at -16)
            feats = torch.cat([feats[:, :-where], fits.unsqueeze(1) / 4, feats[:, -where:]], 1)

        pool_logits = self.pool_scorer(feats, words)
        pool = torch.softmax(pool_logits, -1)
        seen = torch.einsum("ncp,np->nc", feats, pool)  # what the model looks at, and where it is
        looked = seen[:, seen.shape[1] - self.looked_size :]  # empty unless look_input
        sees = torch.relu(self.image_proj(self.seen_norm(seen)))
        inputs = [sees, words, looked]
        counts = count_logits.detach().exp() if count_logits is not None else None
        if counts is not None:  # how many parts fit the description
            inputs.append(counts)
        elif self.describe:  # ... as a sum of probabilities
            inputs.append(fits.exp().sum(-1, keepdim=True) / 4)
        if self.feedback:
            previous = previous.flatten(0, 1)
            inputs.append(self.feedback_features(previous if real is None else previous[real]))
        x = torch.cat(inputs, -1)

        x = unflatten(x, real, batch, steps)
        point_feats = feats
        if self.map_memory:
            traces, trace = self.remember_places(unflatten(pool, real, batch, steps), x, trace, dt)
            traces = traces.flatten(0, 1)
            point_feats = torch.cat([feats, traces if real is None else traces[real]], 1)
        if self.hold_input:
            out, state, taus = self.core_with_held_input(x, held, state, dt, mask)
            state = [*state, x[:, -1]]
        else:
            out, state, taus = self.core(self.input_proj(x), state, dt)
        z = self.head(out).flatten(0, 1)
        z_real = z if real is None else z[real]
        query = torch.cat([self.state_norm(z_real), words] + [sees] * self.look_to_heads, -1)
        said = [words] * self.word_scores + ([counts] if counts is not None else [])
        said = torch.cat(said, -1) if said else None
        click_logits, coords, click_points = self.point(self.click_scorer(point_feats, query, said))
        heads = {"action_logits": self.action_head(z_real), "coords": coords, "click_logits": click_logits,
                 "look_logits": pool_logits}  # fmt: skip
        if click_points is not None:
            heads["click_points"] = click_points
        if self.release_scorer is not None:
            heads["release_logits"], heads["release"], release_points = self.point(
                self.release_scorer(point_feats, query, said))
            if release_points is not None:
                heads["release_points"] = release_points
        if self.key_head is not None:
            heads["key_logits"] = self.key_head(query)
        if seen_parts is not None and parts:
            heads["part_logits"] = seen_parts
        if self.describe:
            heads["parse_logits"] = parse_logits
        if count_logits is not None and parts:
            heads["count_logits"], heads["count"] = count_logits, fits_taught.exp().sum(-1)
        if self.text_head is not None:
            contexts, _ = self.instruction_encoder.contexts(tokens)
            heads["text_logits"] = self.text_head(query, tokens, contexts)
            heads["text_bytes"] = text_bytes(heads["text_logits"], tokens)
        if mask is not None:
            taus = [tau * mask.unsqueeze(-1).to(tau.dtype) for tau in taus]
        if self.map_memory:
            state = [*state, trace]
        if self.feedback:  # what this step did, for the next: its own action, as the policy decodes it
            state = [*state, self.action_record(unflatten(heads["action_logits"], real, batch, steps)[:, -1],
                                                unflatten(coords, real, batch, steps)[:, -1])]  # fmt: skip
        return {**{name: unflatten(x, real, batch, steps) for name, x in heads.items()}, "tau_values": taus, "state": state}

    def parse_description(self, tokens: Tensor) -> Tensor:
        """(N, L) ids -> (N, sum(PART_CLASSES) + attributes) per attribute its values' logits, then "names none"."""
        contexts, real = self.instruction_encoder.contexts(tokens)
        from_end = (real.flip(1).cumsum(1).flip(1) - 1).clamp(0, PARSE_PLACES - 1)  # (N, W, 1): real words after it
        places = (from_end == torch.arange(PARSE_PLACES, device=tokens.device)).to(contexts.dtype)
        scores = self.parse(torch.cat([contexts, places], -1)).masked_fill(real == 0, -1e4)
        scores = scores.logsumexp(1)  # (N, sum(PART_CLASSES)): the words' soft best
        chunks = [torch.cat([values, none.expand_as(values[:, :1])], -1)
                  for values, none in zip(scores.split(PART_CLASSES, -1), self.parse_none.unsqueeze(1))]  # fmt: skip
        return torch.cat(chunks, -1)

    @staticmethod
    def fitting(part_logits: Tensor, parse_logits: Tensor, detach: bool = True) -> Tensor:
        """(N, sum(PART_CLASSES) + 1, cells) what the part head sees, (N, ...) what the description names -> (N, cells)
        the log-probability that a part is centred in the cell and has every value named, zero where nothing is
        named. Both are taught by their own labels, so neither learns from the scorers through this (detached; the
        count loss, with detach=False)."""
        if detach:
            part_logits, parse_logits = part_logits.detach(), parse_logits.detach()
        centred = part_logits[:, -1]  # log σ, written out: the exported LogSigmoid underflows to -inf (σ -> 0)
        fits = centred.clamp(max=0) - torch.log(1 + torch.exp(-centred.abs()))
        named_any = torch.zeros_like(fits[:, :1])
        for seen, said in zip(part_logits[:, :-1].split(PART_CLASSES, 1),
                              parse_logits.split([n + 1 for n in PART_CLASSES], -1)):  # fmt: skip
            named = torch.softmax(said, -1)[:, :-1]  # (N, values): the chance each value is named
            fits = fits + torch.einsum("nv,nvc->nc", named, torch.log_softmax(seen, 1))
            named_any = torch.maximum(named_any, named.sum(-1, keepdim=True))
        return (fits * named_any).clamp(min=-16)

    def count_distribution(self, fits: Tensor) -> Tensor:
        """(N, cells) each cell's log-probability that a fitting part is centred there -> (N, count_values) the log
        chance of each count: a Gaussian of the cells' Poisson-binomial mean and variance (+ 1/4: a sure count still
        rounds to one value), normalised over the counts it can give."""
        p = fits.exp()
        mean, var = p.sum(-1, keepdim=True), (p * (1 - p)).sum(-1, keepdim=True) + 0.25
        return torch.log_softmax(-((self.count_range - mean) ** 2) / (2 * var), -1)

    def point(self, scores: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """A scorer's output (N, cells), or (N, 3, cells) with click_offset -> its map (N, cells), point (N, 2) and,
        with click_offset, the point it would give were each cell the peak (N, cells, 2): an offset can move the point
        into a neighbouring cell, so export parity needs these to tell which cell another engine's point came from."""
        if not self.click_offset:
            return scores, self.click_point(scores), None
        logits, points = scores[:, 0], self.cell_points(scores[:, 1:])
        return logits, self.peak_point(logits, points), points

    @staticmethod
    def peak_point(click_logits: Tensor, points: Tensor) -> Tensor:
        """The point (N, 2) of the map's peak cell, of each cell's points (N, cells, 2)."""
        return points.gather(1, click_logits.argmax(-1).view(-1, 1, 1).expand(-1, 1, 2)).squeeze(1)

    def cell_points(self, offsets: Tensor) -> Tensor:
        """(N, 2, cells) offsets -> (N, cells, 2): each cell's centre plus its offset, tanh-bounded to ± one cell."""
        xy, cell = self.cell_xy.T.to(offsets.dtype), self.cell_wh.to(offsets.dtype)
        return (xy + torch.tanh(offsets.transpose(1, 2)) * cell).clamp(0, 1)

    def click_point(self, click_logits: Tensor, offsets: Tensor | None = None) -> Tensor:
        """Where to click, in [0, 1]: the map's peak cell, placed within it by `offsets` (N, 2, cells).

        With offsets: the peak cell's centre plus its offset, tanh-bounded to ± one cell (a peak one
        cell off, between two candidates' borders, can still reach the point), trained by the
        coordinate loss toward the labelled point: pixel-precise whatever the map's resolution.
        Without: the mean of the map over the 3 × 3 cells around the peak. The mean over the whole
        map would land between two candidates the model hesitates over — on neither; around the peak
        it lands on the likelier one, with some sub-cell precision.
        """
        if offsets is not None:
            return self.peak_point(click_logits, self.cell_points(offsets))
        best = click_logits.argmax(-1)
        xy = self.cell_xy.T.to(click_logits.dtype)  # (cells, 2)
        cell = self.cell_wh.to(click_logits.dtype)
        peak = xy[best]  # (N, 2)
        p = torch.softmax(click_logits, -1)
        near = ((xy.unsqueeze(0) - peak.unsqueeze(1)).abs() <= 1.01 * cell).all(-1)
        weights = p * near
        return (weights @ xy) / weights.sum(-1, keepdim=True)

    def initial_state(self, batch: int, ref: Tensor | None = None) -> list[Tensor]:
        ref = ref if ref is not None else next(self.parameters())
        # no held input nor previous action: zeros, as `previous_actions` has before an episode's first step
        return self.core.initial_state(batch, ref) + self.extra_state(batch, ref)

    def extra_state(self, batch: int, ref: Tensor) -> list[Tensor]:
        """The state beyond the core's, zeros at an episode's start: the held input (hold_input), the previous
        action (feedback), in that order after the core's layers."""
        cells = self.map_hw[0] * self.map_hw[1]
        traces = self.map_memory * cells * (2 if self.hold_input else 1)  # with hold_input: and the held write
        sizes = [self.core_input] * self.hold_input + [traces] * bool(self.map_memory) \
            + [self.num_actions + 3] * self.feedback  # fmt: skip
        return [ref.new_zeros(batch, n) for n in sizes]

    def split_state(self, state: list[Tensor] | None, batch: int, ref: Tensor) -> tuple:
        """-> the core's state (None: zeros), the held input, the map traces, the previous action (each None when off)."""
        count = int(self.hold_input) + int(bool(self.map_memory)) + int(self.feedback)
        if state is None:  # zeros, made only when no state is given (not on every step)
            extra = self.extra_state(batch, ref)
        elif count:
            state, extra = list(state[:-count]), list(state[-count:])
        else:
            extra = []
        held = extra.pop(0) if self.hold_input else None
        trace = extra.pop(0) if self.map_memory else None
        return state, held, trace, (extra.pop(0) if self.feedback else None)

    def remember_places(self, looked: Tensor, x: Tensor, trace: Tensor, dt) -> tuple[Tensor, Tensor]:
        """Where the model looked (B, T, cells), its core inputs (B, T, D) (the gates read them), the trace state
        before the first step -> the traces the pointers read at each step (B, T, K, cells), and the trace state
        after the last.

        Each trace decays over the step's dt with its own τ, then adds the step's attention map times its gate; the
        pointers read it before that add (the frame's own look is in its features: the traces hold only the past).
        With hold_input it is the exact solution of dm/dt = (w - m) / τ over each dt, w being the previous frame's
        write (what the model looked at while that time passed, kept in the state beside m): a place looked at
        for longer holds more. Padded steps (dt 0, no attention) leave the traces as they are."""
        batch, steps = x.shape[:2]
        dt = self.step_dts(dt, x)
        writes = torch.sigmoid(self.trace_gate(x)).unsqueeze(-1) * looked.unsqueeze(2)  # (B, T, K, cells)
        keep = torch.exp(-dt.unsqueeze(-1) / self.trace_log_tau.exp()).unsqueeze(-1)  # (B, T, K, 1)
        trace = trace.view(batch, -1, self.map_memory, writes.shape[-1])
        if self.hold_input:
            trace, held = trace[:, 0], trace[:, 1:]
            writes = torch.cat([held, writes], 1)  # the write held over each dt
        else:
            trace = trace[:, 0]
        traces = []
        for t in range(steps):
            if self.hold_input:
                trace = trace * keep[:, t] + writes[:, t] * (1 - keep[:, t])
                traces.append(trace)
            else:  # the pointers read what was looked at before this frame; this frame's look is in its features
                traces.append(trace * keep[:, t])
                trace = traces[-1] + writes[:, t]
        last = torch.stack([trace, writes[:, -1]], 1) if self.hold_input else trace
        return torch.stack(traces, 1), last.flatten(1)

    @staticmethod
    def step_dts(dt, x: Tensor) -> Tensor:
        """dt as forward takes it (None, a float, (B,) or (B, T)) -> (B, T) for inputs x (B, T, ...)."""
        batch, steps = x.shape[:2]
        dt = as_step_dt(dt, batch, steps, x)
        return dt.squeeze(-1) if torch.is_tensor(dt) else x.new_full((batch, steps), dt)

    def core_with_held_input(self, x: Tensor, held: Tensor, state, dt, mask: Tensor | None):
        """The core over (B, T, D) inputs (before input_proj) in two sub-steps per frame: the dt before it with the
        previous input held, then the frame's own input over one unit of time (0 on padding) -> outputs of the second."""
        dt = self.step_dts(dt, x)
        read = mask.to(x.dtype) if mask is not None else torch.ones_like(dt)
        before = torch.cat([held.unsqueeze(1), x[:, :-1]], 1)
        if self.hold_flag:
            held_flag = torch.ones_like(x[..., :1])
            before, x = torch.cat([before, held_flag], -1), torch.cat([x, torch.zeros_like(held_flag)], -1)
        sequence = self.input_proj(torch.stack([before, x], 2).flatten(1, 2))
        out, state, taus = self.core(sequence, state, torch.stack([dt, read], 2).flatten(1, 2))
        return out[:, 1::2], state, [tau[:, 1::2] for tau in taus]

    def action_record(self, action_logits: Tensor, coords: Tensor) -> Tensor:
        """(N, A) logits, (N, 2) point -> (N, A + 3): the chosen kind one-hot, its point and whether it points."""
        chosen = (action_logits == action_logits.max(-1, keepdim=True).values).to(coords.dtype)  # argmax, exportable
        pointed = chosen[:, [i for i in POINTING if i < self.num_actions]].sum(-1, keepdim=True)
        return torch.cat([chosen, coords * pointed, pointed], -1)

    def previous_actions(self, actions: Tensor, points: Tensor) -> Tensor:
        """Recorded episodes' actions (B, T) (class ids; negative on padding) and points (B, T, 2) -> each step's
        previous action record (B, T, A + 3), as the state would carry it (zeros before the first step)."""
        chosen = (actions.unsqueeze(-1) == torch.arange(self.num_actions, device=actions.device)).to(points.dtype)
        pointed = chosen[..., [i for i in POINTING if i < self.num_actions]].sum(-1, keepdim=True)
        records = torch.cat([chosen, points * pointed, pointed], -1)
        return torch.cat([torch.zeros_like(records[:, :1]), records[:, :-1]], 1)

    def feedback_features(self, record: Tensor) -> Tensor:
        """(N, A + 3) action records -> (N, A + P): the kind, and where it pointed as a cell position is described."""
        kind, xy, pointed = record[:, : self.num_actions], record[:, -3:-1], record[:, -1:]
        where = position_features(xy.T, (len(self.cell_position) - 2) // 4).T * pointed
        return torch.cat([kind, where], -1)

    def step(self, image: Tensor, tokens: Tensor, state: list[Tensor] | None = None, dt=None,
             strip: Tensor | None = None) -> dict:  # fmt: skip
        """One frame: image (B, 3, H, W), tokens (B, L) (strip (B, S, *STRIP)), state per layer -> outputs without T."""
        out = self(image.unsqueeze(1), tokens.unsqueeze(1), state, dt, strip=strip.unsqueeze(1) if strip is not None else None)
        for key in [k for k in out if k not in ("tau_values", "state")]:
            out[key] = out[key][:, 0]
        out["tau_values"] = [tau[:, 0] for tau in out["tau_values"]]
        return out
