"""Oracle rollouts on disk (HF datasets), users' folders imported into the same format, and the DataModules
that batch whole episodes."""

from lnn.data.datamodule import IGNORE, EpisodeDataModule, Episodes, collate_episodes, load_episodes
from lnn.data.folder import FolderDataModule, import_folder
from lnn.data.rollouts import RolloutSpec, build_dataset, record_episode
from lnn.rollout import SPLIT_SEED_BASE

__all__ = [
    "IGNORE", "EpisodeDataModule", "FolderDataModule", "import_folder", "Episodes", "collate_episodes", "load_episodes",
    "SPLIT_SEED_BASE", "RolloutSpec", "build_dataset", "record_episode",
]
