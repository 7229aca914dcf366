"""Lightning's CSV logger, except that a resumed run goes on writing the same metrics.csv.

Lightning's CSVLogger starts a new `version_N` directory for each process, so a run killed and resumed
had its curves split over two files. This one always writes `<save_dir>/<name>/metrics.csv`: rows already
there are kept up to the step the run resumes from (later ones are re-logged by the resumed run).
"""

from __future__ import annotations

import csv
import os
import warnings

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only


class ResumableCSVLogger(CSVLogger):
    def __init__(self, save_dir: str, name: str = "csv", **kwargs):
        super().__init__(save_dir, name=name, version="", **kwargs)  # version "": no version_N directory
        self._earlier: list[dict] | None = None

    @property
    def experiment(self):
        if self._experiment is None:
            path = os.path.join(self.log_dir, "metrics.csv")
            self._earlier = []
            if os.path.isfile(path):  # read before Lightning's writer deletes it
                with open(path, newline="") as f:
                    self._earlier = list(csv.DictReader(f))
            with warnings.catch_warnings():  # "... will be deleted": not here, the rows were just read
                warnings.filterwarnings("ignore", message="Experiment logs directory")
                return super().experiment
        return super().experiment

    @rank_zero_only  # as Lightning's: other ranks have a dummy writer
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        writer = self.experiment
        if self._earlier:  # first rows of a resumed run: keep what was logged before this step
            kept = [{k: v for k, v in row.items() if v != ""} for row in self._earlier
                    if step is None or int(float(row.get("step") or 0)) < step]  # fmt: skip
            writer.metrics = kept + writer.metrics
            self._earlier = []
        super().log_metrics(metrics, step)
