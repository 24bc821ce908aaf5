"""The handlers' plumbing: readable errors, readable uploads, progress, and result words.

Nothing here knows a tab: these are the wrappers every handler goes through (a failure becomes
a sentence, never a traceback) and the small translations between Gradio's values and the
library's (a progress bar, an empty mask field, a result's words and details).
"""

from __future__ import annotations

import functools
import inspect
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr

from staging import StagingError, captions
from staging.access import AccessRefused
from staging.errors import without_paths
from staging.io import load_image

log = logging.getLogger("staging.app")


def readable_errors(fn):
    """Run a handler; turn every failure into a ``gr.Error`` with a sentence, never a traceback.

    Library errors (:class:`StagingError`, which includes unreadable images and missing
    models) are already written for people. Anything else is a bug: its message is shown
    and the traceback goes to the server log. Paths in a message are cut to their file names
    (:func:`staging.errors.without_paths`): a browser never learns the server's folders.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except StagingError as exc:
            raise gr.Error(without_paths(str(exc)), print_exception=False) from None
        except (ValueError, OSError) as exc:
            message = without_paths(f"That did not work: {exc}")
            raise gr.Error(message, print_exception=False) from None
        except Exception as exc:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                without_paths(
                    f"Unexpected error ({type(exc).__name__}: {exc}). The details are in the "
                    "server log."
                ),
                print_exception=False,
            ) from None

    wrapper.__signature__ = inspect.signature(fn)  # gr.Progress defaults must stay visible
    return wrapper


def refusals(fn):
    """A refused path or index name (:class:`staging.access.AccessRefused`) as a ``gr.Error``
    that quotes the name as the user typed it (their own words, so not cut to a file name)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AccessRefused as exc:
            raise gr.Error(str(exc)) from None

    return wrapper


def readable_uploads(component: gr.Image) -> gr.Image:
    """Make ``component``'s own decoding of an upload fail with our readable message.

    Gradio opens every uploaded image with PIL *before* a handler runs, so a corrupt or
    non-image file (sent through the API, or renamed to .jpg) used to reach the user as
    Gradio's bare decoding error and left a traceback in the server log. Here such a
    failure is explained by the same loader every other entry point uses. (The instance's
    method is wrapped: subclassing a Gradio component makes Gradio write a ``.pyi`` stub
    next to this file at import time.)
    """
    decode = component.preprocess

    @functools.wraps(decode)
    def preprocess(payload):
        try:
            return decode(payload)
        except gr.Error:
            raise
        except Exception as exc:
            path = getattr(payload, "path", None)
            message = f"That file could not be read as an image ({type(exc).__name__})."
            if path:
                try:
                    load_image(path)
                except StagingError as why:  # named as the user knows it, not our temp path
                    name = getattr(payload, "orig_name", None) or Path(path).name
                    message = str(why).replace(str(path), name)
                except Exception:  # the loader's own surprise: keep the message above
                    log.exception("loading the upload %s", path)
            raise gr.Error(message, print_exception=False) from None

    component.preprocess = preprocess
    return component


def need_image(image: Any) -> None:
    """A readable error when a step needs the product photo and there is none."""
    if image is None:
        raise gr.Error("Upload a product photo first (or pick an example in the Studio tab).")


def progress_callback(progress: gr.Progress):
    """Adapt a gr.Progress to the library's ``progress(fraction, message)`` callbacks."""

    def report(fraction: float, message: str = "") -> None:
        progress(float(fraction), desc=message or None)

    return report


def mask_or_none(mask: str | None) -> str | None:
    """The alpha field's file, or None (segment the photo) when it is empty."""
    return mask if mask else None


def text_or_none(text: str | None) -> str | None:
    """A text field stripped, or None when blank (the library then decides)."""
    return (text or "").strip() or None


def details(staged: list) -> list[dict]:
    """The JSON panel's details: files named, never located (:func:`captions.public_details`)."""
    return [captions.public_details(item) for item in staged]


def why(staged: list, skipped: dict | None = None) -> str:
    """Each result in a designer's words (:func:`captions.explain`), and what did not run."""
    lines = [f"**{captions.label(item)}.** {captions.explain(item)}" for item in staged]
    lines += [
        f"**{mode.capitalize()}** made nothing: {reason}"
        for mode, reason in (skipped or {}).items()
    ]
    return "\n\n".join(lines)


def scene_info(item) -> dict[str, Any]:
    """What re-rendering a copy-paste result needs (kept server-side, in a gr.State)."""
    source, product = item.source, item.source.get("product") or {}
    return {
        "scene": source["path"], "scene_mask": source.get("mask"), "box": source.get("box"),
        "object_size": source.get("object_size"), "object_type": source.get("object_type"),
        "product_type": product.get("product_type"), "product_size": product.get("product_size"),
    }  # fmt: skip


@contextmanager
def tab(title: str, tab_id: str, intro: str):
    """A tab of the page (``tab_id`` selects it), its intro first."""
    with gr.Tab(title, id=tab_id):
        gr.Markdown(intro)
        yield
