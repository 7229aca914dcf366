"""What the entry points share: bad input -> one line on stderr, no traceback."""

from __future__ import annotations

import logging
import sys

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from lnn.errors import ConfigError, DataError, SetupError, missing_extra

log = logging.getLogger("lnn")


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_or_explain(task, *args, **kwargs):
    """Run task; on a config/data/setup error print one line and exit 2 (in a sweep: log it, return None)."""
    try:
        return task(*args, **kwargs)
    except ConfigError as e:
        message = f"error: {e.key} — {e.message}"
    except (DataError, SetupError) as e:  # SetupError: e.g. Chromium missing, with how to install it
        message = f"error: {e}"
    except Exception as e:  # an optional extra not installed (perhaps inside Hydra's instantiate): name it
        setup = missing_extra(e)
        if setup is None:
            raise
        message = f"error: {setup}"
    if in_multirun():
        log.error(message)
        return None
    print(message, file=sys.stderr)
    sys.exit(2)
