"""Errors that a user fixes by changing an input, reported as one line by the entry points."""


class ConfigError(ValueError):
    """An invalid argument or config value.

    `key` names the argument as the constructor calls it (``tau_min``); the entry points add the
    config group in front (``model.tau_min``) so the message names the exact override to change.
    """

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


class DataError(ValueError):
    """Corrupt or unreadable data; the message names the file (and row where known)."""


class SetupError(RuntimeError):
    """Something the run needs is not installed (e.g. Chromium); the message says how to install it."""


# optional packages -> (the pyproject extra that installs them, what needs them)
EXTRAS = {
    "transformers": ("lfm2", "the LFM2-VL models (model=lfm2_liquid / lfm2_hybrid)"),
    "playwright": ("web", "MiniWoB++ and the agent in Chromium"),
    "miniwob": ("web", "the MiniWoB++ task pages (data=miniwob)"),
}


def missing_extra(error: BaseException | None) -> SetupError | None:
    """A SetupError naming the extra to install, when `error` or what caused it is a missing optional package."""
    seen = set()
    while error is not None and id(error) not in seen:  # Hydra's instantiate wraps the ImportError
        seen.add(id(error))
        if isinstance(error, ModuleNotFoundError):
            module = (error.name or "").split(".")[0]
            if module in EXTRAS:
                extra, what = EXTRAS[module]
                return SetupError(f"{module} is not installed; {what} need it: pip install -e \".[{extra}]\"")
        error = error.__cause__ or error.__context__
    return None
