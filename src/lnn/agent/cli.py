"""`python -m lnn.agent`: a trained policy acting in a real browser (or the embedded GUI env).

    python -m lnn.agent ckpt=<run dir | .ckpt | ONNX export dir> task=click-button episodes=50
    python -m lnn.agent ckpt=<...> task=single-click episodes=100          # a kind: all its tasks
    python -m lnn.agent ckpt=<...> --url page.html --task "Click the OK button" [--headed]

Arguments are `key=value` (or `--key value`):

    ckpt        a training run directory, one of its .ckpt files, or an exported ONNX directory
                (model.onnx + manifest.json; run with onnxruntime)
    task        task names, comma-separated, or a kind (single-click, two-click); default: the run's tasks.
                MiniWoB: any task page of the miniwob package, with or without an oracle
    episodes    episodes per task (default 50)
    split       seeds of this split: test (default; held out from training), val or train
    seed        first seed instead (seeds seed, seed+1, ...)
    env         miniwob or gui (default: the run's data.env; miniwob for an ONNX export)
    parallel    envs (browsers) stepped as one batch (default 4 for miniwob, 32 for gui)
    max_steps   actions before an episode counts as failed (default 10)
    trace       episodes per task drawn as GIFs with the predicted click (default 3; 0: none)
    out         output directory (default logs/agent/<time>, under $LNN_ROOT or the working directory)
    headless    true (default) or false: show the browser, where a display exists (also --headed)
    device      cpu (default) or cuda (PyTorch checkpoints)
    step_timeout_s   a browser call slower than this restarts the browser and fails the episode (10)
    url, viewport    the seed's form: act on a local page (viewport WxH, default 1280x720), `task` being
                     the instruction; steps = max_steps (default 10); reward is unknown: see the trace

Writes success.md / .csv / .png (per task, with Wilson 95% intervals), episodes.jsonl (each episode's
actions and failure reason), trace/*.gif and trace/strip.png, and agent.json (settings, speed).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from lnn.errors import ConfigError

KEYS = ("ckpt", "task", "episodes", "split", "seed", "env", "parallel", "max_steps", "trace", "out", "headless",
        "device", "step_timeout_s", "url", "viewport", "steps")  # fmt: skip
FLAGS = {"headed": ("headless", "false"), "headless": ("headless", "true")}


def parse_args(argv: list[str]) -> dict[str, str]:
    """key=value, --key value, --key=value and the flags --headed / --headless -> {key: value}."""
    args: dict[str, str] = {}
    i = 0
    while i < len(argv):
        item = argv[i]
        if item in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        if item.startswith("--"):
            name = item[2:]
            if "=" in name:
                key, value = name.split("=", 1)
            elif name in FLAGS:
                key, value = FLAGS[name]
            elif i + 1 < len(argv):
                key, value = name, argv[i + 1]
                i += 1
            else:
                raise ConfigError(name, "needs a value")
        elif "=" in item:
            key, value = item.split("=", 1)
        else:
            raise ConfigError(item, "expected key=value (e.g. ckpt=logs/runs/<time> task=click-button episodes=50)")
        key = key.replace("-", "_")
        if key not in KEYS:
            raise ConfigError(key, f"unknown argument; known: {', '.join(KEYS)}")
        args[key] = value
        i += 1
    return args


def _int(args: dict, key: str, default: int, low: int = 0) -> int:
    try:
        value = int(args.get(key, default))
    except ValueError:
        raise ConfigError(key, f"must be an integer, got {args[key]!r}") from None
    if value < low:
        raise ConfigError(key, f"must be >= {low}, got {value}")
    return value


def _bool(args: dict, key: str, default: bool) -> bool:
    value = str(args.get(key, default)).lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(key, f"must be true or false, got {args[key]!r}")
    return value in ("true", "1", "yes")


def load_policy(ckpt: str, device: str = "cpu"):
    """(policy, run config or None, backend) for a run directory / .ckpt (PyTorch) or an ONNX export dir."""
    from lnn.agent.onnx_policy import OnnxPolicy, is_onnx_export

    if is_onnx_export(ckpt):
        return OnnxPolicy(ckpt), None, "onnxruntime"
    from omegaconf import OmegaConf

    from lnn.agent.load import find_checkpoint, load_policy_model
    from lnn.rollout import TorchPolicy

    found = find_checkpoint(ckpt)
    model = load_policy_model(ckpt)
    return TorchPolicy(model, device), OmegaConf.load(found.config), f"pytorch ({found.checkpoint})"


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


def run(argv: list[str]) -> Path:
    args = parse_args(argv)
    if "ckpt" not in args:
        raise ConfigError("ckpt", "is required: a training run directory, a .ckpt file or an ONNX export directory")
    headless = _bool(args, "headless", True)
    if not headless:
        from lnn.agent.web import display_available

        if not display_available():
            print("note: no display (DISPLAY / WAYLAND_DISPLAY unset): running headless", file=sys.stderr)
            headless = True
    max_steps = _int(args, "max_steps", _int(args, "steps", 10, 1), 1)
    policy, run_cfg, backend = load_policy(args["ckpt"], args.get("device", "cpu"))
    image_size = getattr(policy, "image_size", None) or policy.model.image_size
    out = Path(args["out"]) if "out" in args else default_out()
    out.mkdir(parents=True, exist_ok=True)
    timed = TimedPolicy(policy)
    step_timeout_s = float(args.get("step_timeout_s", 10))

    if "url" in args:
        return run_url(args, timed, backend, out, headless, max_steps, image_size)

    env_name = args.get("env") or (run_cfg.data.env if run_cfg is not None else None) or "miniwob"
    default_tasks = list(run_cfg.data.tasks) if run_cfg is not None and run_cfg.data.get("tasks") is not None else None
    tasks = resolve_tasks(env_name, args.get("task"), default_tasks)
    episodes = _int(args, "episodes", 50, 1)
    split = args.get("split", "test")
    from lnn.rollout import SPLIT_SEED_BASE

    if split not in SPLIT_SEED_BASE:
        raise ConfigError("split", f"must be one of {', '.join(SPLIT_SEED_BASE)}, got {split!r}")
    first = _int(args, "seed", SPLIT_SEED_BASE[split])
    jobs = [(task, seed) for task in tasks for seed in range(first, first + episodes)]
    n_trace = _int(args, "trace", 3)
    traced = {(task, seed) for task in tasks for seed in range(first, first + min(n_trace, episodes))}

    env_kwargs = dict(run_cfg.data.get("env_kwargs") or {}) if run_cfg is not None and run_cfg.data.env == env_name else {}
    env_kwargs["image_size"] = image_size  # frames exactly as in training: the env resizes
    if env_name == "miniwob":
        env_kwargs |= {"headless": headless, "step_timeout_s": step_timeout_s}
    parallel = min(_int(args, "parallel", 4 if env_name == "miniwob" else 32, 1), len(jobs))

    from lnn.envs.registry import make_env, task_kinds
    from lnn.rollout import run_episodes, write_success_report

    envs = []
    started = time.perf_counter()
    try:
        for _ in range(parallel):
            envs.append(make_env(env_name, tasks=list(tasks), **env_kwargs))
        launched = time.perf_counter()
        results = run_episodes(timed, envs, jobs, record=lambda t, s: (t, s) in traced, desc="agent", max_steps=max_steps)
        finished = time.perf_counter()
        restarts = sum(getattr(env, "restarts", 0) for env in envs)
    finally:
        for env in envs:
            env.close()

    label = "onnx" if backend == "onnxruntime" else "torch"
    title = f"{env_name}: closed-loop success ({label}, seeds {first}..{first + episodes - 1})"
    rows = write_success_report(results, out, task_kinds(env_name), title)
    with open(out / "episodes.jsonl", "w") as f:
        for r in results:
            f.write(json.dumps({"task": r.task, "seed": r.seed, "success": r.success, "steps": r.steps,
                                "failure": r.failure, "actions": r.actions}) + "\n")  # fmt: skip
    write_traces(results, out / "trace", aspect=210 / 160 if env_name == "miniwob" else None)
    seconds = finished - launched
    env_steps = sum(r.steps for r in results)
    info = {
        "ckpt": args["ckpt"], "backend": backend, "env": env_name, "tasks": list(tasks), "episodes_per_task": episodes,
        "seeds": [first, first + episodes - 1], "parallel": parallel, "max_steps": max_steps, "headless": headless,
        "image_size": image_size, "launch_s": round(launched - started, 2), "run_s": round(seconds, 2),
        "episodes_per_s": round(len(results) / seconds, 3), "agent_steps": env_steps,
        "agent_steps_per_s": round(env_steps / seconds, 3),
        "policy_ms_per_step": round(1000 * timed.seconds / max(1, timed.steps), 3),
        "policy_ms_per_call": round(1000 * timed.seconds / max(1, timed.calls), 3),
        "browser_restarts": restarts, "aborted_episodes": sum(r.failure.startswith("aborted") for r in results),
        "success": {r["task"]: round(r["success"], 4) for r in rows},
    }  # fmt: skip
    (out / "agent.json").write_text(json.dumps(info, indent=1))
    print((out / "success.md").read_text())
    print(f"{env_steps} agent steps in {seconds:.1f} s: {env_steps / seconds:.2f} steps/s "
          f"(policy {info['policy_ms_per_step']:.1f} ms/step); {restarts} browser restarts")  # fmt: skip
    print(f"results: {out} (success.md, episodes.jsonl, trace/, agent.json)")
    return out


def write_traces(results, folder: Path, aspect: float | None) -> None:
    from lnn.agent.trace import write_gif, write_strip

    traced = [r for r in results if r.trace]
    if not traced:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for r in traced:
        write_gif(r, folder / f"{r.task}-seed{r.seed}.gif", aspect=aspect)
    write_strip(traced, folder / "strip.png", aspect=aspect)


def run_url(args, policy, backend, out: Path, headless: bool, max_steps: int, image_size: int) -> Path:
    """The seed's form: one episode on a page, the instruction from --task; the trace says what happened."""
    from lnn.agent.web import WebPageEnv
    from lnn.rollout import run_episodes

    instruction = args.get("task")
    if not instruction:
        raise ConfigError("task", 'with --url, give the instruction: --task "Click the OK button"')
    try:
        width, height = (int(v) for v in args.get("viewport", "1280x720").lower().split("x"))
    except ValueError:
        raise ConfigError("viewport", f"must be WIDTHxHEIGHT, e.g. 1280x720, got {args['viewport']!r}") from None
    env = WebPageEnv(args["url"], instruction, (width, height), image_size=image_size, headless=headless,
                     step_timeout_s=float(args.get("step_timeout_s", 20)))  # fmt: skip
    started = time.perf_counter()
    try:
        results = run_episodes(policy, [env], [("web", 0)], record=True, desc="agent", max_steps=max_steps)
    finally:
        env.close()
    seconds = time.perf_counter() - started
    r = results[0]
    ended = "the policy answered done" if r.failure == "agent-done" else r.failure
    (out / "episode.json").write_text(json.dumps({"url": args["url"], "instruction": instruction, "backend": backend,
                                                  "steps": r.steps, "ended": ended, "actions": r.actions,
                                                  "seconds": round(seconds, 2)}, indent=1))  # fmt: skip
    write_traces(results, out / "trace", aspect=height / width)
    print(f"{r.steps} steps on {args['url']} ({ended}): {', '.join(r.actions)}")
    print(f"results: {out} (episode.json, trace/)")
    return out


def main(argv: list[str] | None = None) -> None:
    from lnn.training.cli import run_or_explain

    run_or_explain(run, sys.argv[1:] if argv is None else argv)
