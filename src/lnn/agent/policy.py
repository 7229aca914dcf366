"""A trained model acting on observations, one frame at a time, carrying its recurrent state."""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from lnn.envs import ACTIONS, Action, Observation

QUOTED = re.compile(r"[\"“']([^\"”']+)[\"”']")


def screenshots_to_tensor(screens: list[np.ndarray], size: int, device=None) -> torch.Tensor:
    """(H, W, 3) uint8 frames -> (N, 3, size, size) floats in [0, 1], resized where needed."""
    images = torch.from_numpy(np.stack(screens)).to(device).permute(0, 3, 1, 2).float() / 255
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return images


def decode_action(action_id: int, xy: tuple[float, float], instruction: str) -> Action:
    """The model picks the type and point; text to type is the instruction's quoted string."""
    kind = ACTIONS[action_id]
    text = ""
    if kind == "type":
        found = QUOTED.search(instruction)
        text = found.group(1) if found else ""
    elif kind == "key":
        text = "Enter"
    return Action(kind, x=float(xy[0]), y=float(xy[1]), text=text)


class TorchPolicy:
    """Batched closed-loop policy over a PyTorch model with the Lite step API."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu"):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.state = None

    def reset(self, batch: int) -> None:
        self.state = self.model.initial_state(batch)
        self.state = [h.to(self.device) for h in self.state]

    @torch.no_grad()
    def act(self, observations: list[Observation]) -> tuple[list[Action], dict]:
        images = screenshots_to_tensor([o.screenshot for o in observations], self.model.image_size, self.device)
        tokens = self.model.tokenize([o.task for o in observations], [o.instruction for o in observations])
        out = self.model.step(images, tokens.to(self.device), self.state)
        self.state = out["state"]
        ids = out["action_logits"].argmax(-1).tolist()
        coords = out["coords"].tolist()
        actions = [decode_action(a, xy, o.instruction) for a, xy, o in zip(ids, coords, observations)]
        return actions, {"tau": [t.cpu() for t in out["tau_values"]], "coords": coords}

    def keep(self, rows: list[int]) -> None:
        """Drop the state of finished episodes: keep these batch rows, in this order."""
        index = torch.tensor(rows, device=self.device, dtype=torch.long)
        self.state = [h.index_select(0, index) for h in self.state]
