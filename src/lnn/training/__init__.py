"""Training: the LightningModule, closed-loop evaluation, runs from Hydra configs."""
