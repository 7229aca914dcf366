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
