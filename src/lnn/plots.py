"""τ and episode plots, used by training, the export and the agent (numpy + matplotlib; torch for LFM2's).

    plot_tau_steps        τ of each liquid layer over the steps of episodes, under the frames the model saw
                          (its click point drawn on each frame, its action green when right, red when wrong)
    plot_tau_by_task      the distribution of τ per layer across task families
    plot_trajectories     hidden-state trajectories: each layer's state projected on its 2 main axes (PCA)
    plot_tau_evolution    τ per layer over training epochs (median and interquartile range)
    plot_success          closed-loop success per task with 95% CIs (rows of lnn.rollout.success_table)
    plot_tau_episode      LFM2-Liquid: τ per frame and per prompt token of one episode of `policy.forward`
    plot_tau_tokens       LFM2-Liquid: τ along a generated sequence (`generate(..., return_dict=True)`)

The first four take `EpisodeRecord`s; τ arrays are (T, layers, k) with k = 1 (one τ per sample) or
H (one per neuron: the plots show the neurons' mean and their 10–90% band).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

LAYER_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


@dataclass
class EpisodeRecord:
    task: str
    frames: list[np.ndarray]  # (H, W, 3) uint8 per step
    tau: np.ndarray  # (T, layers, k)
    actions: list[str]  # the model's action per step
    points: list[tuple[float, float] | None]  # its click point (fractions of the frame), None if no click
    correct: list[bool | None] = field(default_factory=list)  # right per the ground truth, None: unknown
    new_episode: list[bool] = field(default_factory=list)
    states: np.ndarray | None = None  # (T, layers, H)
    label: str = ""  # e.g. "seeds 20000000–20000004" or "seed 10000003: success"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _tau_band(tau: np.ndarray):
    """(T, k) -> mean, low, high over k (low = high = mean for k == 1)."""
    if tau.shape[-1] == 1:
        return tau[:, 0], None, None
    return tau.mean(-1), np.percentile(tau, 10, axis=-1), np.percentile(tau, 90, axis=-1)


def _draw_episode(fig, grid_spec, rec: EpisodeRecord, tau_bounds: tuple[float, float], steps: int, legend: bool):
    """One episode: a strip of frames over a τ plot, sharing the step axis."""
    sub = grid_spec.subgridspec(2, 1, height_ratios=[1.0, 1.6], hspace=0.05)
    ax_frames = fig.add_subplot(sub[0])
    ax_tau = fig.add_subplot(sub[1], sharex=ax_frames)
    for t, frame in enumerate(rec.frames):
        ax_frames.imshow(frame, extent=(t - 0.45, t + 0.45, 0.1, 1.0), interpolation="nearest", aspect="auto")
        point = rec.points[t] if t < len(rec.points) else None
        if point is not None:
            x, y = point
            ax_frames.plot(t - 0.45 + 0.9 * x, 1.0 - 0.9 * y, "o", ms=5, mfc="none", mec="red", mew=1.5)
        ok = rec.correct[t] if t < len(rec.correct) else None
        color = {True: "green", False: "red", None: "black"}[ok]
        ax_frames.text(t, 0.05, rec.actions[t], ha="center", va="top", fontsize=7, color=color)
    ax_frames.set_ylim(-0.12, 1.02)
    ax_frames.set_xlim(-0.6, steps - 0.4)
    ax_frames.axis("off")
    ax_frames.set_title(f"{rec.task}" + (f" — {rec.label}" if rec.label else ""), fontsize=10, loc="left")

    steps_axis = np.arange(len(rec.frames))
    for i in range(rec.tau.shape[1]):
        mean, low, high = _tau_band(rec.tau[:, i])
        color = LAYER_COLORS[i % len(LAYER_COLORS)]
        ax_tau.plot(steps_axis, mean, "-o", ms=3, color=color, label=f"layer {i}")
        if low is not None:
            ax_tau.fill_between(steps_axis, low, high, color=color, alpha=0.15)
    for t, new in enumerate(rec.new_episode):
        if new and t > 0:
            ax_tau.axvline(t - 0.5, color="grey", ls="--", lw=0.8)
    lo, hi = tau_bounds
    ax_tau.set_ylim(lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo))
    ax_tau.axhline(lo, color="grey", lw=0.5)
    ax_tau.axhline(hi, color="grey", lw=0.5)
    ax_tau.set_ylabel("τ (in input steps)")
    ax_tau.set_xlabel("step")
    ax_tau.set_xticks(range(steps))
    ax_tau.grid(alpha=0.3)
    if legend:
        ax_tau.legend(fontsize=7, ncol=min(4, max(1, rec.tau.shape[1])), loc="upper right")


def plot_tau_steps(records: list[EpisodeRecord], tau_bounds: tuple[float, float], path: Path, title: str = "") -> None:
    """τ of each layer over the steps of each episode, shown under its frames; one row per episode."""
    plt = _plt()
    steps = max(8, max(len(r.frames) for r in records))  # short episodes keep the same scale
    fig = plt.figure(figsize=(0.8 * steps + 1.5, 3.0 * len(records) + 1.6))
    grid = fig.add_gridspec(len(records), 1, hspace=0.45)
    for i, rec in enumerate(records):
        _draw_episode(fig, grid[i], rec, tau_bounds, steps, legend=True)
    per = "one τ per sample" if records[0].tau.shape[-1] == 1 else "mean over neurons, band: 10–90%"
    fig.suptitle((title or "τ of each liquid layer over the steps of recorded episodes")
                 + f"\nτ: {per}; y range = τ bounds {tau_bounds[0]:g}–{tau_bounds[1]:g}; dashed line: a new episode"
                 "\nframes: what the model saw; red circle: its click point; its action in green when right, "
                 "red when wrong", fontsize=9)  # fmt: skip
    fig.subplots_adjust(top=1 - 1.25 / fig.get_figheight(), bottom=0.45 / fig.get_figheight(), left=0.08, right=0.98)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_tau_by_task(records: list[EpisodeRecord], tau_bounds: tuple[float, float], path: Path, title: str = "") -> None:
    """Box plots of τ (all steps, all neurons) per task family, one panel per layer."""
    plt = _plt()
    tasks = sorted({r.task for r in records})
    layers = records[0].tau.shape[1]
    fig, axes = plt.subplots(layers, 1, figsize=(max(7.0, 1.1 * len(tasks) + 2), 2.3 * layers + 1.0),
                             sharex=True, squeeze=False)  # fmt: skip
    counts = {t: sum(len(r.frames) for r in records if r.task == t) for t in tasks}
    for i in range(layers):
        ax = axes[i, 0]
        data = [np.concatenate([r.tau[:, i].ravel() for r in records if r.task == t]) for t in tasks]
        box = ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=True, flierprops={"markersize": 2})
        for patch in box["boxes"]:
            patch.set_facecolor(LAYER_COLORS[i % len(LAYER_COLORS)])
            patch.set_alpha(0.45)
        ax.set_ylim(*tau_bounds)
        ax.set_ylabel(f"layer {i}: τ")
        ax.grid(alpha=0.3, axis="y")
    axes[-1, 0].set_xticks(range(1, len(tasks) + 1), [f"{t}\n({counts[t]} steps)" for t in tasks], rotation=30,
                           ha="right", fontsize=8)  # fmt: skip
    axes[-1, 0].set_xlabel("task family")
    fig.suptitle(title or f"Distribution of τ per liquid layer across task families (boxes: quartiles, whiskers: "
                 f"1.5 IQR; y range = τ bounds {tau_bounds[0]:g}–{tau_bounds[1]:g})", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of x projected on their two main axes, and the share of variance each explains."""
    centred = x - x.mean(0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2 / max(float((s**2).sum()), 1e-12)
    comps = vt[:2] if vt.shape[0] >= 2 else np.vstack([vt, np.zeros_like(vt)])[:2]
    return centred @ comps.T, np.pad(var[:2], (0, max(0, 2 - len(var[:2]))))


def plot_trajectories(records: list[EpisodeRecord], path: Path, title: str = "") -> None:
    """Each layer's hidden state over the steps, projected on the layer's first two principal axes."""
    plt = _plt()
    layers = records[0].states.shape[1]
    tasks = sorted({r.task for r in records})
    cmap = plt.get_cmap("tab10")
    colors = {t: cmap(i % 10) for i, t in enumerate(tasks)}
    cols = min(layers, 2)
    rows = -(-layers // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 5.0 * rows + 0.6), squeeze=False)
    for i in range(layers):
        ax = axes[i // cols, i % cols]
        all_states = np.concatenate([r.states[:, i] for r in records])
        proj, var = pca_2d(all_states)
        start = 0
        for r in records:
            p = proj[start : start + len(r.frames)]
            start += len(r.frames)
            ax.plot(p[:, 0], p[:, 1], "-", color=colors[r.task], alpha=0.7, lw=1.2)
            ax.plot(p[0, 0], p[0, 1], "o", color=colors[r.task], ms=5)
            ax.plot(p[-1, 0], p[-1, 1], "s", color=colors[r.task], ms=5, mec="k")
        ax.set_xlabel(f"principal axis 1 ({100 * var[0]:.0f}% of variance)")
        ax.set_ylabel(f"principal axis 2 ({100 * var[1]:.0f}% of variance)")
        ax.set_title(f"layer {i} (state of {all_states.shape[1]} neurons)", fontsize=10)
        ax.grid(alpha=0.3)
    for j in range(layers, rows * cols):
        axes[j // cols, j % cols].axis("off")
    handles = [plt.Line2D([], [], color=colors[t], lw=2, label=t) for t in tasks]
    handles += [plt.Line2D([], [], ls="", marker="o", color="grey", label="first step"),
                plt.Line2D([], [], ls="", marker="s", color="grey", mec="k", label="last step")]  # fmt: skip
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=8)
    fig.suptitle(title or "Hidden-state trajectories: each liquid layer's state over the steps of each episode, "
                 "on the layer's two main axes (PCA over all steps shown)", fontsize=10)  # fmt: skip
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(handles) > 6), 1, 0.96))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def tau_summary(records: list[EpisodeRecord]) -> list[dict]:
    """Per layer: median and quartiles of τ over every step (and neuron) of the records."""
    layers = records[0].tau.shape[1]
    out = []
    for i in range(layers):
        values = np.concatenate([r.tau[:, i].ravel() for r in records])
        q1, med, q3 = np.percentile(values, [25, 50, 75])
        out.append({"layer": i, "median": float(med), "q1": float(q1), "q3": float(q3),
                    "min": float(values.min()), "max": float(values.max())})  # fmt: skip
    return out


def plot_tau_evolution(history: list[dict], tau_bounds: tuple[float, float], path: Path) -> None:
    """τ per layer over training: history = [{"epoch": e, "layers": tau_summary(...)}, ...]."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    epochs = [h["epoch"] for h in history]
    layers = len(history[0]["layers"])
    for i in range(layers):
        color = LAYER_COLORS[i % len(LAYER_COLORS)]
        med = [h["layers"][i]["median"] for h in history]
        ax.plot(epochs, med, "-o", color=color, ms=4, label=f"layer {i}")
        ax.fill_between(epochs, [h["layers"][i]["q1"] for h in history], [h["layers"][i]["q3"] for h in history],
                        color=color, alpha=0.15)  # fmt: skip
    ax.set_ylim(*tau_bounds)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel("τ on validation episodes (in input steps)")
    ax.set_title("How τ evolved during training: median per liquid layer, band = interquartile range", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_success(rows: list[dict], path: Path, title: str) -> None:
    plt = _plt()
    names = [r["task"] for r in rows]
    rate = [100 * r["success"] for r in rows]
    err = [[100 * (r["success"] - r["ci_low"]) for r in rows], [100 * (r["ci_high"] - r["success"]) for r in rows]]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    colors = ["#888" if n.startswith("[") else "#2b6cb0" for n in names]
    ax.barh(names, rate, xerr=err, color=colors, capsize=3)
    for y, (value, r) in enumerate(zip(rate, rows)):
        ax.text(min(value + 2, 88), y, f"{value:.0f}% (n={r['episodes']})", va="center", fontsize=8)
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("closed-loop success, % of episodes (bars: 95% CI)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_tau_episode(out: dict, path: str | Path, layers: list[int], episode: int = 0, title: str = "") -> None:
    """τ of episode `episode` of a forward output: per frame and layer, and per token of each frame."""
    import textwrap

    import torch

    plt = _plt()
    frames = out["tau_values"][0].shape[1]
    mask = out["token_mask"][episode].bool()  # (T, N)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), gridspec_kw={"height_ratios": [1, 1.3]})
    for j, layer in enumerate(layers):
        tau = out["tau_values"][j][episode].detach().float()  # (T, τ-size)
        mean, low, high = tau.mean(-1), tau.quantile(0.1, -1), tau.quantile(0.9, -1)
        x = np.arange(1, frames + 1)
        top.plot(x, mean.numpy(), "o-", label=f"layer {layer}")
        top.fill_between(x, low.numpy(), high.numpy(), alpha=0.2)
    top.set_xlabel("frame (step of the episode)")
    top.set_ylabel("τ (mean, 10–90% of neurons)")
    top.set_xticks(np.arange(1, frames + 1))
    top.legend(fontsize=8)
    rows = []
    for j in range(len(layers)):
        tokens = out["tau_tokens"][j][episode].float()  # (T, N)
        rows.append(torch.cat([tokens[t][mask[t]] for t in range(frames)]).numpy())
    image = bottom.imshow(np.stack(rows), aspect="auto", interpolation="nearest", cmap="viridis")
    edge = 0
    for t in range(frames):
        edge += int(mask[t].sum())
        bottom.axvline(edge - 0.5, color="white", lw=1)
    bottom.set_yticks(range(len(layers)), [f"layer {i}" for i in layers])
    bottom.set_xlabel("prompt tokens of each frame (image tokens, then the instruction), frames separated by lines")
    fig.colorbar(image, ax=bottom, label="τ (mean over neurons)")
    fig.suptitle(textwrap.fill(title or "LFM2-Liquid: τ per merged layer, per frame and per token", 110), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_tau_tokens(tau: dict[int, torch.Tensor], path: str | Path, labels: list[str] | None = None, row: int = 0,
                    mask: torch.Tensor | None = None, title: str = "") -> None:  # fmt: skip
    """τ per token of one sequence: tau {layer: (B, N, τ-size)} -> a line per layer (mean over neurons)."""
    import torch

    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3))
    keep = mask[row].bool() if mask is not None else None
    for layer, values in tau.items():
        series = values[row].float().mean(-1)
        if keep is not None:
            series = series[torch.cat([keep, torch.ones(series.shape[0] - keep.shape[0], dtype=torch.bool)])]
        ax.plot(series.numpy(), lw=1, label=f"layer {layer}")
    if labels and len(labels) <= 80:
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    ax.set_xlabel("token")
    ax.set_ylabel("τ (mean over neurons)")
    ax.legend(fontsize=8)
    ax.set_title(title or "τ along the sequence")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
