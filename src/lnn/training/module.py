"""The LightningModule: action cross-entropy, a click loss on click steps (and on a drag's press point), and
with the model's optional heads a release-point loss on drags, key cross-entropy on key steps and a text
loss on type steps, and what each part of the screen is (the oracle's `parts`, with a part head); accuracy and τ
metrics."""

from __future__ import annotations

import math
from functools import partial

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lnn.data import IGNORE
from lnn.envs import ACTIONS, KEYS, PART_ATTRIBUTES
from lnn.envs.miniwob import described_parts, read_description
from lnn.errors import ConfigError, DataError
from lnn.models.lite import PART_CLASSES
from lnn.models.text import text_options
from lnn.runs import SCORES, SPEC
from lnn.training import epoch_metrics
from lnn.training.optim import optimizer_groups

CLICK, DRAG, KEY, TYPE = (ACTIONS.index(a) for a in ("click", "drag", "key", "type"))
PART_CELLS = ("nearest", "covered")  # where part_loss reads what the part head says a part is


def images_to_float(images: Tensor) -> Tensor:
    """(B, T, H, W, 3) uint8 -> (B, T, 3, H, W) in [0, 1]; done on the device, after the copy."""
    return images.permute(0, 1, 4, 2, 3).float().div_(255)


def inside(xy: Tensor, box: Tensor) -> Tensor:
    """Whether points (..., 2) lie in boxes (..., 4) = (x0, y0, x1, y1)."""
    x, y = xy.unbind(-1)
    return (x >= box[..., 0]) & (x <= box[..., 2]) & (y >= box[..., 1]) & (y <= box[..., 3])


def centres(box: Tensor) -> Tensor:
    """Boxes (..., 4) = (x0, y0, x1, y1) -> their centres (..., 2)."""
    return (box[..., :2] + box[..., 2:]) / 2


def nearest_cell(cell_xy: Tensor, boxes: Tensor) -> Tensor:
    """The map cell (of cell_xy (2, cells)) whose centre is nearest each box's centre: boxes (..., 4) -> (...).

    Squared distances summed per axis: a norm over a last dimension of 2 took ~10% of a training step on CPU."""
    centre = centres(boxes)
    dx, dy = centre[..., :1] - cell_xy[0], centre[..., 1:] - cell_xy[1]  # (..., cells) each
    return (dx * dx + dy * dy).argmin(-1)


def covered_cells(cell_xy: Tensor, boxes: Tensor) -> Tensor:
    """The map cells (of cell_xy (2, cells)) whose centre lies inside each box (..., 4), and the cell nearest
    its centre (a box smaller than a cell still has one) -> (..., cells) bool."""
    in_box = inside(cell_xy.T, boxes.unsqueeze(-2))
    return in_box | F.one_hot(nearest_cell(cell_xy, boxes), cell_xy.shape[1]).bool()


def click_loss(click_logits: Tensor, cell_xy: Tensor, box: Tensor) -> Tensor:
    """−log of the probability mass the click map puts inside the target box (N, 4), or inside any of
    the boxes (N, B, 4) that a click would be as right in (boxes of x0 < 0 are padding).

    The predicted point is the map's mean, so mass inside a (convex) box pulls the point into it;
    where the box is smaller than a cell, the cell nearest its centre stands for it.
    """
    boxes = box.unsqueeze(1) if box.dim() == 2 else box  # (N, B, 4)
    real = (boxes[..., 0] >= 0).unsqueeze(-1)
    in_box = (covered_cells(cell_xy, boxes) & real).any(1)  # (N, cells)
    log_p = torch.log_softmax(click_logits.float(), -1)
    return -(log_p.masked_fill(~in_box, -math.inf).logsumexp(-1)).mean()


def nearest_right_point(coords: Tensor, point: Tensor, others: Tensor) -> Tensor:
    """The point a click's coordinates are pulled to (N, 2): the oracle's `point`, or where another box
    that is as right (N, K, 4; x0 < 0: padding) has its centre, whichever is nearer `coords` — a click on
    another fitting shape is not pulled back to the one the oracle chose."""
    candidates = torch.cat([point.unsqueeze(1), centres(others)], 1)  # (N, 1 + K, 2)
    distance = (candidates - coords.detach().unsqueeze(1)).abs().sum(-1)
    distance[:, 1:] = distance[:, 1:].masked_fill(others[..., 0] < 0, math.inf)
    return candidates.gather(1, distance.argmin(1).view(-1, 1, 1).expand(-1, 1, 2)).squeeze(1)


def part_loss(part_logits: Tensor, cell_xy: Tensor, parts: Tensor, covered: bool = False) -> tuple[Tensor, Tensor] | None:
    """What the map says each part is, against the part's labels: part_logits (N, classes, cells)
    (PART_ATTRIBUTES' attributes one after the other), parts (N, P, 4 + attributes) (box, class ids; -1: padding or
    not known) -> (mean cross-entropy over the attributes given, the share of them the nearest cell gets right), or
    None where no part has a label.

    It reads the cell nearest each part's centre, or with `covered` every cell the part covers (`covered_cells`),
    each part's cross-entropy averaged over its cells: the centre head calls a part's other cells centred too (~40%
    of its chance), and what counts the fitting parts reads their labels there."""
    real = parts[..., 0] >= 0
    if not real.any():
        return None
    frame, _ = real.nonzero(as_tuple=True)
    boxes = parts[real]  # (M, 4 + attributes)
    nearest = nearest_cell(cell_xy, boxes[:, :4])
    cover = covered_cells(cell_xy, boxes[:, :4]) if covered else F.one_hot(nearest, cell_xy.shape[1]).bool()
    part, cell = cover.nonzero(as_tuple=True)  # each (part, cell) taught
    weight = 1 / cover.sum(-1)[part]  # each part counts once
    classes = sum(PART_CLASSES)
    taught = part_logits[frame[part], :classes, cell].float()  # (pairs, classes)
    at_nearest = part_logits[frame, :classes, nearest].float()  # (M, classes)
    losses, right, given = [], [], 0
    for attribute, (taught_of, nearest_of) in enumerate(zip(taught.split(PART_CLASSES, -1),
                                                            at_nearest.split(PART_CLASSES, -1))):  # fmt: skip
        labels = boxes[:, 4 + attribute].long()
        known = labels >= 0
        if known.any():
            pairs = known[part]
            nll = F.cross_entropy(taught_of[pairs], labels[part][pairs], reduction="none")
            losses.append((nll * weight[pairs]).sum())
            right.append((nearest_of[known].argmax(-1) == labels[known]).sum())
            given += int(known.sum())
    if not given:
        return None
    return torch.stack(losses).sum() / given, torch.stack(right).sum() / given


def frame_texts(batch: dict) -> tuple[list[str], list[str]]:
    """Each step's task name and instruction, episodes after one another (B · T of each)."""
    steps = batch["mask"].shape[1]
    return ([task for task in batch["task"] for _ in range(steps)],
            [text for episode in batch["instruction"] for text in episode])  # fmt: skip


def centre_loss(centre_logits: Tensor, cell_xy: Tensor, parts: Tensor) -> Tensor | None:
    """Whether a part is centred in each cell (N, cells) against the parts' boxes (N, P, 4 + attributes; x0 < 0:
    padding): binary cross-entropy over every cell of the frames that have parts (the cell nearest a part's centre
    is 1, every other 0), or None where no frame has one."""
    real = parts[..., 0] >= 0
    framed = real.any(1)
    if not framed.any():
        return None
    target = torch.zeros_like(centre_logits, dtype=torch.float32)
    frame, _ = real.nonzero(as_tuple=True)
    target[frame, nearest_cell(cell_xy, parts[real][:, :4])] = 1.0
    return F.binary_cross_entropy_with_logits(centre_logits[framed].float(), target[framed])


def parse_labels(tasks: list[str], instructions: list[str]) -> Tensor:
    """(N, attributes) per instruction the value each attribute's description names (lnn.envs.miniwob's
    described_parts), as a class id, or the attribute's number of values where it names none."""
    rows = []
    for task, instruction in zip(tasks, instructions):
        named = described_parts(task, instruction)
        rows.append([values.index(named[a]) if a in named else len(values) for a, values in PART_ATTRIBUTES.items()])
    return torch.tensor(rows, dtype=torch.long)


def fitting_count(named: dict[str, str], parts: Tensor) -> int:
    """How many of the parts (P, 4 + attributes; -1 rows: padding) have every attribute value `named` (an attribute
    a part's labels leave unknown fits no value)."""
    names = list(PART_ATTRIBUTES)
    shown = parts[parts[:, 0] >= 0, 4:].long()
    fits = torch.ones(len(shown), dtype=torch.bool)
    for attribute, value in named.items():
        fits &= shown[:, names.index(attribute)] == PART_ATTRIBUTES[attribute].index(value)
    return int(fits.sum())


def count_labels(tasks: list[str], instructions: list[str], parts: Tensor) -> Tensor:
    """(N,) per frame how many of its parts (N, P, 4 + attributes) its instruction's description fits (count-shape's
    answer; click-shape's how many would be right), or -1 where it describes none or the frame has no parts."""
    labels = []
    for task, instruction, shown in zip(tasks, instructions, parts):
        named = read_description(task, instruction)
        labels.append(-1 if named is None or not (shown[:, 0] >= 0).any() else fitting_count(named, shown))
    return torch.tensor(labels, dtype=torch.long)


def parse_loss(parse_logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """(N, sum(PART_CLASSES) + attributes) logits, (N, attributes) labels -> (mean cross-entropy, share of
    instructions read right in every attribute)."""
    losses, right = [], []
    for attribute, logits in enumerate(parse_logits.float().split([n + 1 for n in PART_CLASSES], -1)):
        losses.append(F.cross_entropy(logits, labels[:, attribute]))
        right.append(logits.argmax(-1) == labels[:, attribute])
    return torch.stack(losses).mean(), torch.stack(right).all(0).float().mean()


def text_loss(text_logits: Tensor, options: Tensor, trained: Tensor) -> Tensor:
    """Per trained slot, −log of the probability of its right choices (the character, or any instruction
    position holding the byte: whichever way the model types it), averaged over those slots."""
    log_p = torch.log_softmax(text_logits.float(), -1)
    right = log_p.masked_fill(~options, -math.inf).logsumexp(-1)
    return -right[trained].mean()


class PolicyModule(pl.LightningModule):
    def __init__(
        self,
        model: nn.Module,
        optimizer: partial,
        warmup_steps: int = 50,
        click_weight: float = 1.0,
        coord_weight: float = 1.0,
        look_weight: float = 0.5,
        release_weight: float = 1.0,
        key_weight: float = 1.0,
        text_weight: float = 1.0,
        part_weight: float = 0.5,
        part_cells: str = "nearest",
        seed: int | None = None,
        lr_groups: dict | None = None,
    ):
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer
        self.warmup_steps, self.click_weight, self.coord_weight = warmup_steps, click_weight, coord_weight
        self.look_weight, self.seed = look_weight, seed
        self.release_weight, self.key_weight, self.text_weight = release_weight, key_weight, text_weight
        if part_cells not in PART_CELLS:
            raise ConfigError("module.part_cells", f"must be one of {', '.join(PART_CELLS)}, got {part_cells!r}")
        self.part_weight, self.part_cells = part_weight, part_cells
        self.lr_groups = dict(lr_groups or {})
        optimizer_groups(model, self.lr_groups)  # an unknown group stops the run here, before any work
        self.save_hyperparameters(ignore=["model", "optimizer"])
        self._epoch_metrics: dict | None = None  # from the checkpoint resumed, until training starts

    def forward(self, batch: dict) -> dict:
        images = images_to_float(batch["images"])
        b, t = images.shape[:2]
        tasks, instructions = frame_texts(batch)
        text = {name: x.to(self.device).view(b, t, *x.shape[1:])  # tokens (and Lite's strips with match_text)
                for name, x in self.model.text_inputs(tasks, instructions).items()}  # fmt: skip
        # elapsed time per step (1 for recorded steps; 0 on padding: padded steps leave the state as it is)
        mask = batch["mask"]
        dt = batch["dt"].to(images.dtype) if "dt" in batch else mask.to(images.dtype)
        extra = {}
        if getattr(self.model, "feedback", False):  # teacher forcing: the recorded previous action of each step
            extra["previous"] = self.model.previous_actions(batch["action"].to(self.device), batch["click"].to(images))
        if getattr(self.model, "part_head", None) is not None:  # what each part of the screen is: training only
            extra["parts"] = True
        return self.model(images, **text, dt=dt, mask=mask, **extra)

    def _step(self, batch: dict, stage: str) -> Tensor:
        out = self(batch)
        mask, action = batch["mask"], batch["action"]
        logits = out["action_logits"][mask]
        labels = action[mask]
        if labels.numel() and int(labels.max()) >= logits.shape[-1]:
            raise DataError(f"the data has {ACTIONS[int(labels.max())]} steps (action {int(labels.max())}) but the model "
                            f"has {logits.shape[-1]} action classes; set model.num_actions={len(ACTIONS)}")  # fmt: skip
        loss_action = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE)
        clicks = mask & ((action == CLICK) | (action == DRAG))  # a drag presses where a click would
        loss = loss_action
        metrics = {"loss_action": loss_action, "action_acc": (logits.argmax(-1) == labels).float().mean()}
        if clicks.any():
            box, target, others = batch["box"][clicks], batch["click"][clicks], batch["others"][clicks]
            coords = out["coords"][clicks]
            boxed = box[:, 0] >= 0  # recorded clicks always have a target box; a user's folder may not
            # without a box, the click map's mass is pulled to the cell nearest the labelled point
            loss_box = torch.cat([torch.where(boxed.unsqueeze(-1), box, target.repeat(1, 2)).unsqueeze(1), others], 1)
            loss_click = click_loss(out["click_logits"][clicks], self.model.cell_xy, loss_box)
            target = nearest_right_point(coords.float(), target, others)
            loss_coord = F.l1_loss(coords.float(), target)
            loss = loss + self.click_weight * loss_click + self.coord_weight * loss_coord
            metrics |= {"loss_click": loss_click, "click_dist": (coords.float() - target).norm(dim=-1).mean()}
            if boxed.any():  # the click inside the target box, or another as right
                metrics["click_acc"] = inside(coords[boxed].unsqueeze(1), loss_box[boxed]).any(1).float().mean()
        for name, (value, weight) in self._head_losses(out, batch).items():
            if name.startswith("loss_"):
                loss = loss + weight * value
            metrics[name] = value
        looks = mask & (batch["focus"][..., 0] >= 0)
        if self.look_weight and "look_logits" in out and looks.any():
            # look where the oracle's step is about: the target, the field, the square to remember
            # (where the focus is the click target, as much on any other box a click would be as right in)
            on_target = (batch["focus"] == batch["box"]).all(-1, keepdim=True).unsqueeze(-1)
            others = batch["others"].masked_fill(~on_target, -1.0)
            focus = torch.cat([batch["focus"].unsqueeze(-2), others], -2)[looks]
            loss_look = click_loss(out["look_logits"][looks], self.model.cell_xy, focus)
            loss = loss + self.look_weight * loss_look
            metrics["loss_look"] = loss_look
        metrics["loss"] = loss
        for i, tau in enumerate(out["tau_values"]):
            metrics[f"tau_mean/{i}"] = tau[mask].mean()
        batch_size = int(mask.shape[0])
        for name, value in metrics.items():
            self.log(f"{stage}/{name}", value, batch_size=batch_size, prog_bar=name in ("loss", "action_acc", "click_acc"),
                     on_step=stage == "train" and name == "loss", on_epoch=True, sync_dist=stage != "train")  # fmt: skip
        return loss

    def _head_losses(self, out: dict, batch: dict) -> dict[str, tuple[Tensor, float]]:
        """The optional heads' losses and metrics, {name: (value, weight)}, on the steps each is about:
        the release point on drags, the key on key steps, the text on type steps (a model without a head,
        e.g. LFM2, is simply not trained on it)."""
        mask, action, found = batch["mask"], batch["action"], {}
        drags = mask & (action == DRAG)
        if "release_logits" in out and drags.any():
            target = batch["release"][drags]
            point = out["release"][drags].float()
            # the map's mass pulled to the cell nearest the point, and the point itself (as an unboxed click)
            loss = click_loss(out["release_logits"][drags], self.model.cell_xy, target.repeat(1, 2)) \
                + self.coord_weight * F.l1_loss(point, target)  # fmt: skip
            found |= {"loss_release": (loss, self.release_weight),
                      "release_dist": ((point - target).norm(dim=-1).mean(), 0)}  # fmt: skip
        keys = mask & (action == KEY) & (batch["key"] >= 0)
        if "key_logits" in out and keys.any():
            logits, labels = out["key_logits"][keys].float(), batch["key"][keys]
            if logits.shape[-1] != len(KEYS):
                raise DataError(f"the model's key head has {logits.shape[-1]} keys, lnn.envs.KEYS {len(KEYS)}; retrain it")
            found |= {"loss_key": (F.cross_entropy(logits, labels), self.key_weight),
                      "key_acc": ((logits.argmax(-1) == labels).float().mean(), 0)}  # fmt: skip
        types = mask & (action == TYPE)
        if "text_logits" in out and types.any():
            logits = out["text_logits"][types]  # (N, slots, CHARS + positions)
            tokens = self._tokens(batch)[types]
            texts = [t for row, episode in zip(types.tolist(), batch["text"]) for real, t in zip(row, episode) if real]
            options, trained = text_options(texts, tokens, logits.shape[1])
            options, trained = options.to(logits.device), trained.to(logits.device)
            if trained.any():
                chosen = F.one_hot(logits.argmax(-1), logits.shape[-1]).bool()
                exact = ((chosen & options).any(-1) | ~trained).all(-1)  # every slot right, END included
                found |= {"loss_text": (text_loss(logits, options, trained), self.text_weight),
                          "text_acc": (exact.float().mean(), 0)}  # fmt: skip
        seen = None
        if "part_logits" in out:
            seen = part_loss(out["part_logits"][mask], self.model.cell_xy, batch["parts"][mask],
                             covered=self.part_cells == "covered")
        if seen is not None:
            found |= {"loss_part": (seen[0], self.part_weight), "part_acc": (seen[1], 0)}
        if "parse_logits" in out:  # model.describe: where parts are centred, and what the description names
            centres = centre_loss(out["part_logits"][mask][:, -1], self.model.cell_xy, batch["parts"][mask])
            if centres is not None:
                found["loss_centre"] = (centres, self.part_weight)
            labels = parse_labels(*frame_texts(batch)).view(*mask.shape, -1).to(self.device)[mask]
            loss, right = parse_loss(out["parse_logits"][mask], labels)
            found |= {"loss_parse": (loss, self.part_weight), "parse_acc": (right, 0)}
        if "count" in out:  # model.count_values: how many parts the description fits (the distribution's mean)
            logits = out["count_logits"][mask].float()
            counts = count_labels(*frame_texts(batch), batch["parts"].flatten(0, 1).cpu())
            counts = counts.view(mask.shape).to(logits.device)[mask].clamp(max=logits.shape[-1] - 1)
            counted = counts >= 0
            if counted.any():
                loss = F.smooth_l1_loss(out["count"][mask][counted].float(), counts[counted].float())
                found |= {"loss_count": (loss, self.part_weight),
                          "count_acc": ((logits[counted].argmax(-1) == counts[counted]).float().mean(), 0)}  # fmt: skip
        return found

    def _tokens(self, batch: dict) -> Tensor:
        """(B, T, L) the instruction ids the model read at each step (what the text head copies from)."""
        return self.model.tokenize(*frame_texts(batch)).view(*batch["mask"].shape, -1).to(self.device)

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        """Torch's RNG (dropout, augmentation) seeded from (seed, rank, step): a resumed run draws what the
        killed one would have, whatever ran before (validation, a restart), with no state to checkpoint."""
        if self.seed is not None:
            torch.manual_seed(hash((self.seed, self.global_rank, self.global_step)) % 2**63)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The model spec (it rebuilds the model without the run's config), the running epoch averages and
        the monitored metrics' values: a weights-only best.ckpt has no callback state to read its score from."""
        model = getattr(self.model, "_orig_mod", self.model)  # torch.compile wraps the model
        if hasattr(model, "spec"):
            checkpoint[SPEC] = model.spec
        if self._trainer is not None:  # saved outside a fit (by hand, in tests): no epoch under way
            checkpoint[epoch_metrics.KEY] = epoch_metrics.save(self.trainer)
            metrics = self.trainer.callback_metrics
            monitors = {cb.monitor for cb in self.trainer.checkpoint_callbacks if getattr(cb, "monitor", None)}
            checkpoint[SCORES] = {name: float(metrics[name]) for name in sorted(monitors) if name in metrics}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._epoch_metrics = checkpoint.get(epoch_metrics.KEY)

    def on_train_start(self) -> None:
        """A run resumed mid-epoch averages the whole epoch into train/*_epoch, as if never killed."""
        epoch_metrics.restore(self.trainer, self._epoch_metrics)
        self._epoch_metrics = None

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=optimizer_groups(self.model, self.lr_groups))
        total = max(1, self.trainer.estimated_stepping_batches)
        warmup = min(self.warmup_steps, total // 4)

        def schedule(step: int) -> float:  # linear warm-up, then cosine decay to 5%, of every group's lr
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
