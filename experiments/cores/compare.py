"""Cores side by side from a core_comparison sweep: closed-loop success per family kind and per family,
mean ± std over seeds, parameters, train time, and (optionally) the browser step time of each core.

    python train.py -m experiment=core_comparison
    python experiments/cores/compare.py logs/multiruns/<time> [<time> ...] [--out experiments/cores] [--step-time]
    python experiments/cores/compare.py <sweeps> --dt-scale 2 --out <dir>   # timing: time twice as slow as in training
    python experiments/cores/compare.py <sweeps> --dt-scale 2 --unfolds 2 --out <dir>   # liquid / ltc: 2 solver steps a frame

Several sweep directories pool their jobs (e.g. one sweep per seed, run side by side); single runs
(`python train.py core=gru seed=1`, logs/runs/<time>) can be given too, alone or with sweeps.

Writes results.md (tables and a computed sentence per core on where liquid wins, ties or loses),
results.png (success per kind, bars = mean over seeds, error bars = std) and results.json (every job and
every aggregate). std is the sample std over seeds (ddof=1). "liquid wins" on a kind when its mean is
higher by more than the two cores' stds added; "loses" when lower by more; else "ties" (fewer than
2 seeds on either side: "too few seeds").
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lnn.envs.gui import families_by_kind
from lnn.runs import collect_jobs, job_row, read_yaml, select

REFERENCE = "liquid"
CORE_ORDER = ("liquid", "cfc", "ltc", "lstm", "gru", "feedforward")  # conf/core/; others follow by name
ODE_CORES = ("liquid", "ltc")  # the cores an ODE solver integrates (--unfolds applies to them)
ALL = "all"  # the pooled [all] row of eval/success.csv


# --- one job ---------------------------------------------------------------------------------------
def read_success(evaluation: Path) -> tuple[dict[str, float], dict[str, float]]:
    """<evaluation>/success.csv → ({family: rate}, {kind or "all": rate}); the kinds are its `[kind]` rows."""
    families, kinds = {}, {}
    with open(evaluation / "success.csv") as f:
        for row in csv.DictReader(f):
            name, rate = row["task"], float(row["success"])
            if not name.startswith("["):
                families[name] = rate
            elif name != "[mean]":  # [mean] is the unweighted mean of families; [all] pools the episodes
                kinds[name.strip("[]")] = rate
    return families, kinds


def model_size(job: Path) -> tuple[int, int | None]:
    """Parameters and core width of the job's checkpoint (the width a non-liquid core was solved for)."""
    from lnn.runs import load_policy

    with contextlib.redirect_stdout(io.StringIO()):  # building prints "core=gru: width ..." for each job
        model = load_policy(job)
    return sum(p.numel() for p in model.parameters()), getattr(model, "width", None)


def evaluation_dir(dt_scale: float, unfolds: int | None) -> str:
    """The name of a job's folder for an evaluation at dt × dt_scale with `unfolds` sub-steps per frame."""
    return f"eval_dt{dt_scale:g}" + (f"_unfolds{unfolds}" if unfolds else "")


def evaluate_again(job: Path, dt_scale: float, unfolds: int | None, episodes: int) -> Path:
    """The job's policy on its own tasks' test seeds with the timing families' dts × dt_scale and, for a core with
    ODE cells, `unfolds` solver sub-steps per frame (python -m lnn.agent dt_scale=... unfolds=...) -> the
    evaluation's directory, <job>/eval_dt<scale>[_unfolds<n>] (a killed evaluation resumes there)."""
    from lnn.agent.cli import run

    out = job / evaluation_dir(dt_scale, unfolds)
    options = [f"ckpt={job}", f"episodes={episodes}", "trace=0", f"dt_scale={dt_scale}", f"out={out}"]
    with contextlib.redirect_stdout(io.StringIO()):
        run(options + ([f"unfolds={unfolds}"] if unfolds else []))
    return out


def read_job(row: dict, dt_scale: float | None = None, unfolds: int | None = None, episodes: int = 100) -> dict | None:
    """A finished job of the sweep (a row of lnn.runs.collect_jobs) as core, seed, size, time, success (its own
    test evaluation, or with dt_scale a new one at that time scale, with `unfolds` sub-steps for ODE cores)."""
    job = Path(row["dir"])
    if row["status"] != "finished" or not (job / "eval" / "success.csv").exists():
        return None
    cfg = read_yaml(job / "config.yaml")
    core = str(select(cfg, "model.core", "liquid"))
    unfolds = unfolds if core in ODE_CORES else None
    families, kinds = read_success(evaluate_again(job, dt_scale, unfolds, episodes) if dt_scale else job / "eval")
    params, width = model_size(job)
    return {"job": row["job"], "dir": str(job), "core": core, "seed": int(select(cfg, "seed")),
            "solver": select(cfg, "model.solver"), "unfolds": unfolds or select(cfg, "model.unfolds"), "params": params,
            "width": width, "fit_seconds": row.get("fit_seconds"), "families": families, "kinds": kinds}  # fmt: skip


# --- aggregates ------------------------------------------------------------------------------------
def mean_std(values) -> dict:
    """Mean and sample std (ddof=1; NaN with one value) of the values over seeds."""
    a = np.asarray([v for v in values if v is not None], dtype=float)
    if a.size == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else math.nan, "n": int(a.size)}


def ordered(names, order) -> list[str]:
    return sorted(set(names), key=lambda n: (order.index(n) if n in order else len(order), n))


def kind_order() -> tuple[str, ...]:  # the env's kinds (timing too, once it has such families), then all
    return (*families_by_kind(), ALL)


def family_order() -> list[str]:  # families grouped by kind
    return [f for fs in families_by_kind().values() for f in fs]


def aggregate(jobs: list[dict]) -> dict:
    """Per core: its jobs' seeds, size, train time, and success per kind and per family (mean ± std)."""
    cores = {}
    for core in ordered((j["core"] for j in jobs), CORE_ORDER):
        mine = sorted((j for j in jobs if j["core"] == core), key=lambda j: j["seed"])
        seeds = [j["seed"] for j in mine]
        if len(set(seeds)) != len(seeds):  # the same core and seed twice would count as two seeds
            raise SystemExit(f"core {core}: seeds {seeds} repeat; give one sweep per setting")
        kinds = ordered((k for j in mine for k in j["kinds"]), kind_order())
        families = ordered((f for j in mine for f in j["families"]), family_order())
        cores[core] = {
            "seeds": seeds, "jobs": [j["job"] for j in mine], "params": mine[0]["params"], "width": mine[0]["width"],
            "solver": mine[0]["solver"], "fit_seconds": mean_std(j["fit_seconds"] for j in mine),
            "kinds": {k: mean_std(j["kinds"].get(k) for j in mine) for k in kinds},
            "families": {f: mean_std(j["families"].get(f) for j in mine) for f in families},
        }  # fmt: skip
    return cores


def verdict(ref: dict, other: dict) -> str:
    """wins / ties / loses for the reference (liquid) against another core on one kind, by mean ± std."""
    if ref["n"] < 2 or other["n"] < 2:
        return "too few seeds"
    diff, margin = ref["mean"] - other["mean"], ref["std"] + other["std"]
    return "wins" if diff > margin else "loses" if diff < -margin else "ties"


def sentence(core: str, cores: dict, step_ms: dict) -> tuple[str, dict]:
    """Where liquid wins, ties or loses against `core`, per kind, with the numbers that decide it."""
    if core == REFERENCE:
        return "the reference the other rows are compared with.", {}
    if REFERENCE not in cores:
        return "no liquid jobs in this sweep: nothing to compare with.", {}
    ref, other = cores[REFERENCE], cores[core]
    verdicts, parts = {}, {}
    for kind in other["kinds"]:
        if kind not in ref["kinds"]:
            continue
        a, b = ref["kinds"][kind], other["kinds"][kind]
        verdicts[kind] = verdict(a, b)
        margin = "" if verdicts[kind] == "too few seeds" else f", stds added {100 * (a['std'] + b['std']):.1f}"
        diff = f"{100 * (a['mean'] - b['mean']):+.1f} points"
        parts.setdefault(verdicts[kind], []).append(f"{kind} ({diff}{margin})")
    text = f"against {core}, liquid " + "; ".join(f"{v} on {', '.join(ks)}" for v, ks in parts.items())
    t_ref, t_other = ref["fit_seconds"]["mean"], other["fit_seconds"]["mean"]
    if t_ref > 0 and t_other > 0:
        text += f"; liquid takes {t_ref / t_other:.2f}× {core}'s train time"
    if step_ms.get(REFERENCE) and step_ms.get(core):
        text += f" and {step_ms[REFERENCE] / step_ms[core]:.2f}× its browser step time"
    return text + ".", verdicts


# --- browser step time -----------------------------------------------------------------------------
def browser_step_ms(jobs: list[dict], steps: int, rounds: int) -> dict[str, float]:
    """Median fp32 step (batch 1, one thread) in Chromium with onnxruntime-web, per core: one job's
    checkpoint exported by lnn.export and timed by the bundle's own `lnnPage.benchmark`, as
    benchmarks/bench_export.py does (step time does not depend on the weights, so one seed per core)."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_export import CHROMIUM, summary

    from lnn.export.pipeline import ExportOptions, export
    from lnn.export.serve import serve_in_thread
    from lnn.export.source import resolve_source

    first = {}
    for j in sorted(jobs, key=lambda j: j["seed"]):
        first.setdefault(j["core"], j)
    work = Path(tempfile.mkdtemp(prefix="lnn-cores-"))
    bundles = {}
    for core, job in first.items():  # no fp16 / int8 parity bounds: only fp32 is timed (and debug weights agree poorly)
        options = ExportOptions(out=str(work / core), plots=False, fp16_atol=1.0, fp16_min_agreement=0.0,
                                fp16_min_click_agreement=0.0, int8_min_agreement=0.0, int8_min_click_agreement=0.0)  # fmt: skip
        bundles[core] = export(resolve_source(run=job["dir"]), options, log=lambda line: None)
        print(f"exported {core} (job {job['job']})", flush=True)
    times = {core: [] for core in bundles}
    with sync_playwright() as pw:
        flags = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]  # as bench_export.py launches it
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=flags)
        pages = {}
        servers = []
        for core, out in bundles.items():
            server, url = serve_in_thread(out)
            servers.append(server)
            pages[core] = browser.new_page()
            pages[core].goto(url)
            pages[core].evaluate("window.lnnPage.ready")
        for _ in range(rounds):  # interleaved: a burst of load on the shared machine hits every core alike
            for core, page in pages.items():
                res = page.evaluate(f"window.lnnPage.benchmark('fp32', {steps}, 20, true)")
                times[core] += res["step_ms"]
        browser.close()
        for server in servers:
            server.shutdown()
    return {core: summary(t)["median_ms"] for core, t in times.items()}


# --- report ----------------------------------------------------------------------------------------
def pm(s: dict, scale: float = 100, digits: int = 1) -> str:
    if s["n"] == 0:
        return "—"
    std = "" if math.isnan(s["std"]) else f" ± {scale * s['std']:.{digits}f}"
    return f"{scale * s['mean']:.{digits}f}{std}"


def write_report(sweep: str, jobs: list[dict], cores: dict, step_ms: dict, out: Path,
                 evaluation: str = "eval/success.csv of each job") -> dict:
    kinds = ordered((k for c in cores.values() for k in c["kinds"]), kind_order())
    families = ordered((f for c in cores.values() for f in c["families"]), family_order())
    kind_of = {f: k for k, fs in families_by_kind().items() for f in fs}
    sentences, verdicts = {}, {}
    for core in cores:
        sentences[core], verdicts[core] = sentence(core, cores, step_ms)

    step_col = ["browser step ms (fp32, Chromium, onnxruntime-web)"] if step_ms else []
    header = ["core", "params", "width", "train s (mean ± std)", *step_col,
              *(f"{k} % (mean ± std)" for k in kinds), "n seeds"]  # fmt: skip
    lines = [f"# Cores compared — sweeps {sweep}", "",
             f"{len(jobs)} finished jobs. Closed-loop success on the held-out test seeds ({evaluation}), "
             "in %: mean ± sample std (ddof=1) over seeds; a kind pools its families' episodes, `all` every episode. "
             "train s: fit wall time (results.json fit_seconds).", "",
             "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]  # fmt: skip
    for core, c in cores.items():
        cells = [core, f"{c['params']:,}", str(c["width"] or ""), pm(c["fit_seconds"], 1, 0)]
        cells += [f"{step_ms[core]:.2f}" if core in step_ms else "—"] if step_ms else []
        cells += [pm(c["kinds"][k]) if k in c["kinds"] else "—" for k in kinds] + [str(len(c["seeds"]))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Where liquid wins, ties or loses (computed: wins when liquid's mean is higher by more than the two "
              "stds added, loses when lower by more, else ties):", ""]  # fmt: skip
    lines += [f"- **{core}**: {text}" for core, text in sentences.items()]
    lines += ["", "## Per family", "", "| family | kind | " + " | ".join(cores) + " |",
              "|---|---|" + "---:|" * len(cores)]  # fmt: skip
    for f in families:
        cells = [pm(c["families"][f]) if f in c["families"] else "—" for c in cores.values()]
        lines.append(f"| {f} | {kind_of.get(f, '')} | " + " | ".join(cells) + " |")
    lines += ["", "## Jobs", "", "| job | core | seed | solver | train s | " + " | ".join(kinds) + " |",
              "|---|---|---:|---|---:|" + "---:|" * len(kinds)]  # fmt: skip
    for j in sorted(jobs, key=lambda j: (list(cores).index(j["core"]), j["seed"])):
        rates = " | ".join(f"{100 * j['kinds'][k]:.1f}" if k in j["kinds"] else "—" for k in kinds)
        solver = j["solver"] + (f" × {j['unfolds']}" if j["core"] in ODE_CORES and (j["unfolds"] or 1) > 1 else "")
        lines.append(f"| {j['job']} | {j['core']} | {j['seed']} | {solver} | {j['fit_seconds']} | {rates} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot(cores, kinds, out / "results.png")
    results = {"sweep": str(sweep), "std": "sample std over seeds (ddof=1)", "jobs": jobs, "cores": cores,
               "browser_step_ms": step_ms, "sentences": sentences, "verdicts": verdicts}  # fmt: skip
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return results


def plot(cores: dict, kinds: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(kinds))
    width = 0.8 / len(cores)
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(kinds) * max(1, len(cores) / 3)), 4.5))
    for i, (core, c) in enumerate(cores.items()):
        mean = [100 * c["kinds"][k]["mean"] if k in c["kinds"] else 0 for k in kinds]
        std = [100 * np.nan_to_num(c["kinds"][k]["std"]) if k in c["kinds"] else 0 for k in kinds]
        ax.bar(x + i * width, mean, width, yerr=std, capsize=3, label=f"{core} (n={len(c['seeds'])})")
    ax.set_xticks(x + width * (len(cores) - 1) / 2, kinds)
    ax.set_ylim(0, 100)
    ax.set_ylabel("closed-loop success on test seeds, %\n(bars: mean over seeds, error bars: std)")
    ax.set_title("Cores in the same shell and parameter budget, per kind of family")
    ax.legend(fontsize=8, ncol=min(len(cores), 3))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweeps", nargs="+", help="sweep directories of experiment=core_comparison (logs/multiruns/<time>), "
                   "or single runs (logs/runs/<time>), or both")
    p.add_argument("--out", default=str(Path(__file__).parent), help="where results.md / .png / .json go")
    p.add_argument("--step-time", action="store_true", help="also export one job per core and time it in Chromium")
    p.add_argument("--steps", type=int, default=200, help="measured browser steps per core and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dt-scale", type=float, help="evaluate every job again with the timing families' dts × this "
                   "(2: time twice as slow as in training; python -m lnn.agent dt_scale=...) instead of reading its eval/")
    p.add_argument("--unfolds", type=int, help="evaluate every job again with this many solver sub-steps per frame in "
                   "its ODE cells (liquid, ltc; python -m lnn.agent unfolds=...), at --dt-scale or 1")
    p.add_argument("--episodes", type=int, default=100, help="with --dt-scale / --unfolds: test episodes per family")
    args = p.parse_args(argv)
    if args.unfolds is not None and args.unfolds < 1:
        p.error(f"--unfolds must be >= 1, got {args.unfolds}")
    dt_scale = args.dt_scale or (1.0 if args.unfolds else None)
    sweeps = [Path(s) for s in args.sweeps]
    rows = []
    for path in sweeps:
        if not path.is_dir():
            p.error(f"{path}: no such directory (a sweep of train.py -m, or a run of train.py)")
        row = job_row(path)
        rows += [row] if row else collect_jobs(path)
    jobs = [j for j in (read_job(row, dt_scale, args.unfolds, args.episodes) for row in tqdm(rows, desc="jobs", disable=not dt_scale))
            if j is not None]  # fmt: skip
    if not jobs:
        raise SystemExit(f"{', '.join(args.sweeps)}: no finished job with eval/success.csv (train.py -m sweep directories?)")
    sweep = ", ".join(f"`{s}`" for s in args.sweeps)
    cores = aggregate(jobs)
    step_ms = browser_step_ms(jobs, args.steps, args.rounds) if args.step_time else {}
    unfolds = f" unfolds={args.unfolds} (liquid, ltc)" if args.unfolds else ""
    evaluation = f"python -m lnn.agent dt_scale={dt_scale:g}{unfolds}: the timing families' dts × {dt_scale:g}, " \
                 f"{args.episodes} episodes per family, in <job>/{evaluation_dir(dt_scale, args.unfolds)}" \
        if dt_scale else "eval/success.csv of each job"
    results = write_report(sweep, jobs, cores, step_ms, Path(args.out), evaluation)
    print((Path(args.out) / "results.md").read_text())
    print(f"written: {Path(args.out) / 'results.md'}, results.png, results.json")
    return results


if __name__ == "__main__":
    main()
