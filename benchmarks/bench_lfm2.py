"""LFM2-VL-450M (random weights) with and without merged liquid layers: parameters, prefill and decode speed.

    python benchmarks/bench_lfm2.py                       # CPU: prefill 256 tokens, decode 16, table to experiments/perf/
    python benchmarks/bench_lfm2.py --device cuda         # on a GPU (prefill 1024, decode 64 by default there)
    python benchmarks/bench_lfm2.py --quick               # the tiny preset: a smoke run of this script

One base model (the published 450M architecture, 450,822,656 parameters, seeded random weights) is
measured unmerged and with liquid layers merged into ShortConv layers 0, 3 and 15, the variants
swapped in and out of the *same* base, in interleaved rounds (medians), so every ratio comes from
this run. Variants: `scan` (the default: prefill as a parallel scan, no Python loop over tokens) and
`full` (W_rec·h in the cell: the prefill steps token by token), with the rk4 and semi_implicit solvers.
Prefill: one forward over B × N tokens of text filling the cache. Decode: tokens/s of single-token
forwards on that cache (B rows each). On CPU the clock is this process's CPU time with 1 thread, so
other jobs on a shared machine disturb it little; the liquid branches are also timed alone.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from lnn.models.lfm2 import LiquidContext, LiquidShortConv, build_base, merge_liquid_layers

LAYERS = [0, 3, 15]


def machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    return f"{model}, {torch.get_num_threads()} threads"


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def unmerge(base) -> None:
    for layer in base.model.language_model.layers:
        if isinstance(getattr(layer, "conv", None), LiquidShortConv):
            layer.conv = layer.conv.shortconv


def set_variant(base, variant: str, layers: list[int], size: int, device: str) -> int:
    """Merge the variant's liquid layers into base (after removing any); returns the parameters added."""
    unmerge(base)
    if variant == "unmerged":
        return 0
    recurrence, solver = variant.split("/")
    branches = merge_liquid_layers(base, layers, LiquidContext(), size, recurrence=recurrence, solver=solver)
    for b in branches.values():
        b.to(device)
        torch.nn.init.normal_(b.mix, std=0.1)  # as after training (the compute is the same at 0)
    return sum(p.numel() for b in branches.values() for p in b.parameters())


def clock(device: str):
    """CPU: this process's CPU time (1 thread), which other jobs on a shared machine barely disturb; CUDA: wall time."""
    return time.perf_counter if device == "cuda" else time.process_time


@torch.inference_mode()
def measure(base, ids: torch.Tensor, decode: int, device: str) -> tuple[float, list[float]]:
    """(prefill seconds, [seconds of each decoded token])."""
    now = clock(device)
    sync(device)
    start = now()
    out = base(input_ids=ids, use_cache=True)
    sync(device)
    prefill = now() - start
    cache, token, steps = out.cache, out.logits[:, -1:].argmax(-1), []
    for _ in range(decode):
        start = now()
        out = base(input_ids=token, cache=cache, use_cache=True)
        token = out.logits[:, -1:].argmax(-1)
        sync(device)
        steps.append(now() - start)
    return prefill, steps


@torch.inference_mode()
def branch_cost(base, device: str, tokens: int = 1, batch: int = 1, repeats: int = 200) -> float:
    """Seconds of all merged liquid branches alone on (batch, tokens) inputs: their share of a step."""
    branches = [layer.conv.liquid for layer in base.model.language_model.layers if isinstance(getattr(layer, "conv", None), LiquidShortConv)]
    if not branches:
        return 0.0
    width = base.config.text_config.hidden_size
    x = torch.randn(batch, tokens, width, device=device, dtype=base.dtype)
    now, times = clock(device), []
    for _ in range(repeats):
        sync(device)
        start = now()
        for branch in branches:
            branch(x)
        sync(device)
        times.append(now() - start)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--preset", default="lfm2_vl_450m")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prefill", type=int, default=None, help="prompt tokens (default: 256 on CPU, 1024 on CUDA)")
    p.add_argument("--decode", type=int, default=None, help="decoded tokens (default: 16 on CPU, 64 on CUDA)")
    p.add_argument("--liquid-size", type=int, default=256)
    p.add_argument("--variants", nargs="+", default=["unmerged", "scan/rk4", "scan/semi_implicit", "full/rk4"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1: CPU-time clock, stable on a shared machine)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--quick", action="store_true", help="the tiny preset, short sequences")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "experiments" / "perf"))
    args = p.parse_args(argv)
    cuda = args.device == "cuda"
    if args.quick:
        args.preset, args.rounds = "tiny", 2
    prefill = args.prefill or (64 if args.quick else 1024 if cuda else 256)
    decode = args.decode or (8 if args.quick else 64 if cuda else 16)
    layers = LAYERS if args.preset == "lfm2_vl_450m" else [0, 3]

    if args.device == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    base = build_base(args.preset, dtype=args.dtype).to(args.device).eval()
    params = sum(p.numel() for p in base.parameters())
    name = machine(args.device)
    print(f"# LFM2-VL {args.preset} ({params:,} parameters, {args.dtype}, random weights) on {name}, torch {torch.__version__}")
    print(f"# built in {time.perf_counter() - started:.0f} s; liquid layers {layers}, {args.liquid_size} neurons each; "
          f"B={args.batch}, prefill {prefill} tokens, decode {decode} tokens, {args.rounds} rounds\n", flush=True)  # fmt: skip
    vocab = base.config.text_config.vocab_size
    ids = torch.randint(16, vocab, (args.batch, prefill), generator=torch.Generator().manual_seed(1)).to(args.device)

    added, prefills, tokens, branches = {}, {v: [] for v in args.variants}, {v: [] for v in args.variants}, {}
    for variant in args.variants:  # warm-up, parameter count, and the cost of the liquid branches alone
        added[variant] = set_variant(base, variant, layers, args.liquid_size, args.device)
        measure(base, ids[:, : min(prefill, 32)], 2, args.device)
        branches[variant] = (branch_cost(base, args.device, 1, args.batch),
                             branch_cost(base, args.device, prefill, args.batch, repeats=5))
    for r in range(args.rounds):
        for variant in args.variants:
            set_variant(base, variant, layers, args.liquid_size, args.device)
            pre, steps = measure(base, ids, decode, args.device)
            prefills[variant].append(pre)
            tokens[variant] += steps
            print(f"  round {r + 1} {variant:<20} prefill {ids.numel() / pre:9.1f} tok/s   decode "
                  f"{args.batch / statistics.median(steps):7.2f} tok/s", flush=True)  # fmt: skip

    # medians over rounds (prefill) and over every decoded token of every round (decode)
    med = {v: (ids.numel() / statistics.median(prefills[v]), args.batch / statistics.median(tokens[v])) for v in args.variants}
    ref_pre, ref_dec = med.get("unmerged", (None, None))
    header = ("| variant | params added | prefill tok/s | vs unmerged | decode tok/s | vs unmerged | decode slowdown "
              "| liquid alone: prefill ms (share) | liquid alone: decode ms/token (share) |")  # fmt: skip
    rows = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for v, (pre, dec) in med.items():
        ratio_p = f"{pre / ref_pre:.3f}" if ref_pre else "—"
        ratio_d = f"{dec / ref_dec:.3f}" if ref_dec else "—"
        slow = f"{100 * (ref_dec / dec - 1):+.1f}%" if ref_dec else "—"
        alone_dec, alone_pre = branches[v]
        share_dec = f"{100 * alone_dec * ref_dec / args.batch:.1f}%" if ref_dec else "—"
        share_pre = f"{100 * alone_pre * ref_pre / ids.numel():.1f}%" if ref_pre else "—"
        rows.append(f"| {v} | {added[v]:,} ({100 * added[v] / params:.2f}%) | {pre:.1f} | {ratio_p} | {dec:.2f} | {ratio_d} "
                    f"| {slow} | {1000 * alone_pre:.1f} ({share_pre}) | {1000 * alone_dec:.2f} ({share_dec}) |")  # fmt: skip
    print("\n" + "\n".join(rows))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:60]
    path = out / f"lfm2_{args.preset}_{args.device}_{slug}.md"
    path.write_text(
        f"# LFM2-VL {args.preset} with liquid layers {layers} merged: {name}, torch {torch.__version__}\n\n"
        f"`python benchmarks/bench_lfm2.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n\n"
        f"{params:,} parameters unmerged ({args.dtype}, random weights); {args.liquid_size} neurons per liquid layer; "
        f"B={args.batch}, prefill {prefill} tokens, decode {decode} tokens; {args.rounds} interleaved rounds; "
        f"{'CPU time of this process' if args.device == 'cpu' else 'wall time'}; prefill: median over rounds, decode: "
        "median over every decoded token. Decode slowdown = unmerged tok/s ÷ merged tok/s − 1. 'Liquid branches alone': "
        "the merged branches' compute on the prefill (median of 5) and on one decoded token (median of 200), timed "
        "by themselves, and their share of the unmerged model's prefill / decode step — the overhead without the "
        "noise of the whole model.\n\n" + "\n".join(rows) + "\n"
    )  # fmt: skip
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
