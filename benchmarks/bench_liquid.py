"""Speed and memory of the liquid stack against references, measured in one run.

    python benchmarks/bench_liquid.py                      # CPU grid, table to experiments/perf/
    python benchmarks/bench_liquid.py --device cuda        # on a GPU
    python benchmarks/bench_liquid.py --quick              # a smoke run (B=16, T=32, rk4)

Variants: lnn (this project's stack, fused path), lnn_reference (its plain autograd loop), seed (the seed-style reference, benchmarks/reference.py),
ncps CfC and LTC, torchdiffeq's rk4 over the same ODE, nn.LSTM (cuDNN on GPU). A training step is
forward + backward + SGD on a (B, T, 256) batch; a streaming step is one frame at B=1, no grad.
Every ratio is against the seed-style reference with the same solver, from this same run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import SeedStyleStack  # noqa: E402

from lnn.liquid import LiquidStack  # noqa: E402

WIDTH, LAYERS = 256, 4


def machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    return f"{model}, {torch.get_num_threads()} threads"


def total_memory_bytes() -> int:
    """MemTotal of this machine (Linux; the benchmark runs alone, and memory freed by an earlier variant
    stays with this process, so MemAvailable would understate it); a huge number elsewhere."""
    try:
        line = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal:"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration):
        return 1 << 62


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


class SavedBytes:
    """Bytes autograd keeps for backward (activation memory); on CUDA the allocator's peak instead."""

    def __init__(self):
        self.total, self.seen = 0, set()

    def __enter__(self):
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self.hooks.__enter__()
        return self

    def pack(self, t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in self.seen:  # weights are saved once per use: count them once
            self.seen.add(storage.data_ptr())
            self.total += storage.nbytes()
        return t

    def __exit__(self, *exc):
        self.hooks.__exit__(*exc)


class Stacked(nn.Module):
    """Layers of a (B, T, D) -> (B, T, H) sequence model with its own output convention."""

    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
            x = x[0] if isinstance(x, tuple) else x
        return x


class TorchdiffeqStack(nn.Module):
    """torchdiffeq's rk4 (3/8 rule) over the same ODE, one odeint call per input step and layer."""

    def __init__(self, stack: LiquidStack):
        super().__init__()
        self.stack = stack

    def forward(self, x):
        from torchdiffeq import odeint

        grid = torch.tensor([0.0, 1.0], device=x.device)
        for layer, norm in zip(self.stack.layers, self.stack.norms):
            cell = layer.cell
            u = cell.project_input(x)
            h, outs = x.new_zeros(x.shape[0], cell.hidden_size), []
            for t in range(x.shape[1]):
                def f(_s, y, u_t=u[:, t]):
                    target, tau = cell._target_tau(u_t, y)
                    return (target - y) / tau
                h = odeint(f, h, grid, method="rk4", options={"step_size": 1.0})[-1]
                outs.append(h)
            x = norm(torch.stack(outs, 1))
        return x


def build(variant: str, solver: str, device: str) -> nn.Module | None:
    torch.manual_seed(0)
    impl = "reference" if variant == "lnn_reference" else "auto"
    lnn_stack = LiquidStack(WIDTH, WIDTH, LAYERS, solver=solver, tau_per="neuron", impl=impl)
    if variant in ("lnn", "lnn_reference"):
        model = lnn_stack
    elif variant == "seed":
        if solver not in ("euler", "midpoint", "rk4"):
            return None
        model = SeedStyleStack(WIDTH, WIDTH, LAYERS, solver=solver).load_from(lnn_stack)
    elif variant == "torchdiffeq":
        if solver != "rk4":
            return None
        model = TorchdiffeqStack(lnn_stack)
    elif variant in ("ncps_cfc", "ncps_ltc"):
        from ncps.torch import CfC, LTC

        if solver != "rk4":  # solver-independent: listed once, against the rk4 reference
            return None
        cls = CfC if variant == "ncps_cfc" else LTC
        model = Stacked([cls(WIDTH, WIDTH, batch_first=True, return_sequences=True) for _ in range(LAYERS)])
    elif variant == "lstm":
        if solver != "rk4":
            return None
        model = nn.LSTM(WIDTH, WIDTH, LAYERS, batch_first=True)
    else:
        raise ValueError(variant)
    return model.to(device)


def outputs(model, x):
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


def time_train_step(model, batch, steps, device, repeats, budget_s) -> tuple[float, int]:
    """Median ms of forward + backward + SGD, and bytes saved for backward (or peak CUDA memory)."""
    x = torch.randn(batch, steps, WIDTH, device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    times, memory = [], 0
    for i in range(repeats + 1):  # the first is warm-up
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync(device)
        start = time.perf_counter()
        with SavedBytes() as saved:
            loss = outputs(model, x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        elapsed = time.perf_counter() - start
        memory = torch.cuda.max_memory_allocated() if device == "cuda" else saved.total
        if i:
            times.append(elapsed)
        if sum(times) + elapsed > budget_s:
            break
    return 1000 * statistics.median(times or [elapsed]), memory


@torch.no_grad()
def time_stream_step(variant, model, device, repeats=200) -> float | None:
    """Median ms of one frame through every layer at B=1, state carried (liquid stacks only)."""
    if variant not in ("lnn", "lnn_reference", "seed"):
        return None
    x = torch.randn(1, WIDTH, device=device)
    if variant != "seed":
        state = model.initial_state(1, x)
        step = lambda: model(x[:, None], state)  # noqa: E731
    else:
        hs = [x.new_zeros(1, WIDTH) for _ in model.cells]

        def step():
            y = x
            for i, (cell, norm) in enumerate(zip(model.cells, model.norms)):
                hs[i] = cell(y, hs[i])
                y = norm(hs[i])
            return y

    times = []
    for _ in range(repeats + 10):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[10:])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, nargs="+", default=[16, 256])
    p.add_argument("--steps", type=int, nargs="+", default=[32, 256])
    p.add_argument("--solvers", nargs="+", default=["euler", "midpoint", "rk4", "semi_implicit"])
    p.add_argument("--variants", nargs="+", default=["lnn", "lnn_reference", "seed", "ncps_cfc", "ncps_ltc", "torchdiffeq", "lstm"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", type=float, default=30.0, help="seconds per measurement before it stops repeating")
    p.add_argument("--quick", action="store_true", help="B=16, T=32, rk4 only")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "experiments" / "perf"))
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.steps, args.solvers, args.repeats = [16], [32], ["rk4"], 3

    name = machine(args.device)
    print(f"# liquid stack {LAYERS}x{WIDTH} on {name} (torch {torch.__version__})\n")
    header = "| solver | B | T | variant | train ms | vs seed | saved/peak MB | stream ms (B=1) | vs seed |"
    rows = [header, "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    print(header, flush=True)
    per_element: dict[str, float] = {}  # saved bytes per (B·T) of each variant: a CPU run that would not fit is skipped
    for solver in args.solvers:
        for batch in args.batch:
            for steps in args.steps:
                seed_ms = seed_stream = None
                for variant in ["seed"] + [v for v in args.variants if v != "seed"]:
                    model = build(variant, solver if variant != "seed" or solver != "semi_implicit" else solver, args.device)
                    if model is None:
                        continue
                    need = per_element.get(variant, 0.0) * batch * steps
                    if args.device == "cpu" and need > 0.6 * total_memory_bytes():
                        row = f"| {solver} | {batch} | {steps} | {variant} | skipped: needs ~{need / 2**30:.0f} GB | | | | |"
                        rows.append(row)
                        print(row, flush=True)
                        continue
                    try:
                        ms, mem = time_train_step(model, batch, steps, args.device, args.repeats, args.budget)
                        per_element[variant] = max(per_element.get(variant, 0.0), mem / (batch * steps))
                    except torch.OutOfMemoryError:
                        ms, mem = float("nan"), -1
                    stream = time_stream_step(variant, model, args.device) if batch == args.batch[0] and steps == args.steps[0] else None
                    if variant == "seed":
                        seed_ms, seed_stream = ms, stream
                    ratio = f"{seed_ms / ms:.2f}x" if seed_ms and variant != "seed" else ("1.00x" if variant == "seed" else "—")
                    sratio = f"{seed_stream / stream:.2f}x" if stream and seed_stream and variant != "seed" else ""
                    row = (f"| {solver} | {batch} | {steps} | {variant} | {ms:.1f} | {ratio} | {mem / 2**20:.0f} "
                           f"| {'' if stream is None else f'{stream:.3f}'} | {sratio} |")  # fmt: skip
                    rows.append(row)
                    print(row, flush=True)
                    del model
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:60]
    path = out / f"liquid_{args.device}_{slug}{'_quick' if args.quick else ''}.md"
    path.write_text(f"# liquid stack {LAYERS}x{WIDTH}: {name}, torch {torch.__version__}\n\n"
                    f"`python benchmarks/bench_liquid.py {' '.join(argv or sys.argv[1:])}`\n\n" + "\n".join(rows) + "\n")  # fmt: skip
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
