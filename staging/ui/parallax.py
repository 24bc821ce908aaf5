"""The Parallax tab: the product photo or a staged result as a looping MP4.

``engine.parallax(image, out, mask, seconds=..., motion=..., size=...)`` renders it
(``staging parallax``); the tab's length and motion defaults are the engine's.
"""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from staging.animate import MOTIONS
from staging.ui.compare import export_stem
from staging.ui.config import HEAVY, HEAVY_LIMIT, PRODUCT_PHOTO
from staging.ui.plumbing import mask_or_none, need_image, readable_errors, tab

PARALLAX_SIZES = ["photo", "1:1", "4:5", "9:16", "16:9"]
INTRO = (
    "Paper §5.4: the product moves more than the background behind it (inpainted "
    "once), which reads as depth. Seamless loop, H.264 MP4."
)


class ParallaxHandlers:
    """The Parallax tab's handler (a method of :class:`staging.ui.Studio`)."""

    @readable_errors
    def render_parallax(
        self,
        image: str | None,
        mask: str | None = None,
        source: str = PRODUCT_PHOTO,
        motion: str = "pan",
        seconds: float = 3.0,
        size: str = "photo",
        results: list | None = None,
        steps: dict | None = None,
        progress=gr.Progress(),
    ):
        """Parallax tab: an MP4 of the product photo or of a staged result (engine.parallax)."""
        picked = next((r for r in results or [] if r["label"] == source), None)
        need_image(image if picked is None else picked["image"])
        # Named as a designer files it: the product (or the staged result) and the motion.
        stem = export_stem(picked) if picked is not None else Path(image).stem
        if picked is not None:
            image, mask = picked["image"], picked["alpha"]
        progress(0.05, desc="inpainting the background and rendering frames")
        out = self._result_path("parallax", "") / f"{stem}-parallax-{motion}.mp4"
        out.parent.mkdir(parents=True)
        started = time.perf_counter()
        clip = self.engine.parallax(
            image,
            out,
            mask=mask_or_none(mask),
            seconds=float(seconds),
            motion=motion,
            size=None if size in (None, "", "photo") else size,
            progress=lambda fraction, message: progress(fraction, desc=message),
        )
        width, height = clip.size
        steps, status = self._step(
            steps,
            "parallax",
            f"inpaint `{self.engine.inpainter().name}`, mask `{'given' if mask else 'segment'}`",
        )
        info = (
            f"{clip.frames} frames, {width}x{height} at {clip.fps:g} fps, {clip.motion}, "
            f"{clip.fit}{', seamless loop' if clip.loop else ''} "
            f"({time.perf_counter() - started:.1f} s)"
        )
        button = gr.DownloadButton(value=str(clip.path), visible=True)
        return str(clip.path), button, info, steps, status


def build(studio, ui) -> None:
    """The Parallax tab's components, added to ``ui``."""
    with tab("Parallax", "parallax", INTRO):
        with gr.Row():
            ui.source = gr.Dropdown(
                [PRODUCT_PHOTO],
                value=PRODUCT_PHOTO,
                label="Animate",
                scale=2,
                elem_id="parallax-source",
            )
            ui.motion = gr.Radio(list(MOTIONS), value="pan", label="Motion")
            ui.seconds = gr.Slider(
                1, 10, value=3, step=0.5, label="Length (s)", elem_id="parallax-seconds"
            )
            ui.size = gr.Dropdown(
                PARALLAX_SIZES,
                value="photo",
                allow_custom_value=True,
                label="Size (ratio or WxH)",
                elem_id="parallax-size",
            )
        ui.px_button = gr.Button("Render", variant="primary", elem_id="parallax-button")
        with gr.Row():
            ui.video = gr.Video(
                label="Preview", autoplay=True, loop=True, height=360, elem_id="parallax-video"
            )
            with gr.Column():
                ui.px_info = gr.Markdown(label="Clip", elem_id="parallax-info")
                ui.download = gr.DownloadButton(
                    "Download MP4", visible=False, elem_id="parallax-download"
                )


def wire(studio, ui) -> None:
    """Render."""
    ui.px_button.click(
        studio.render_parallax,
        [ui.image, ui.alpha, ui.source, ui.motion, ui.seconds, ui.size, ui.results, ui.steps],
        [ui.video, ui.download, ui.px_info, ui.steps, ui.status],
        api_name="parallax",
        concurrency_id=HEAVY,
        concurrency_limit=HEAVY_LIMIT,
    )
