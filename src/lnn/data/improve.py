"""A trained policy's own episodes as training data (what took Pix2Act from behaviour cloning to 96%).

The policy plays fresh training seeds (after the oracle's dataset and earlier rounds': never a val, test
or Pix2Act seed) while the env's oracle labels every state it visits; the oracle reads the page as it
is now (the DOM, for MiniWoB), so a state the policy reached by its own mistakes gets the correct next
action too. An episode it solved is kept as it played it (its own actions; the oracle's boxes); a failed
one is relabelled DAgger-style: the states it visited, each with the oracle's action. States after one the
oracle cannot label are dropped.

The dataset is written like a recording (lnn.data.rollouts: shards, atomic, resumable, the same rows),
its cache key holding the policy checkpoint's sha256; recording.json counts per task the episodes kept,
relabelled and skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from lnn.data.rollouts import RETRIES, RolloutSpec, _row, build_dataset
from lnn.envs import Env, EpisodeAborted, OracleError, OracleStep
from lnn.errors import ConfigError
from lnn.rollout import SPLIT_SEED_BASE, OraclePolicy, run_episodes

log = logging.getLogger("lnn")

KEPT, RELABELLED, SKIPPED = "kept", "relabelled", "skipped"


class Labelled:
    """A learned policy acting while each env's oracle labels the state it acts in (None: no label)."""

    def __init__(self, policy, envs: list[Env]):
        self.policy, self.envs, self.rows = policy, envs, []

    def reset(self, batch: int) -> None:
        self.policy.reset(batch)
        self.rows = list(range(batch))

    def act(self, observations):
        labels = [_label(self.envs[i]) for i in self.rows]  # before acting: the state the policy sees
        actions, info = self.policy.act(observations)
        return actions, {**info, "oracle": labels}

    def keep(self, rows: list[int]) -> None:
        self.policy.keep(rows)
        self.rows = [self.rows[r] for r in rows]

    trace_step = staticmethod(OraclePolicy.trace_step)


def _label(env: Env) -> OracleStep | None:
    try:
        return env.oracle()
    except OracleError:  # a state the oracle cannot read (e.g. a page the policy broke): no label from here on
        return None


def play_and_label(policy, env: Env, episode: int, task: str, seed: int, max_steps: int | None
                   ) -> tuple[list[dict], dict | None, str]:  # fmt: skip
    """One episode of `policy` as dataset rows: kept (solved: its own actions) or relabelled (failed: the
    oracle's action at each state it visited, up to the first the oracle cannot label); else no rows and
    a note. An episode the env aborts (browser fault) is played again from its seed up to RETRIES times."""
    for _ in range(RETRIES + 1):
        try:
            result = run_episodes(Labelled(policy, [env]), [env], [(task, seed)], record=True, desc=None,
                                  max_steps=max_steps)[0]  # fmt: skip
        except EpisodeAborted as e:  # in an oracle call (the env has restarted its browser)
            reason = e.reason
            continue
        if not result.aborted:
            break
        reason = result.aborted
    else:
        return [], {"episode": episode, "task": task, "seed": seed, "reason": f"aborted {RETRIES + 1} times, last: {reason}"}, SKIPPED

    if result.success:  # its own actions; the oracle's boxes where it could tell
        steps = [{**s, "oracle": s["oracle"] or OracleStep(s["action"])} for s in result.trace]
    else:
        labelled = []
        for s in result.trace:
            if s["oracle"] is None:
                break
            labelled.append({**s, "action": s["oracle"].action})
        steps = labelled
    if not steps:
        return [], {"episode": episode, "task": task, "seed": seed, "reason": "failed, and the oracle could not label "
                    f"its first state ({result.failure})"}, SKIPPED  # fmt: skip
    try:
        rows = [_row(episode, seed, task, i, s) for i, s in enumerate(steps)]
    except ValueError as e:  # an oracle's key the key head has no class for (rollouts.key_index)
        return [], {"episode": episode, "task": task, "seed": seed, "reason": str(e)}, SKIPPED
    return rows, None, KEPT if result.success else RELABELLED


_policies: dict[str, object] = {}  # checkpoint -> TorchPolicy, loaded once per recording process


@dataclass(frozen=True)
class OwnEpisodesSpec(RolloutSpec):
    """The episodes a trained policy plays on `episodes_per_task` training seeds from `first_seed`.

    The cache key holds the checkpoint's sha256, not its path (a moved run reuses its data, a retrained one
    does not); `max_steps` ends an episode the page never ends (data.max_steps)."""

    split: str = "own"
    checkpoint: str = ""
    checkpoint_sha256: str = ""
    max_steps: int | None = None

    def seeds(self) -> range:
        return range(self.first_seed, self.first_seed + self.episodes_per_task)

    def key(self) -> str:
        return self._hash({k: v for k, v in asdict(self).items() if k != "checkpoint"})

    def episode_rows(self, env: Env, episode: int, task: str, seed: int) -> tuple[list[dict], dict | None, str]:
        if self.checkpoint not in _policies:
            from lnn.rollout import TorchPolicy
            from lnn.runs import load_policy

            _policies[self.checkpoint] = TorchPolicy(load_policy(self.checkpoint))
        return play_and_label(_policies[self.checkpoint], env, episode, task, seed, self.max_steps)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


IMPROVE = "improve.json"  # in a run directory: the own-episode datasets it trained on, round by round


def own_datasets(policy: str | Path, env: str, tasks: tuple[str, ...], episodes_per_task: int, oracle_episodes: int,
                 env_kwargs: dict, max_steps: int | None, root: Path, workers: int = 1) -> list[dict]:  # fmt: skip
    """Every round of own episodes to train on: those the run of `policy` trained on (its improve.json),
    then the policy's own on the next fresh training seeds, recorded now unless cached. A round:
    {"dataset", "checkpoint", "sha256", "seeds": [first, end), "per_task": {task: {outcome: episodes}}}."""
    from lnn.runs import find_checkpoint

    found = find_checkpoint(policy, key="improve.from")
    earlier = json.loads((found.run_dir / IMPROVE).read_text())["rounds"] if (found.run_dir / IMPROVE).exists() else []
    first = max([oracle_episodes] + [r["seeds"][1] for r in earlier])
    if first + episodes_per_task > SPLIT_SEED_BASE["val"]:
        raise ConfigError("improve.episodes_per_task", f"the seeds {first}.. would run into the validation seeds "
                          f"({SPLIT_SEED_BASE['val']}..); play fewer episodes")  # fmt: skip
    for r in earlier:
        if not Path(r["dataset"]).exists():
            raise ConfigError("improve.from", f"{found.run_dir / IMPROVE} names {r['dataset']}, which is gone; "
                              "record it again by improving its own run, or start from an oracle-only run")  # fmt: skip
    spec = OwnEpisodesSpec(env, tasks, episodes_per_task, env_kwargs=env_kwargs, checkpoint=str(found.checkpoint),
                           checkpoint_sha256=file_sha256(found.checkpoint), first_seed=first, max_steps=max_steps)  # fmt: skip
    path = build_dataset(spec, root, workers=workers)
    per_task = json.loads((path / "recording.json").read_text())["per_task"]
    log.info(f"own episodes of {found.checkpoint} on training seeds {first}..{first + episodes_per_task - 1} "
             f"({path}):\n" + format_outcomes(per_task))  # fmt: skip
    return earlier + [{"dataset": str(path), "checkpoint": spec.checkpoint, "sha256": spec.checkpoint_sha256,
                       "seeds": [first, first + episodes_per_task], "per_task": per_task}]  # fmt: skip


def format_outcomes(per_task: dict[str, dict[str, int]], before: dict | None = None, after: dict | None = None) -> str:
    """Markdown: per task, the episodes kept (solved), relabelled (failed) and skipped; with `before` and
    `after` (results.json of the playing run and of the run trained on its episodes), test success of each."""
    compare = before is not None and after is not None
    lines = ["| task | kept (solved) | relabelled (failed) | skipped |" + (" test success before | after |" if compare else ""),
             "|---|---:|---:|---:|" + ("---:|---:|" if compare else "")]  # fmt: skip
    for task, counts in per_task.items():
        line = f"| {task} | {counts.get(KEPT, 0)} | {counts.get(RELABELLED, 0)} | {counts.get(SKIPPED, 0)} |"
        if compare:
            line += "".join(f" {_percent(r.get(f'test/success/{task}'))} |" for r in (before, after))
        lines.append(line)
    return "\n".join(lines) + "\n"


def _percent(value) -> str:
    return "" if value is None else f"{100 * value:.1f}%"
