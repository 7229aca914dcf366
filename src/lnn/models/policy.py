"""What every lnn policy model offers; the LightningModule, the agent and the export rely on it.

A policy maps a screenshot and an instruction (with its recurrent state) to an action and a point:

    tokenize(tasks, instructions) -> (N, L) int64      the model's own text encoding
    text_inputs(tasks, instructions) -> {name: (N, ...)}   all it is told of the instruction, by keyword of
                                                      forward / step: {"tokens": tokenize(...)}, and Lite's
                                                      `strip` with match_text (the named text, drawn)
    forward(images (B,T,3,H,W) in [0,1], tokens (B,T,L), state=None, dt=None, mask=None) -> dict:
        action_logits (B,T,6), coords (B,T,2) in [0,1], click_logits (B,T,cells),
        look_logits (B,T,cells) — optional: where the model looks (trained towards the oracle's focus),
        tau_values [per liquid layer (B,T,τ)], state [per core layer (B,S): the LSTM's is [h, c]]
        — optional, Lite's drag / key / text heads: release (B,T,2) and release_logits (B,T,cells) (where a drag
        lets go), key_logits (B,T,len(KEYS)), text_logits (B,T,slots,choices) and text_bytes (B,T,slots) (what
        a type action types: UTF-8 bytes, -1 ends); a model without a head has no such output and is not
        trained on it
    step(image (B,3,H,W), tokens (B,L), state, dt=None) -> the same without T   (agent, ONNX export)
    initial_state(batch) -> [per layer]
    image_size: int | [height, width]                 the size frames are resized to (N: N × N; lnn.frames)
    cell_xy: (2, cells) tensor                        centres of the click map's cells, in [0,1]

and says what it is, so that nothing outside has to walk its attributes:

    spec -> {"class": "lnn.models.lite.VisionLNNLite", "kwargs": {...}}   its class and constructor
                                                      arguments (plain values): stored in every checkpoint
    family: "lite" | "lfm2"                           which exporter handles it
    liquid_cells() -> [LiquidCell, ...]               its liquid cells in layer order ([]: no liquid core) — the
                                                      cells with a bounded τ, what τ outputs and plots read (CfC,
                                                      LTC, LSTM, GRU cores report no τ)
    solver_cells() -> [cell, ...]                     the cells an ODE solver integrates (liquid, LTC; default:
                                                      liquid_cells())
    with_solver(solver, unfolds) -> a copy            integrating with another solver / number of sub-steps
    param_groups() -> {name: [Parameter, ...]}        named groups that may train at their own learning rates
                                                      (`module.lr_groups`); default: one group, "model"

`mask` (B,T) marks real steps of right-padded episodes; `dt` is the elapsed time per step (0 on
padding keeps the state). Actions index lnn.envs.ACTIONS.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import Protocol

from torch import Tensor


def plain(value):
    """Config containers (OmegaConf's included) -> dicts, lists and scalars, as a spec stores them."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(v) for v in value]
    return value


def records_spec(init):
    """Decorates a policy's __init__: the arguments it was called with (defaults filled in) become its spec."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        arguments = dict(list(bound.arguments.items())[1:])
        # what __init__ chose itself (e.g. a width solved for a budget), so a checkpoint rebuilds the same model
        arguments |= getattr(self, "resolved_kwargs", {})
        self.spec_kwargs = plain(arguments)

    return wrapper


class Described:
    """The self-description every lnn policy offers (mixed into the model's nn.Module)."""

    family: str
    spec_kwargs: dict  # set by @records_spec on __init__

    @property
    def spec(self) -> dict:
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", "kwargs": copy.deepcopy(self.spec_kwargs)}

    def liquid_cells(self) -> list:
        raise NotImplementedError

    def solver_cells(self) -> list:
        return self.liquid_cells()

    def text_inputs(self, tasks: list[str], instructions: list[str]) -> dict:
        """All the model is told of each instruction, by the keyword forward and step take it as."""
        return {"tokens": self.tokenize(tasks, instructions)}

    def param_groups(self) -> dict[str, list]:
        """Named parameter groups, each every parameter once (trainable or not): one group unless a model says more."""
        return {"model": list(self.parameters())}

    def with_solver(self, solver: str, unfolds: int):
        """A copy whose ODE cells integrate with `solver` in `unfolds` sub-steps per input step."""
        model = copy.deepcopy(self)
        for cell in model.solver_cells():
            cell.solver, cell.unfolds = solver, unfolds
        return model


class Policy(Protocol):
    image_size: int | list[int]
    cell_xy: Tensor
    family: str
    spec: dict

    def liquid_cells(self) -> list: ...

    def solver_cells(self) -> list: ...

    def with_solver(self, solver: str, unfolds: int) -> Policy: ...

    def tokenize(self, tasks: list[str], instructions: list[str]) -> Tensor: ...

    def text_inputs(self, tasks: list[str], instructions: list[str]) -> dict[str, Tensor]: ...

    def forward(self, images: Tensor, tokens: Tensor, state=None, dt=None, mask=None) -> dict: ...

    def step(self, image: Tensor, tokens: Tensor, state=None, dt=None) -> dict: ...

    def initial_state(self, batch: int, ref: Tensor | None = None) -> list[Tensor]: ...
