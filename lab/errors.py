"""Errors the CLI turns into one line and exit code 2 (never a traceback)."""


class ConfigError(ValueError):
    """Bad input: the message names the field and what is allowed."""
