"""The app's Studio with an engine and folders of its own, and the shipped example photos.

Shared by the app tests (test_app.py, test_app_studio.py). It imports ``app`` (and so
gradio): a test module imports it only after its ``pytest.importorskip`` of both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import app
from staging import StagingEngine

CHAIR = str(Path(app.EXAMPLES[0]).with_name("chair.png"))
LAMP = str(Path(app.EXAMPLES[0]).with_name("lamp.png"))


@pytest.fixture(scope="module", name="studio")
def studio_fixture(tmp_path_factory):
    """The app (a Studio) with its own engine (no user models or state) and cache folders."""
    root = tmp_path_factory.mktemp("app")
    models = root / "models"
    models.mkdir()
    return app.Studio(
        engine=StagingEngine(models_dir=str(models), state_dir=root / "state"),
        cache=root / "cache",
        demo_index=root / "cache" / "demo-index",
        results=root / "results",
    )


def readable(info: pytest.ExceptionInfo) -> str:
    """A handler's gr.Error text, checked to be a message and not a traceback."""
    text = str(info.value)
    assert text and "Traceback" not in text
    return text
