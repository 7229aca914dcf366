"""Recorded streams of frames, and the step model run over them in PyTorch and in onnxruntime.

A *stream* is `steps` consecutive frames of one task family, driven by the env's oracle (so every frame
of a multi-step or memory episode appears, whatever the model would do), episodes of the family
following each other on successive test seeds until the stream is full. Frames are stored as uint8 at
the model's input size, exactly what the page and the parity checks feed the model (x / 255), with each
frame's elapsed time `dt` as the env reported it (the timing families' irregular seconds; 1 elsewhere).

Both runners carry the recurrent state through all steps of a stream (the strictest test of a streaming
step); `reset_at_new_episode=True` zeroes it where a new env episode starts instead (the page's default).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
import torch

from lnn.envs import EpisodeAborted
from lnn.envs.registry import ENVS, make_env
from lnn.export.onnx_step import HEADS
from lnn.rollout import SPLIT_SEED_BASE, OraclePolicy, run_episodes, screenshots_to_tensor


@dataclass
class Stream:
    task: str
    frames: np.ndarray  # (T, S, S, 3) uint8
    instructions: list[str]
    new_episode: list[bool]  # True where an env episode starts
    seeds: list[int]
    truth: list[dict | None] = field(default_factory=list)  # per step: action, x, y, box (the oracle's; None: none)
    dt: list[float] = field(default_factory=list)  # per step: seconds since the previous frame ([]: all 1)
    # a stream the model played itself (record_played): per step its action, x, y, and on an episode's
    # last step `result` ("success" or why it failed); [] for oracle-driven streams
    played: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.instructions)


def _env_accepts_image_size(env_name: str) -> bool:
    from importlib import import_module

    module, cls, _ = ENVS[env_name]
    return "image_size" in inspect.signature(getattr(import_module(module), cls)).parameters


def record_streams(env_name: str, tasks, image_size: int | list[int], steps: int = 16, per_task: int = 1,
                   seed_base: int = SPLIT_SEED_BASE["test"], env_kwargs: dict | None = None) -> list[Stream]:  # fmt: skip
    """`per_task` oracle-driven streams of `steps` frames for each task family."""
    kwargs = dict(env_kwargs or {})
    if _env_accepts_image_size(env_name):
        kwargs.setdefault("image_size", image_size)  # render at the model's size: no resampling
    env = make_env(env_name, tasks=list(tasks), **kwargs)
    try:
        return [stream for task in tasks for stream in _task_streams(env, task, image_size, steps, per_task, seed_base)]
    finally:
        env.close()


def record_played(model, env_name: str, tasks, steps: int = 16, max_steps: int | None = None,
                  seed_base: int = SPLIT_SEED_BASE["test"], env_kwargs: dict | None = None) -> list[Stream]:  # fmt: skip
    """A stream per task of `model` acting in the env (MiniWoB: in Chromium) on successive test seeds: the
    frames it saw, what it did, how each episode ended, and the oracle's answer at each state (truth)."""
    from lnn.data.improve import Labelled
    from lnn.rollout import TorchPolicy

    kwargs = dict(env_kwargs or {})
    if _env_accepts_image_size(env_name):
        kwargs.setdefault("image_size", model.image_size)
    env = make_env(env_name, tasks=list(tasks), **kwargs)
    policy = TorchPolicy(model)
    try:
        return [stream for task in tasks
                for stream in _task_streams(env, task, model.image_size, steps, 1, seed_base, Labelled(policy, [env]), max_steps)]  # fmt: skip
    finally:
        env.close()


def _task_streams(env, task: str, image_size: int | list[int], steps: int, per_task: int, seed: int, policy=None,
                  max_steps: int | None = None) -> list[Stream]:  # fmt: skip
    """Episodes on successive seeds, cut into streams of `steps` frames; a stream that cuts an episode
    short leaves the rest of it out (the next stream starts a fresh episode). `policy`: the env's oracle
    (None), or a learned policy whose trace carries the oracle's step too (Labelled): a played stream."""
    played, streams = policy is not None, []
    policy = policy or OraclePolicy([env])
    for _ in range(per_task):
        taken, new, seeds, results = [], [], [], []
        while len(taken) < steps:
            limit = steps - len(taken) if max_steps is None else min(steps - len(taken), max_steps)
            episode = run_episodes(policy, [env], [(task, seed)], record=True, desc=None, max_steps=limit)[0]
            if episode.aborted:
                raise EpisodeAborted(episode.aborted)
            taken += episode.trace
            new += [t == 0 for t in range(len(episode.trace))]
            seeds += [seed] * len(episode.trace)
            results += [None] * (len(episode.trace) - 1) + ["success" if episode.success else episode.failure]
            seed += 1
        truth = [_truth(s["oracle"]) for s in taken]
        pixels = screenshots_to_tensor([s["screenshot"] for s in taken], image_size)
        frames_u8 = (pixels * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        acted = [action_fields(s["action"]) | ({"result": r} if r is not None else {})
                 for s, r in zip(taken, results)] if played else []  # fmt: skip
        streams.append(Stream(task, frames_u8, [s["instruction"] for s in taken], new, seeds, truth,
                              [float(s["dt"]) for s in taken], acted))  # fmt: skip
    return streams


def action_fields(action) -> dict:
    """An action as the page shows it: type, point, a drag's release point (x2, y2), the text typed or key pressed."""
    fields = {"action": action.type, "x": action.x, "y": action.y}
    if action.type == "drag":
        fields |= {"x2": action.x2, "y2": action.y2}
    return fields | ({"text": action.text} if action.text else {})


def _truth(oracle) -> dict | None:
    """The oracle's step as the page shows it (None where the oracle could not tell)."""
    if oracle is None:
        return None
    box = list(oracle.target_box) if oracle.target_box else None
    return action_fields(oracle.action) | {"box": box}


def stream_inputs(model, streams: list[Stream]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """images (T, B, 3, H, W) float32 in [0, 1] and the model's text inputs by name (`model.text_inputs`):
    tokens (T, B, L) int64, and a match_text model's strip (T, B, S, *STRIP) float32, for a batch of
    equal-length streams."""
    steps = len(streams[0])
    images = np.stack([s.frames for s in streams], 1).transpose(0, 1, 4, 2, 3).astype(np.float32) / 255
    per_stream = [model.text_inputs([s.task] * steps, s.instructions) for s in streams]
    return images, {name: np.stack([t[name].numpy() for t in per_stream], 1) for name in per_stream[0]}


def text_by_name(text: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The text inputs by name (stream_inputs'); a bare array is the tokens alone."""
    return text if isinstance(text, dict) else {"tokens": text}


def stream_dt(streams: list[Stream]) -> np.ndarray:
    """(T, B) float32: each frame's elapsed time (1 where a stream has none recorded)."""
    return np.stack([np.asarray(s.dt or [1.0] * len(s), np.float32) for s in streams], 1)


def reset_mask(streams: list[Stream], reset_at_new_episode: bool) -> np.ndarray:
    """(T, B) bool: where the state is zeroed before the step (never at step 0: it starts at zeros)."""
    mask = np.array([s.new_episode for s in streams]).T.copy()
    mask[0] = False
    return mask if reset_at_new_episode else np.zeros_like(mask)


@dataclass
class Trace:
    """Outputs per step: action_logits (T,B,A), coords (T,B,2), tau [per layer (T,B,k)], state [(T,B,H)];
    click_logits (T,B,cells): the click map, where the model gives it (PyTorch's Lite; not the ONNX step),
    cells row by row over `map_hw` (rows, columns; None: a square map)."""

    action_logits: np.ndarray
    coords: np.ndarray
    tau: list[np.ndarray]
    state: list[np.ndarray]
    click_logits: np.ndarray | None = None
    map_hw: tuple[int, int] | None = None
    # the optional heads' outputs (T, B, ...) by name (onnx_step.HEADS; PyTorch's also the release map, release_logits,
    # and with click_offset each map's point per peak cell, click_points / release_points (T, B, cells, 2))
    heads: dict[str, np.ndarray] = field(default_factory=dict)

    def first(self, steps: int) -> Trace:
        """The trace of the first `steps` steps."""
        return Trace(self.action_logits[:steps], self.coords[:steps], [t[:steps] for t in self.tau],
                     [h[:steps] for h in self.state], None if self.click_logits is None else self.click_logits[:steps],
                     self.map_hw, {k: v[:steps] for k, v in self.heads.items()})  # fmt: skip

    def taus(self) -> np.ndarray:
        """(T, B, layers, k); zero layers gives (T, B, 0, 1)."""
        if not self.tau:
            return np.zeros(self.coords.shape[:2] + (0, 1), np.float32)
        return np.stack(self.tau, 2)


@torch.no_grad()
def run_torch(model, images: np.ndarray, text: np.ndarray | dict[str, np.ndarray], resets: np.ndarray | None = None,
              dt: np.ndarray | None = None) -> Trace:  # fmt: skip
    """The model's own step API over (T, B, ...) inputs (text: stream_inputs' by name, or the tokens alone),
    state carried (zeroed where `resets`), each step over its elapsed time `dt` (T, B) (None: the model's default, 1)."""
    steps, batch = images.shape[:2]
    text = text_by_name(text)
    state = model.initial_state(batch)
    out_steps = []
    for t in range(steps):
        if resets is not None and resets[t].any():
            keep = torch.from_numpy(~resets[t]).float().unsqueeze(1)
            state = [h * keep for h in state]
        step_dt = None if dt is None else torch.from_numpy(dt[t])
        out = model.step(torch.from_numpy(images[t]), **{k: torch.from_numpy(v[t]) for k, v in text.items()},
                         state=state, dt=step_dt)  # fmt: skip
        state = out["state"]
        out_steps.append(out)
    return Trace(
        np.stack([o["action_logits"].numpy() for o in out_steps]),
        np.stack([o["coords"].numpy() for o in out_steps]),
        [np.stack([o["tau_values"][i].numpy() for o in out_steps]) for i in range(len(out_steps[0]["tau_values"]))],
        [np.stack([o["state"][i].numpy() for o in out_steps]) for i in range(len(out_steps[0]["state"]))],
        np.stack([o["click_logits"].numpy() for o in out_steps]) if "click_logits" in out_steps[0] else None,
        getattr(model, "map_hw", None),
        {name: np.stack([o[name].numpy() for o in out_steps])
         for name in (*HEADS, "release_logits", "click_points", "release_points") if name in out_steps[0]},
    )


def run_onnx(session, images: np.ndarray, text: np.ndarray | dict[str, np.ndarray], layers: int, state_sizes: list[int],
             resets: np.ndarray | None = None, dt: np.ndarray | None = None) -> Trace:  # fmt: skip
    """An onnxruntime session of the exported step over (T, B, ...) inputs, feeding its state back.

    `layers`: how many tau_i outputs it has; `state_sizes`: the size of each state_i; `dt` (T, B): each
    step's elapsed time, fed to a graph with a `dt` input (None: 1; a graph without one runs at 1)."""
    steps, batch = images.shape[:2]
    text = text_by_name(text)
    timed = any(i.name == "dt" for i in session.get_inputs())  # exports before lnn-export/2 have none
    dt = np.ones((steps, batch), np.float32) if dt is None else dt.astype(np.float32)
    state = [np.zeros((batch, n), np.float32) for n in state_sizes]
    names = [o.name for o in session.get_outputs()]
    heads = [name for name in HEADS if name in names]
    logits, coords, taus, states, head_steps = [], [], [], [], []
    for t in range(steps):
        if resets is not None and resets[t].any():
            keep = (~resets[t]).astype(np.float32)[:, None]
            state = [h * keep for h in state]
        feeds = {"image": images[t]} | {k: v[t] for k, v in text.items()} | {f"state_{i}": h for i, h in enumerate(state)}
        if timed:
            feeds["dt"] = dt[t]
        out = session.run(None, feeds)
        logits.append(out[0])
        coords.append(out[1])
        head_steps.append(out[2 : 2 + len(heads)])
        first = 2 + len(heads)  # the graph's order: action_logits, coords, heads, τ, state (onnx_step.io_names)
        taus.append(out[first : first + layers])
        state = list(out[first + layers :])
        states.append(state)
    return Trace(np.stack(logits), np.stack(coords), [np.stack([t[i] for t in taus]) for i in range(layers)],
                 [np.stack([s[i] for s in states]) for i in range(len(state_sizes))],
                 heads={name: np.stack([h[i] for h in head_steps]) for i, name in enumerate(heads)})  # fmt: skip
