"""`python -m lnn.agent`: a trained policy acting in a real browser (or the embedded GUI env).

    python -m lnn.agent ckpt=<run dir | .ckpt | ONNX export dir> task=click-button episodes=50
    python -m lnn.agent ckpt=<...> task=single-click episodes=100          # a kind: all its tasks
    python -m lnn.agent ckpt=<...> --url page.html --task "Click the OK button" [--headed]

Options are `key=value`, `--key value` or `--key=value` (all of them: `python -m lnn.agent --help`).
Writes success.md / .csv / .png (per task, with Wilson 95% intervals), episodes.jsonl (each episode's
actions and failure reason, appended as each episode ends), trace/*.gif and trace/strip.png, plan.json
(what is evaluated) and agent.json (settings, speed). A killed evaluation resumes: run the same command
with the same out= and the episodes already in its episodes.jsonl are not run again.

protocol=pix2act evaluates as Pix2Act did (google-deepmind/pix2act, tasks/miniwob/eval/run_eval.py):
100 seeds per task from its first seed 1201539860 (held out from lnn's splits), success = the page's raw
reward > 0, and its step limit: max_steps=30 counting the first observation, so an episode must end
within 28 actions. Pix2Act also filtered actions that repeat a (screenshot, action) pair; we do not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lnn.errors import ConfigError

OPTIONS = {  # name: what it is (the --help text)
    "ckpt": "a training run directory, one of its .ckpt files (a lone .ckpt carries its model), or an exported "
            "ONNX directory (model.onnx + manifest.json; run with onnxruntime)",
    "task": "task names, comma-separated, or a kind (single-click, two-click, multi-click, drag, typing); default: "
            "the run's tasks. MiniWoB: any task page of the miniwob package, with or without an oracle. With --url: "
            "the instruction",
    "episodes": "episodes per task (default 50)",
    "split": "seeds of this split: test (default; held out from training), val or train",
    "seed": "first seed instead (seeds seed, seed+1, ...)",
    "env": "miniwob or gui (default: the run's data.env; miniwob for an ONNX export)",
    "parallel": "envs (browsers) stepped as one batch (default 4 for miniwob, 32 for gui)",
    "max_steps": "actions before an episode counts as failed (default 10; also --steps)",
    "trace": "episodes per task drawn as GIFs with the predicted click (default 3; 0: none)",
    "out": "output directory (default logs/agent/<time>, under $LNN_ROOT or the working directory)",
    "headless": "true (default) or false: show the browser, where a display exists (also --headed)",
    "device": "cpu (default) or cuda (PyTorch checkpoints)",
    "step_timeout_s": "a browser call slower than this restarts the browser and fails the episode (10; 20 with --url)",
    "url": "the seed's form: act on a local page, `task` being the instruction; reward is unknown: see the trace",
    "viewport": "with --url: the page's WIDTHxHEIGHT (default 1280x720)",
    "dt_scale": "gui env: the timing families' frames come dt_scale times as far apart as in DT_RANGE (default: the "
                "run's, 1; 2: time twice as slow as in training, a test beyond the training range)",
    "solver": "integrate the checkpoint's ODE cells (liquid, ltc) with this solver instead of the one it trained "
              "with (euler, midpoint, rk4, semi_implicit, dopri5; PyTorch checkpoints)",
    "unfolds": "ODE sub-steps per frame instead of the trained number (e.g. 2: rk4 stays stable for frames twice as "
               "far apart; PyTorch checkpoints)",
    "protocol": "pix2act: Pix2Act's evaluation (100 seeds per task from seed 1201539860, at most 28 actions): "
                "the defaults of episodes, seed and max_steps",
}  # fmt: skip
# Pix2Act's MiniWoB evaluation (run_eval.py flags num_seeds=100, init_seed=1201539860, max_steps=30; its loop
# stops before acting at step 30 and reads `done` before acting, so an episode succeeds within 28 actions)
PROTOCOLS = {"pix2act": {"episodes": 100, "seed": 1201539860, "max_steps": 28}}
KEY_VALUE = re.compile(r"([A-Za-z_][\w-]*)=(.*)", re.S)  # ckpt=..., not a value such as page.html?x=1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line through run_or_explain, not argparse's usage and exit
        raise ConfigError("arguments", message)


def argument_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m lnn.agent", usage="%(prog)s ckpt=<run | .ckpt | export> [key=value | --key value ...]",
                     description=__doc__.split("\n\n")[0], allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    for key, text in OPTIONS.items():
        names = dict.fromkeys([f"--{key}", f"--{key.replace('_', '-')}"])
        if key == "headless":  # a flag, or a value: --headless, --headless=false
            parser.add_argument(*names, dest=key, nargs="?", const="true", help=text)
        else:
            parser.add_argument(*names, dest=key, help=text)
    parser.add_argument("--steps", dest="max_steps", help="the same as max_steps")
    parser.add_argument("--headed", dest="headless", action="store_const", const="false", help="headless=false")
    return parser


def parse_args(argv: list[str]) -> dict[str, str]:
    """key=value, --key value, --key=value and the flags --headed / --headless -> {key: value} of those given."""
    argv = [f"--{item}" if KEY_VALUE.fullmatch(item) else item for item in argv]  # key=value is --key=value
    given, unknown = argument_parser().parse_known_args(argv)
    if unknown:
        item = unknown[0]
        if not item.startswith("--"):
            raise ConfigError(item, "expected key=value (e.g. ckpt=logs/runs/<time> task=click-button episodes=50)")
        key = item[2:].split("=", 1)[0].replace("-", "_")
        raise ConfigError(key, f"unknown argument; known: {', '.join(OPTIONS)}")
    return {k: v for k, v in vars(given).items() if v is not None}


def _int(args: dict, key: str, default: int | None, low: int = 0) -> int | None:
    if key not in args:
        return default
    try:
        value = int(args[key])
    except ValueError:
        raise ConfigError(key, f"must be an integer, got {args[key]!r}") from None
    if value < low:
        raise ConfigError(key, f"must be >= {low}, got {value}")
    return value


def _float(args: dict, key: str) -> float | None:
    try:
        return float(args[key]) if key in args else None
    except ValueError:
        raise ConfigError(key, f"must be a number, got {args[key]!r}") from None


def _bool(args: dict, key: str, default: bool) -> bool:
    value = str(args.get(key, default)).lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(key, f"must be true or false, got {args[key]!r}")
    return value in ("true", "1", "yes")


@dataclass(frozen=True)
class AgentOptions:
    """The agent's options, checked (see OPTIONS); None: the default that depends on the run or the env."""

    ckpt: str
    task: str | None = None
    episodes: int = 50
    split: str = "test"
    seed: int | None = None
    env: str | None = None
    parallel: int | None = None
    max_steps: int = 10
    trace: int = 3
    out: Path | None = None
    headless: bool = True
    device: str = "cpu"
    step_timeout_s: float | None = None
    url: str | None = None
    viewport: str = "1280x720"
    protocol: str | None = None
    dt_scale: float | None = None
    solver: str | None = None
    unfolds: int | None = None

    @classmethod
    def parse(cls, argv: list[str]) -> AgentOptions:
        args = parse_args(argv)
        if "protocol" in args:  # its settings are the defaults (fewer episodes for a quick check stay possible)
            if args["protocol"] not in PROTOCOLS:
                raise ConfigError("protocol", f"unknown protocol {args['protocol']!r}; known: {', '.join(PROTOCOLS)}")
            args = {k: str(v) for k, v in PROTOCOLS[args["protocol"]].items()} | args
        if "ckpt" not in args:
            raise ConfigError("ckpt", "is required: a training run directory, a .ckpt file or an ONNX export directory")
        step_timeout_s, dt_scale = _float(args, "step_timeout_s"), _float(args, "dt_scale")
        return cls(
            ckpt=args["ckpt"], task=args.get("task"), episodes=_int(args, "episodes", 50, 1),
            split=args.get("split", "test"), seed=_int(args, "seed", None), env=args.get("env"),
            parallel=_int(args, "parallel", None, 1), max_steps=_int(args, "max_steps", 10, 1),
            trace=_int(args, "trace", 3), out=Path(args["out"]) if "out" in args else None,
            headless=_bool(args, "headless", True), device=args.get("device", "cpu"), step_timeout_s=step_timeout_s,
            url=args.get("url"), viewport=args.get("viewport", "1280x720"), protocol=args.get("protocol"),
            dt_scale=dt_scale, solver=args.get("solver"), unfolds=_int(args, "unfolds", None, 1),
        )  # fmt: skip


def open_policy(ckpt: str, device: str = "cpu", solver: str | None = None, unfolds: int | None = None):
    """(policy, run config or None, backend) for a run directory / .ckpt (PyTorch) or an ONNX export dir;
    `solver` / `unfolds`: its ODE cells integrate with these instead of the trained ones (PyTorch only)."""
    from lnn.agent.onnx_policy import OnnxPolicy, is_onnx_export

    if is_onnx_export(ckpt):
        if solver or unfolds:
            raise ConfigError("solver" if solver else "unfolds", "an ONNX export integrates as it was exported; give "
                              "the run directory or its .ckpt, or export again (python export.py solver=... unfolds=...)")  # fmt: skip
        return OnnxPolicy(ckpt), None, "onnxruntime"
    from lnn.rollout import TorchPolicy
    from lnn.runs import load_policy, read_yaml

    model = load_policy(ckpt)
    found = model.lnn_checkpoint
    run_cfg = read_yaml(found.config) if found.config is not None else None
    backend = f"pytorch ({found.checkpoint})"
    if solver or unfolds:
        model, integration = reintegrated(model, solver, unfolds)
        backend += f", {integration}"
    return TorchPolicy(model, device), run_cfg, backend


def reintegrated(model, solver: str | None, unfolds: int | None):
    """(a copy of the model whose ODE cells use `solver` / `unfolds`, the others as trained; "<solver> x <unfolds>")."""
    from lnn.liquid.solvers import SOLVER_NAMES

    cells = model.solver_cells()
    if not cells:
        raise ConfigError("solver" if solver else "unfolds", "this checkpoint's core has no ODE cells to integrate "
                          "(only liquid and ltc have); leave it out")  # fmt: skip
    if solver is not None and solver not in SOLVER_NAMES:
        raise ConfigError("solver", f"unknown solver {solver!r}; choose one of {', '.join(SOLVER_NAMES)}")
    solver, unfolds = solver or cells[0].solver, unfolds or cells[0].unfolds
    return model.with_solver(solver, unfolds), f"{solver} x {unfolds} sub-steps per frame"


def resolve_tasks(env: str, spec: str | None, default) -> tuple[str, ...]:
    """Task names from `task=` (names and kinds); unknown ones raise ConfigError listing the available."""
    from lnn.envs.registry import check_tasks, env_tasks, task_kinds

    if spec is None:
        if default is None:
            raise ConfigError("task", f"name the task(s): task=<name>[,<name>] or a kind; available: {', '.join(env_tasks(env))}")
        return check_tasks(env, list(default))
    names = [t.strip() for t in spec.split(",") if t.strip()]
    if env != "miniwob":
        try:
            return check_tasks(env, names)
        except ConfigError as e:
            raise ConfigError("task", e.message) from None
    from lnn.envs.miniwob import available_tasks

    every, kinds = available_tasks(), set(task_kinds(env).values())
    out: list[str] = []
    for name in names:
        if name in kinds:
            out += check_tasks(env, [name])
        elif name in every:
            out.append(name)
        else:
            raise ConfigError("task", f"unknown MiniWoB task {name!r}; available: {', '.join(every)} "
                                      f"(or a kind: {', '.join(sorted(kinds))})")  # fmt: skip
    if not out:
        raise ConfigError("task", "is empty")
    return tuple(dict.fromkeys(out))


class TimedPolicy:
    """Wraps a policy to count its steps and the time spent in it (agent speed)."""

    def __init__(self, policy):
        self.policy, self.seconds, self.calls, self.steps = policy, 0.0, 0, 0

    def reset(self, batch: int) -> None:
        self.policy.reset(batch)

    def act(self, observations):
        started = time.perf_counter()
        out = self.policy.act(observations)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        self.steps += len(observations)
        return out

    def keep(self, rows) -> None:
        self.policy.keep(rows)


def default_out() -> Path:
    root = Path(os.environ.get("LNN_ROOT", "."))
    out = root / "logs" / "agent" / time.strftime("%Y-%m-%d_%H-%M-%S")
    n = 1
    while out.exists():
        out, n = out.with_name(f"{out.name.split('_n')[0]}_n{n}"), n + 1
    return out


def headless_or_why_not(headless: bool) -> bool:
    """A window needs a display: without one, run headless and say so."""
    if not headless:
        from lnn.agent.web import display_available

        if not display_available():
            print("note: no display (DISPLAY / WAYLAND_DISPLAY unset): running headless", file=sys.stderr)
            return True
    return headless


def run(argv: list[str]) -> Path:
    opts = AgentOptions.parse(argv)
    headless = headless_or_why_not(opts.headless)
    policy, run_cfg, backend = open_policy(opts.ckpt, opts.device, opts.solver, opts.unfolds)
    image_size = getattr(policy, "image_size", None) or policy.model.image_size
    out = opts.out or default_out()
    out.mkdir(parents=True, exist_ok=True)
    timed = TimedPolicy(policy)
    if opts.url:
        return run_url(opts, timed, backend, out, headless, image_size)

    from lnn.runs import select

    env_name = opts.env or select(run_cfg, "data.env") or "miniwob"
    default_tasks = select(run_cfg, "data.tasks")
    if default_tasks is None and run_cfg is not None and select(run_cfg, "data.env") == env_name:
        from lnn.envs.registry import env_tasks

        default_tasks = env_tasks(env_name)  # the run trained on every task of its env (data.tasks: null)
    tasks = resolve_tasks(env_name, opts.task, list(default_tasks) if default_tasks is not None else None)
    first, jobs, traced = plan_episodes(opts, tasks)
    env_kwargs = env_settings(run_cfg, env_name, image_size, headless, opts)
    plan = {"ckpt": opts.ckpt, "backend": backend, "env": env_name, "tasks": list(tasks), "episodes_per_task": opts.episodes,
            "seeds": [first, first + opts.episodes - 1], "max_steps": opts.max_steps, "protocol": opts.protocol,
            "env_kwargs": {k: v for k, v in env_kwargs.items() if k != "headless"}}  # fmt: skip
    finished = resume(out, plan)
    todo = [job for job in jobs if job not in finished]
    if finished:
        print(f"resuming {out}: {len(finished)} of {len(jobs)} episodes already done")
    else:
        print(f"results go to {out} (killed? the same command with out={out} resumes)")
    parallel = min(opts.parallel or (4 if env_name == "miniwob" else 32), max(1, len(todo)))
    episodes_file = out / EPISODES
    new, timing = run_in_envs(timed, env_name, tasks, env_kwargs, parallel, todo, traced, opts.max_steps,
                              on_result=lambda r: append_episode(episodes_file, r, out / "trace", env_name))  # fmt: skip
    by_job = {**finished, **{(r.task, r.seed): r for r in new}}
    results = [by_job[job] for job in jobs]
    note = f", {opts.protocol} protocol: at most {opts.max_steps} actions" if opts.protocol else ""
    rows = write_reports(results, out, env_name, backend, first, opts.episodes, note)
    info = {
        **{k: v for k, v in plan.items() if k != "env_kwargs"}, "parallel": parallel, "headless": headless,
        "image_size": image_size, "episodes_resumed": len(finished), "episodes_run": len(new), **speed(timed, new, timing),
        "success": {r["task"]: round(r["success"], 4) for r in rows},
    }  # fmt: skip
    (out / "agent.json").write_text(json.dumps(info, indent=1))
    print((out / "success.md").read_text())
    print(f"{info['agent_steps']} agent steps in {info['run_s']:.1f} s: {info['agent_steps_per_s']:.2f} steps/s "
          f"(policy {info['policy_ms_per_step']:.1f} ms/step); {info['browser_restarts']} browser restarts")  # fmt: skip
    print(f"results: {out} (success.md, episodes.jsonl, trace/, agent.json)")
    return out


def plan_episodes(opts: AgentOptions, tasks) -> tuple[int, list[tuple[str, int]], set[tuple[str, int]]]:
    """The first seed, the (task, seed) episodes to run, and those to trace."""
    from lnn.rollout import SPLIT_SEED_BASE

    if opts.split not in SPLIT_SEED_BASE:
        raise ConfigError("split", f"must be one of {', '.join(SPLIT_SEED_BASE)}, got {opts.split!r}")
    first = SPLIT_SEED_BASE[opts.split] if opts.seed is None else opts.seed
    seeds = range(first, first + opts.episodes)
    jobs = [(task, seed) for task in tasks for seed in seeds]
    traced = {(task, seed) for task in tasks for seed in seeds[: opts.trace]}
    return first, jobs, traced


def env_settings(run_cfg, env_name: str, image_size: int | list[int], headless: bool, opts: AgentOptions) -> dict:
    """The env's arguments: the run's own (same env), frames at the policy's size, the browser's settings."""
    from lnn.runs import select

    same_env = run_cfg is not None and select(run_cfg, "data.env") == env_name
    env_kwargs = dict(select(run_cfg, "data.env_kwargs") or {}) if same_env else {}
    env_kwargs["image_size"] = image_size  # frames exactly as in training: the env resizes
    if opts.dt_scale is not None:
        if env_name != "gui":
            raise ConfigError("dt_scale", f"is an option of the gui env (its timing families); this run uses env={env_name}")
        env_kwargs["dt_scale"] = opts.dt_scale
    if env_name == "miniwob":
        env_kwargs |= {"headless": headless, "step_timeout_s": 10.0 if opts.step_timeout_s is None else opts.step_timeout_s}
    return env_kwargs


def run_in_envs(policy, env_name: str, tasks, env_kwargs: dict, parallel: int, jobs, traced, max_steps: int,
                on_result=None):  # fmt: skip
    """The episodes, stepped in `parallel` envs (closed however it ends); -> results and timing.
    `on_result(result)` as each episode ends."""
    from lnn.envs.registry import make_env
    from lnn.rollout import run_episodes

    envs = []
    timing = {"started": time.perf_counter()}
    try:
        for _ in range(parallel if jobs else 0):
            envs.append(make_env(env_name, tasks=list(tasks), **env_kwargs))
        timing["launched"] = time.perf_counter()
        results = run_episodes(policy, envs, jobs, record=lambda t, s: (t, s) in traced, desc="agent", max_steps=max_steps,
                               on_result=on_result) if jobs else []  # fmt: skip
        timing["finished"] = time.perf_counter()
        timing["restarts"] = sum(getattr(env, "restarts", 0) for env in envs)
    finally:
        for env in envs:
            env.close()
    return results, timing


EPISODES = "episodes.jsonl"
PLAN = "plan.json"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def resume(out: Path, plan: dict) -> dict:
    """{(task, seed): result} of the episodes an earlier run of this plan finished in `out` (none for a new out).

    An `out` holding another evaluation's episodes raises ConfigError (mixing them would corrupt the table).
    """
    from lnn.rollout import EpisodeResult

    if (out / PLAN).exists():
        earlier = json.loads((out / PLAN).read_text())
        if earlier != plan:
            differ = sorted(k for k in set(plan) | set(earlier) if plan.get(k) != earlier.get(k))
            raise ConfigError("out", f"{out} holds another evaluation (different {', '.join(differ)}); "
                                     "give a new out= or remove that directory")  # fmt: skip
    elif (out / EPISODES).exists():
        raise ConfigError("out", f"{out} holds episodes without a {PLAN}; give a new out= or remove that directory")
    write_atomic(out / PLAN, json.dumps(plan, indent=1))
    finished = {}
    if (out / EPISODES).exists():
        for line in (out / EPISODES).read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # the last line of a run killed while appending it
                continue
            finished[(record["task"], record["seed"])] = EpisodeResult(**record)
    return finished


def episode_record(r) -> dict:
    return {"task": r.task, "seed": r.seed, "success": r.success, "steps": r.steps, "failure": r.failure,
            "actions": r.actions, "aborted": r.aborted, "instruction": r.instruction}  # fmt: skip


def append_episode(path: Path, r, trace_dir: Path, env_name: str) -> None:
    """One finished episode, as one line appended in a single write (a kill never leaves half of it); its GIF if
    it was traced."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(episode_record(r)) + "\n").encode())
    finally:
        os.close(fd)
    if r.trace:
        from lnn.agent.trace import write_gif

        trace_dir.mkdir(parents=True, exist_ok=True)
        write_gif(r, trace_dir / f"{r.task}-seed{r.seed}.gif", aspect=miniwob_aspect(env_name))


def miniwob_aspect(env_name: str) -> float | None:
    return 210 / 160 if env_name == "miniwob" else None


def write_reports(results, out: Path, env_name: str, backend: str, first: int, episodes: int, note: str = "") -> list[dict]:
    """success.md|csv|png, episodes.jsonl (rewritten in job order) and the trace strip; -> the table's rows."""
    from lnn.envs.registry import task_kinds
    from lnn.rollout import write_success_report

    label = "onnx" if backend == "onnxruntime" else "torch"
    title = f"{env_name}: closed-loop success ({label}, seeds {first}..{first + episodes - 1}{note})"
    rows = write_success_report(results, out, task_kinds(env_name), title)
    write_atomic(out / EPISODES, "".join(json.dumps(episode_record(r)) + "\n" for r in results))
    traced = [r for r in results if r.trace]  # episodes run now (a resumed run has the GIFs of earlier ones)
    if traced:
        from lnn.agent.trace import write_strip

        write_strip(traced, out / "trace" / "strip.png", aspect=miniwob_aspect(env_name))
    return rows


def speed(timed: TimedPolicy, results, timing: dict) -> dict:
    """How long launching and running took, steps per second, time in the policy, browser restarts."""
    seconds = max(timing["finished"] - timing["launched"], 1e-9)  # nothing left to run on a resumed evaluation
    env_steps = sum(r.steps for r in results)
    return {
        "launch_s": round(timing["launched"] - timing["started"], 2), "run_s": round(seconds, 2),
        "episodes_per_s": round(len(results) / seconds, 3), "agent_steps": env_steps,
        "agent_steps_per_s": round(env_steps / seconds, 3),
        "policy_ms_per_step": round(1000 * timed.seconds / max(1, timed.steps), 3),
        "policy_ms_per_call": round(1000 * timed.seconds / max(1, timed.calls), 3),
        "browser_restarts": timing["restarts"], "aborted_episodes": sum(r.failure.startswith("aborted") for r in results),
    }  # fmt: skip


def write_traces(results, folder: Path, aspect: float | None) -> None:
    from lnn.agent.trace import write_gif, write_strip

    traced = [r for r in results if r.trace]
    if not traced:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for r in traced:
        write_gif(r, folder / f"{r.task}-seed{r.seed}.gif", aspect=aspect)
    write_strip(traced, folder / "strip.png", aspect=aspect)


def run_url(opts: AgentOptions, policy, backend, out: Path, headless: bool, image_size: int | list[int]) -> Path:
    """The seed's form: one episode on a page, the instruction from --task; the trace says what happened."""
    from lnn.agent.web import WebPageEnv
    from lnn.rollout import run_episodes

    instruction = opts.task
    if not instruction:
        raise ConfigError("task", 'with --url, give the instruction: --task "Click the OK button"')
    try:
        width, height = (int(v) for v in opts.viewport.lower().split("x"))
    except ValueError:
        raise ConfigError("viewport", f"must be WIDTHxHEIGHT, e.g. 1280x720, got {opts.viewport!r}") from None
    env = WebPageEnv(opts.url, instruction, (width, height), image_size=image_size, headless=headless,
                     step_timeout_s=20.0 if opts.step_timeout_s is None else opts.step_timeout_s)  # fmt: skip
    started = time.perf_counter()
    try:
        results = run_episodes(policy, [env], [("web", 0)], record=True, desc="agent", max_steps=opts.max_steps)
    finally:
        env.close()
    seconds = time.perf_counter() - started
    r = results[0]
    ended = "the policy answered done" if r.failure == "agent-done" else r.failure
    (out / "episode.json").write_text(json.dumps({"url": opts.url, "instruction": instruction, "backend": backend,
                                                  "steps": r.steps, "ended": ended, "actions": r.actions,
                                                  "seconds": round(seconds, 2)}, indent=1))  # fmt: skip
    write_traces(results, out / "trace", aspect=height / width)
    print(f"{r.steps} steps on {opts.url} ({ended}): {', '.join(r.actions)}")
    print(f"results: {out} (episode.json, trace/)")
    return out


def main(argv: list[str] | None = None) -> None:
    from lnn.config import run_or_explain

    run_or_explain(run, sys.argv[1:] if argv is None else argv)
