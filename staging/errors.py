"""The few error types users see.

Every error the library raises on purpose derives from :class:`StagingError`, so the app and
the CLI can show its message as it is (never a traceback) and let anything else surface as a
bug.
"""

from __future__ import annotations

import re


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


# An absolute POSIX path of two or more parts (not the path of a URL: no ``:`` or word before).
_SERVER_PATH = re.compile(r"(?<![\w:/.~-])(?:/[\w.~+@-]+)+/([\w.~+@-]+)")


def without_paths(message: str) -> str:
    """``message`` with every absolute path replaced by its last part (``/srv/shop/a.png`` →
    ``a.png``): what a browser or API client is told names files, never the server's folders.
    The CLI and the logs keep full paths; the app and the service send messages through this."""
    return _SERVER_PATH.sub(r"\1", message)
