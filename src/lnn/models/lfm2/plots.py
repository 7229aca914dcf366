"""τ of the liquid layers of an LFM2-Liquid model: per frame (as Lite's) and per token.

`plot_tau_episode(out, path)` draws, for one episode of `policy.forward` outputs: the mean τ of each
liquid layer per frame (top), and τ per prompt token of every frame, one row per liquid layer (bottom).
`plot_tau_tokens(tau, path, labels)` draws τ along a generated sequence (`generate(..., return_dict=True)`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_tau_episode(out: dict, path: str | Path, layers: list[int], episode: int = 0, title: str = "") -> None:
    """τ of episode `episode` of a forward output: per frame and layer, and per token of each frame."""
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
    import textwrap

    fig.suptitle(textwrap.fill(title or "LFM2-Liquid: τ per merged layer, per frame and per token", 110), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_tau_tokens(tau: dict[int, torch.Tensor], path: str | Path, labels: list[str] | None = None, row: int = 0,
                    mask: torch.Tensor | None = None, title: str = "") -> None:  # fmt: skip
    """τ per token of one sequence: tau {layer: (B, N, τ-size)} -> a line per layer (mean over neurons)."""
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
