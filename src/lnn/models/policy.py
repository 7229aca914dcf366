"""What every lnn policy model offers; the LightningModule, the agent and the export rely on it.

A policy maps a screenshot and an instruction (with its recurrent state) to an action and a point:

    tokenize(tasks, instructions) -> (N, L) int64      the model's own text encoding
    forward(images (B,T,3,S,S) in [0,1], tokens (B,T,L), state=None, dt=None, mask=None) -> dict:
        action_logits (B,T,6), coords (B,T,2) in [0,1], click_logits (B,T,cells),
        look_logits (B,T,cells) — optional: where the model looks (trained towards the oracle's focus),
        tau_values [per liquid layer (B,T,τ)], state [per layer]
    step(image (B,3,S,S), tokens (B,L), state) -> the same without T   (agent, ONNX export)
    initial_state(batch) -> [per layer]
    image_size: int                                   the square size frames are resized to
    cell_xy: (2, cells) tensor                        centres of the click map's cells, in [0,1]

`mask` (B,T) marks real steps of right-padded episodes; `dt` is the elapsed time per step (0 on
padding keeps the state). Actions index lnn.envs.ACTIONS.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor


class Policy(Protocol):
    image_size: int
    cell_xy: Tensor

    def tokenize(self, tasks: list[str], instructions: list[str]) -> Tensor: ...

    def forward(self, images: Tensor, tokens: Tensor, state=None, dt=None, mask=None) -> dict: ...

    def step(self, image: Tensor, tokens: Tensor, state=None, dt=None) -> dict: ...

    def initial_state(self, batch: int, ref: Tensor | None = None) -> list[Tensor]: ...
