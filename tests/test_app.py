"""The app is a thin skin: its handlers call the engine and turn user errors into gr.Error."""

from __future__ import annotations

from pathlib import Path

import pytest

gr = pytest.importorskip("gradio")
app = pytest.importorskip("app")


def test_segment_handler_on_an_example():
    example = Path(app.EXAMPLES[0])
    prob, mask, cutout, status = app.segment_product(str(example), "auto")
    assert cutout.mode == "RGBA" and mask.mode == "L" and prob.size == cutout.size
    assert "catalog" in status and "cpu" in status


@pytest.mark.parametrize("bad", [None, "README.md"])
def test_segment_handler_errors_are_readable(bad):
    with pytest.raises(gr.Error) as info:
        app.segment_product(bad, "auto")
    assert "Traceback" not in str(info.value)


def test_ui_builds_with_examples():
    assert len(app.EXAMPLES) >= 3
    assert app.build_ui() is not None
