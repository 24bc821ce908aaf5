"""The page: the header, the tabs in their order, and the events that join them.

Each tab module builds its own components (``build``) and wires its own events (``wire``);
:func:`build_ui` calls them in the page's order and holds what they share — the session's
states, the product photo and alpha every mode reads, the status line, the Compare tab's
refresh and the Adjust panel's re-render.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from staging.models import get_spec
from staging.segment import RECOMMENDED
from staging.ui import catalog, compare, copy_paste, generated, mask, parallax, studio

INTRO = """# Product Staging Studio
Catalog photo in → staged ad images and parallax videos out, on the CPU. Segmentation uses a
pretrained IS-Net (fetched once); everything else has weights-free defaults, and pretrained
models are used when they are in the models folder.
**Demo data:** the examples and the small demo catalog are procedural renders shipped with the
project. Real use means indexing **your own catalog** of staged photos (Catalog tab, or
`staging index`)."""

# Gradio gives a gallery as many columns as it has images (at most ``columns``): one result
# then spans the whole width as a 1200 px square, cropped by the box's height. Results keep
# their four columns, so each is shown whole.
CSS = """
#vanilla-gallery .grid-container, #prompt-gallery .grid-container { --grid-cols: 4 !important; }
"""


def _header(app, ui) -> None:
    """The session's states, the intro, the status line, the segmenter banner, Advanced."""
    ui.steps = gr.State({})
    ui.results = gr.State([])
    ui.cp_scenes = gr.State([])  # the last copy-paste results' scenes, for adjusting
    ui.adjusting = gr.State(None)  # the result being adjusted: scene, object, feet
    ui.adjusted = gr.State(None)  # its last render (a Staged), to keep
    gr.Markdown(INTRO)
    ui.status = gr.Markdown(app.status_line({}), label="Status", elem_id="status-line")
    with gr.Row():
        ui.seg_banner = gr.Markdown(app.engine.segmentation_status(), elem_id="segmentation-banner")
        ui.pull_button = gr.Button(
            f"Fetch the segmentation model ({get_spec(RECOMMENDED).size_mb:.0f} MB)",
            visible=app.engine.pretrained_segmenter_name() is None,
            elem_id="pull-model-button",
            scale=0,
        )
    ui.advanced = gr.Checkbox(
        value=False, label="Advanced: show the JSON details of each result", elem_id="advanced"
    )


def _advanced(ui) -> None:
    """The Advanced switch shows or hides every JSON details panel."""
    panels = [ui.studio_details, ui.cp_details, ui.adjust_details, ui.v_details, ui.p_details]
    ui.advanced.change(
        lambda on: [gr.update(visible=bool(on))] * len(panels),
        [ui.advanced],
        panels,
        api_visibility="private",
    )


def build_ui(app) -> gr.Blocks:
    """The whole page for ``app`` (a :class:`staging.ui.Studio`), its events wired."""
    ui = SimpleNamespace()
    with gr.Blocks(title="Product Staging Studio", delete_cache=(3600, 86400)) as ui.demo:
        _header(app, ui)
        with gr.Tabs(selected="studio") as ui.tabs:
            studio.build(app, ui)
            mask.build(app, ui)
            catalog.build(app, ui)
            copy_paste.build(app, ui)
            ui.categories = app.category_choices()
            generated.build_vanilla(app, ui)
            generated.build_prompt(app, ui)
            compare.build(app, ui)
            parallax.build(app, ui)
        ui.refresh = compare.refresh_event(app, ui)
        ui.rerender = copy_paste.rerender_event(app, ui)
        for tab in (mask, catalog, copy_paste, generated, compare, parallax, studio):
            tab.wire(app, ui)
        _advanced(ui)
    return ui.demo
