"""Lightning's CSV logger, except that a resumed run goes on writing the same metrics.csv.

Lightning's CSVLogger starts a new `version_N` directory for each process, so a run killed and resumed
had its curves split over two files. This one always writes `<save_dir>/<name>/metrics.csv`: rows already
there are kept up to the step the run resumes from (later ones are re-logged by the resumed run).
Its header is always the union of the keys in the file and the keys logged since: a resumed run that
logs a key the file lacks (a first epoch's end, killed before) rewrites the file instead of failing.
"""

from __future__ import annotations

import csv
import os
import warnings

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only


class UnionHeaderWriter(ExperimentWriter):
    def save(self) -> None:
        if self.metrics and os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                header = next(csv.reader(f), [])
            keys = sorted(set(header) | set(self.metrics_keys) | set().union(*self.metrics))
            if keys != header:  # the rows on disk under the new header, then append as Lightning does
                self.metrics_keys = keys
                self._rewrite_with_new_header(keys)
        super().save()


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
                os.makedirs(self.root_dir, exist_ok=True)
                self._experiment = UnionHeaderWriter(log_dir=self.log_dir)
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
