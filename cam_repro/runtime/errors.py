"""Errors that mean "your input is wrong", which the commands print as one line, not a traceback."""

from __future__ import annotations


class CamReproError(Exception):
    """Base of the errors a user can fix: bad config, missing or malformed file, no network."""


class ConfigError(CamReproError, ValueError):
    """A config value is invalid or options contradict each other."""


class InputFileError(CamReproError, ValueError):
    """A file exists but its content is wrong; the message names the file."""


class MissingFileError(CamReproError, FileNotFoundError):
    """A file or folder named in the config does not exist."""


class WeightsUnavailableError(CamReproError, RuntimeError):
    """Pretrained weights were asked for but cannot be had on this machine."""
