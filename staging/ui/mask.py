"""The Mask tab: the product's segmentation, and brush corrections every mode then uses.

``engine.segment(image, backend)`` makes the probability map, the mask and the cutout (the same
as ``staging segment``); :mod:`staging.segment.edit` turns brush strokes into a corrected mask.
A new photo is segmented at once; the header offers the one-click fetch of the recommended
segmentation model while none is on disk.
"""

from __future__ import annotations

import gradio as gr

from staging import StagingError
from staging.io import load_image
from staging.segment import BACKENDS
from staging.segment import edit as mask_edit
from staging.segment.base import WORKING_SIDE
from staging.ui.plumbing import need_image, readable_errors, readable_uploads


class MaskHandlers:
    """The Mask tab's handlers (methods of :class:`staging.ui.Studio`)."""

    def segmentation_banner(self):
        """What ``auto`` segments with, and the one-click fetch when no pretrained model is on
        disk (engine.segmentation_status)."""
        missing = self.engine.pretrained_segmenter_name() is None
        return gr.update(value=self.engine.segmentation_status()), gr.update(visible=missing)

    @readable_errors
    def pull_segmenter(self, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio's idiom
        """Fetch the recommended segmentation model with progress (engine.pull_model)."""
        self.engine.pull_model()
        return self.segmentation_banner()

    @readable_errors
    def segment_product(
        self,
        image: str | None,
        backend: str = "auto",
        steps: dict | None = None,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008 - the first run's model fetch
    ):
        """Probability map, binary mask, cutout and the product's alpha (engine.segment)."""
        need_image(image)
        progress(0.1, desc=f"Segmenting (big photos at a {WORKING_SIDE} px working size)")
        seg = self.engine.segment(image, backend=backend)
        steps, status = self._step(steps, "segment", f"`{seg.backend}`")
        progress(0.5, desc="Cutting out at the photo's own size")
        cutout = self._served(seg.cutout, "cutout")
        return (
            self._served(seg.prob_image, "probability"),
            self._served(seg.mask_image, "mask"),
            cutout,
            self._served(seg.prob_image, "alpha"),
            steps,
            status,
        )

    @readable_errors
    def correct_mask(
        self,
        image: str | None,
        backend: str = "auto",
        editor: dict | None = None,
        steps: dict | None = None,
    ):
        """Apply the brush strokes to the segmentation (staging.segment.edit)."""
        need_image(image)
        seg = self.engine.segment(image, backend=backend)
        layers = (editor or {}).get("layers") or []
        size = (seg.image.shape[1], seg.image.shape[0])
        add, remove = mask_edit.strokes_to_edits(layers, size=size)
        if not add.any() and not remove.any():
            raise gr.Error(
                f"No strokes yet: paint with green ({mask_edit.ADD_COLOUR}) to add to the "
                f"product and red ({mask_edit.REMOVE_COLOUR}) to remove from it, then apply."
            )
        fixed = mask_edit.edit_segmentation(seg, add=add, remove=remove)
        steps, status = self._step(steps, "segment", f"`{fixed.backend}`")
        return (
            self._served(fixed.mask_image, "mask"),
            self._served(fixed.cutout, "cutout"),
            self._served(fixed.prob_image, "alpha"),
            steps,
            status,
        )

    def brush_canvas(self, image: str | None, mask: str | None):
        """The photo with the background tinted, as the brush editor's background."""
        if image is None or mask is None:
            return None
        try:
            rgb = self.engine.load_image(image)
            alpha = load_image(mask)[..., 0]
            return {
                "background": mask_edit.mask_overlay(rgb, alpha),
                "layers": [],
                "composite": None,
            }
        except (StagingError, ValueError):
            return None

    @staticmethod
    def _no_alpha():
        return None

    def product_failed(self, steps: dict | None = None):
        """After a photo could not be read: clear the previous product's views."""
        line = self.status_line(steps or {}) + " · **product**: the last photo could not be read"
        return None, None, None, None, None, line

    def product_changed(self, image: str | None, backend: str = "auto", steps: dict | None = None):
        """A new photo (upload, example, clear): segment it at once, or clear the old results."""
        if image is None:
            return None, None, None, None, steps or {}, self.status_line(steps or {})
        return self.segment_product(image, backend, steps)


def build(studio, ui) -> None:
    """The Mask tab's components, added to ``ui``."""
    with gr.Tab("Mask", id="mask"):
        with gr.Row():
            ui.backend = gr.Dropdown(
                ["auto", *BACKENDS],
                value="auto",
                label="Segmentation backend",
                info="auto: the best pretrained model on disk (IS-Net first); without "
                "one, the weights-free 'backdrop' for plain backdrops only",
                scale=3,
            )
            ui.run = gr.Button("Segment again", variant="primary", elem_id="segment-button")
        with gr.Row():
            shown = dict(type="filepath", format="png", height=240, interactive=False)
            ui.prob = gr.Image(label="Probability", **shown)
            ui.mask_view = gr.Image(
                label="Mask (threshold 0.5, with corrections)", elem_id="mask-image", **shown
            )
            ui.cutout = gr.Image(label="Cutout", elem_id="cutout-image", **shown)
        # The product's alpha as every mode receives it (hidden; an API input).
        ui.alpha = readable_uploads(  # an upload too: every staging call of the API takes it
            gr.Image(
                label="Product alpha",
                type="filepath",
                format="png",
                image_mode="L",
                visible=False,
            )
        )
        with gr.Accordion("Correct the mask with a brush", open=False, elem_id="brush"):
            gr.Markdown(
                "The background is tinted blue. Paint **green** over parts of the product "
                "the mask missed and **red** over background it kept, then apply."
            )
            ui.editor = gr.ImageEditor(
                label="Brush",
                type="numpy",
                format="png",
                sources=(),
                transforms=(),
                layers=False,
                brush=gr.Brush(
                    colors=[mask_edit.ADD_COLOUR, mask_edit.REMOVE_COLOUR],
                    default_color=mask_edit.ADD_COLOUR,
                    color_mode="fixed",
                    default_size=12,
                ),
                eraser=gr.Eraser(default_size=12),
                height=420,
                elem_id="brush-editor",
            )
            ui.apply_brush = gr.Button("Apply corrections", elem_id="apply-brush")


def wire(studio, ui) -> None:
    """The header's model fetch, segmenting a new photo, and the brush."""
    seg_outputs = [ui.prob, ui.mask_view, ui.cutout, ui.alpha, ui.steps, ui.status]
    banner = dict(
        fn=studio.segmentation_banner,
        inputs=None,
        outputs=[ui.seg_banner, ui.pull_button],
        api_visibility="private",
    )
    ui.pull_button.click(
        studio.pull_segmenter, None, [ui.seg_banner, ui.pull_button], api_name="pull_model"
    )
    ui.demo.load(**banner)  # a model fetched by another session or the CLI shows up on reload
    canvas = dict(
        fn=studio.brush_canvas,
        inputs=[ui.image, ui.mask_view],
        outputs=[ui.editor],
        api_visibility="private",
    )
    ui.run.click(
        studio.segment_product, [ui.image, ui.backend, ui.steps], seg_outputs, api_name="segment"
    ).success(**canvas).then(**banner)
    # A new photo: drop the old alpha at once (a Stage click must never pair the new photo
    # with the previous photo's mask), then segment it.
    changed = ui.image.change(
        studio._no_alpha, None, [ui.alpha], queue=False, api_visibility="private"
    ).then(
        studio.product_changed,
        [ui.image, ui.backend, ui.steps],
        seg_outputs,
        api_visibility="private",
    )
    changed.success(**canvas).then(**banner)
    # A photo that cannot be read: its one message is the upload's; nothing of the previous
    # product stays on screen (mask, cut-out, brush canvas), and the status line says so.
    changed.failure(
        studio.product_failed,
        [ui.steps],
        [ui.prob, ui.mask_view, ui.cutout, ui.alpha, ui.editor, ui.status],
        api_visibility="private",
    )
    ui.apply_brush.click(
        studio.correct_mask,
        [ui.image, ui.backend, ui.editor, ui.steps],
        [ui.mask_view, ui.cutout, ui.alpha, ui.steps, ui.status],
        api_name="correct_mask",
    )
