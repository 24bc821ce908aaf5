"""The few error types users see.

Every error the library raises on purpose derives from :class:`StagingError`, so the app and
the CLI can show its message as it is (never a traceback) and let anything else surface as a
bug.
"""

from __future__ import annotations


class StagingError(Exception):
    """Base class: the message is written for the person using the tool."""


class ImageLoadError(StagingError, ValueError):
    """The input is not an image we can read (corrupt, unsupported, empty or too large)."""


class ModelNotAvailableError(StagingError, FileNotFoundError):
    """A model's files are not in the models directory and may not be downloaded now.

    The message names the exact command that fetches them.
    """


class UnknownNameError(StagingError, KeyError):
    """A backend or model name that no registry knows; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
