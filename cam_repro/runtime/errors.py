"""Errors that mean "your input is wrong", which the commands print as one line, not a traceback."""

from __future__ import annotations


def first_line(err: BaseException, default: str | None = None) -> str:
    """The first line of an exception's message (libraries' can run to many lines), or
    `default` (the exception's type name) when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else (default or type(err).__name__)


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


class OutputError(CamReproError, OSError):
    """A result cannot be written (read-only folder, full disk, no permission); names the path."""


class RunFolderBusyError(CamReproError, RuntimeError):
    """Another live process holds the run folder's lock."""


class RunInterruptedError(CamReproError):
    """The user interrupted a run (Ctrl-C); the message says what was kept and how to go on.

    `resume` holds the command-line overrides that continue the run (cam-train adds them to the
    command that was run); the commands exit with 130, as a shell does for SIGINT."""

    def __init__(self, message: str, resume: list[str] | None = None) -> None:
        super().__init__(message)
        self.resume = resume


class NonFiniteError(CamReproError, FloatingPointError):
    """A weight, logit or map is NaN or infinite: results from it would be silently wrong."""
