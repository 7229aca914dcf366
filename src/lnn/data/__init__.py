"""Oracle rollouts on disk (HF datasets) and the DataModule that batches whole episodes."""

from lnn.data.datamodule import IGNORE, EpisodeDataModule, Episodes, collate_episodes, load_episodes
from lnn.data.rollouts import RolloutSpec, build_dataset, record_episode
from lnn.rollout import SPLIT_SEED_BASE

__all__ = [
    "IGNORE", "EpisodeDataModule", "Episodes", "collate_episodes", "load_episodes",
    "SPLIT_SEED_BASE", "RolloutSpec", "build_dataset", "record_episode",
]
