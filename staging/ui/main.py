"""The app as one object, and how it starts: :class:`Studio`, :func:`create_app`, :func:`main`.

:class:`Studio` is the app's state (:class:`~staging.ui.context.AppContext`: the engine and the
folders) with every tab's handlers as its methods; building the page, its queue, its launch
options and the warm-up at start are methods too, so that a test makes a Studio with its own
engine and folders and runs the very same code.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from typing import Any

import gradio as gr

from staging.segment.base import prepare_matting
from staging.ui.catalog import CatalogHandlers
from staging.ui.compare import CompareHandlers
from staging.ui.config import MAX_UPLOAD
from staging.ui.context import AppContext
from staging.ui.copy_paste import CopyPasteHandlers
from staging.ui.generated import GeneratedHandlers
from staging.ui.layout import CSS, build_ui
from staging.ui.mask import MaskHandlers
from staging.ui.parallax import ParallaxHandlers
from staging.ui.studio import StudioHandlers

log = logging.getLogger("staging.app")
DESCRIPTION = "Product Staging Studio — the web app (a thin skin over staging.StagingEngine)."


class Studio(
    StudioHandlers,
    MaskHandlers,
    CatalogHandlers,
    CopyPasteHandlers,
    GeneratedHandlers,
    CompareHandlers,
    ParallaxHandlers,
    AppContext,
):
    """One app: an engine, its folders (see :class:`~staging.ui.context.AppContext` for the
    arguments), and every tab's handlers, each one engine (or library) call."""

    # The warm-up's first step, an attribute so that a test can stand in for it.
    prepare_matting = staticmethod(prepare_matting)

    def build_ui(self) -> gr.Blocks:
        """The page (:func:`staging.ui.layout.build_ui`)."""
        return build_ui(self)

    def create_app(self) -> gr.Blocks:
        """The UI with its queue: at most 32 waiting requests, light steps 2 at a time, heavy
        steps (index, staging, rendering) ``STAGING_APP_CONCURRENCY`` (1) at a time."""
        demo = self.build_ui()
        demo.queue(default_concurrency_limit=2, max_size=32)
        return demo

    def launch_options(self, host: str = "127.0.0.1", port: int = 7860) -> dict[str, Any]:
        """Keyword arguments of ``demo.launch``: upload size limit, readable errors, access to
        the result files."""
        return {
            "server_name": host,
            "server_port": port,
            "max_file_size": MAX_UPLOAD,
            "show_error": True,
            "allowed_paths": [str(self.results_dir)],
            "css": CSS,
        }

    def warm_up(self) -> None:
        """At start, in the background: compile the matting kernels (once per install), then
        index the demo catalog (which opens the segmentation model), so that a user's first
        photo and first grid wait for neither. A failure here is only logged: the
        same step runs again, with its readable error, when the user needs it."""
        self.prepare_matting()
        try:
            self.demo_index()
        except Exception:  # noqa: BLE001 - a warm-up must never stop the app
            log.exception("warming up the demo index")

    def main(self, argv: list[str] | None = None) -> None:
        """``python app.py [--host H] [--port P]``: warm up in the background, then serve."""
        parser = argparse.ArgumentParser(description=DESCRIPTION)
        parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860))
        )
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.WARNING)
        log.setLevel(logging.INFO)
        threading.Thread(target=self.warm_up, name="warm-up", daemon=True).start()
        self.create_app().launch(**self.launch_options(args.host, args.port))


def create_app(studio: Studio | None = None) -> gr.Blocks:
    """The app's page with its queue, for ``studio`` (default: a new :class:`Studio` from the
    environment's settings)."""
    return (studio or Studio()).create_app()


def launch_options(
    host: str = "127.0.0.1", port: int = 7860, studio: Studio | None = None
) -> dict[str, Any]:
    """Keyword arguments of ``demo.launch`` for ``studio`` (default: a new one)."""
    return (studio or Studio()).launch_options(host, port)


def main(argv: list[str] | None = None) -> None:
    """Start the app (``python app.py``): one Studio from the environment's settings."""
    Studio().main(argv)
