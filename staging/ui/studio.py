"""The Studio tab: the product once, every mode in one labelled grid, and acting on a pick.

``engine.stage_candidates`` makes copy-paste × k, vanilla and the prompt the category's bandit
suggests; :mod:`staging.captions` names each result (``label``), says why it looks as it does
(``explain``) and gives its details without server paths (``public_details``). A pick can be
favourited (the Compare tab's favourites), adjusted (copy-paste: the Copy-paste tab's Adjust
panel), animated (the Parallax tab's settings) or exported.
"""

from __future__ import annotations

import gradio as gr

from staging import captions
from staging.ui.config import EXAMPLES, HEAVY, HEAVY_LIMIT, PICK_FIRST
from staging.ui.plumbing import (
    readable_errors,
    readable_uploads,
    scene_info,
    why,
)


class StudioHandlers:
    """The Studio tab's handlers (methods of :class:`staging.ui.Studio`)."""

    @readable_errors
    def stage_all(
        self,
        image: str | None,
        mask: str | None = None,
        k: int = 3,
        product_type: str = "",
        product_size: str = "",
        index_dir: str = "",
        results: list | None = None,
        steps: dict | None = None,
        progress=gr.Progress(),
    ):
        """Studio: every mode's candidates in one grid (engine.stage_candidates) — copy-paste
        into the chosen index's scenes, vanilla, and the prompt the bandit suggests."""
        found = self.engine.stage_candidates(
            image,
            **self._retrieval(image, mask, k, index_dir, product_type, product_size, progress),
        )
        results, gallery = self._keep(results, found.results, image)
        new = results[len(results) - len(found.results) :]
        picks, details = [], []
        for kept, item in zip(new, found.results, strict=True):
            words, public = captions.explain(item), captions.public_details(item)
            picks.append({
                "label": kept["label"], "why": f"**{kept['label']}.** {words}",
                "details": public,
                "scene": scene_info(item) if item.mode == "copy-paste" else None,
            })  # fmt: skip
            details.append(dict(public, label=kept["label"], why=words))
        made = ", ".join(
            f"{mode} ×{sum(r.mode == mode for r in found.results)}" for mode in found.modes
        )
        steps, status = self._step(steps, "studio", made)
        notes = why([], found.skipped) or "Pick a result to see where it came from and why."
        return gallery, notes, details, results, steps, status, picks

    def pick_candidate(self, picks: list | None, evt: gr.SelectData):
        """Selecting a grid result: its words and details; Adjust only for copy-paste results."""
        if not picks or evt.index is None or evt.index >= len(picks):
            raise gr.Error("Stage the product first (Stage in every mode), then pick a result.")
        pick = picks[evt.index]
        adjust = gr.update(interactive=bool(pick["scene"]))
        return pick["label"], pick["why"], pick["details"], adjust

    def adjust_candidate(self, picks: list | None, picked: str | None):
        """Open the picked copy-paste result in the Copy-paste tab's Adjust panel."""
        pick = next((p for p in picks or [] if p["label"] == picked), None)
        if pick is None:
            raise gr.Error(PICK_FIRST)
        if not pick["scene"]:
            raise gr.Error("Only copy-paste results can be adjusted (moved, resized, re-placed).")
        adjusting = dict(pick["scene"], object_at=None, position=None)
        return adjusting, "as fitted", 1.0, gr.Tabs(selected="copy-paste")

    @readable_errors
    def animate_candidate(
        self,
        image: str | None,
        mask: str | None,
        picked: str | None,
        motion: str,
        seconds: float,
        size: str,
        results: list | None,
        steps: dict | None,
        progress=gr.Progress(),
    ):
        """A parallax clip of the picked result, with the Parallax tab's settings (its
        defaults are :meth:`render_parallax`'s)."""
        if not picked:
            raise gr.Error(PICK_FIRST)
        clip = self.render_parallax(
            image, mask, picked, motion, seconds, size, results, steps, progress
        )
        return (gr.Column(visible=True), *clip)

    def favourite_candidate(self, picked: str | None, favourites: list[str] | None):
        """Mark the picked result a favourite (the Compare tab's favourites: exported, and
        they teach the prompt bandit)."""
        if not picked:
            raise gr.Error(PICK_FIRST)
        chosen = list(dict.fromkeys([*(favourites or []), picked]))
        return gr.update(value=chosen), f"{len(chosen)} favourite(s): " + "; ".join(chosen)


def build(studio, ui) -> None:
    """The Studio tab's components (the product photo among them), added to ``ui``."""
    with gr.Tab("Studio", id="studio"):
        with gr.Row():
            with gr.Column(scale=2):
                ui.image = readable_uploads(
                    gr.Image(
                        label="Product photo",
                        type="filepath",
                        image_mode=None,
                        height=300,
                        elem_id="product-image",
                    )
                )
            with gr.Column(scale=2):
                ui.product_kind = gr.Textbox(
                    label="Product kind",
                    placeholder="blank: read from the catalog (e.g. Chair)",
                    elem_id="product-kind",
                )
                ui.product_size = gr.Textbox(
                    label="Size",
                    placeholder="blank: the kind's (e.g. 80x78 cm, width first)",
                    elem_id="product-size",
                )
                ui.studio_k = gr.Slider(
                    1, 6, value=3, step=1, label="Copy-paste candidates", elem_id="studio-k"
                )
                ui.studio_button = gr.Button(
                    "Stage in every mode", variant="primary", elem_id="studio-button"
                )
                gr.Markdown(
                    "Copy-paste uses the index chosen in the **Catalog** tab (the demo "
                    "rooms, or the rooms you upload there). The mask is made as soon "
                    "as a photo is loaded (see and correct it in the **Mask** tab)."
                )
                if EXAMPLES:
                    gr.Examples(EXAMPLES, inputs=ui.image, label="Examples (procedural renders)")
        ui.studio_grid = gr.Gallery(
            label="Every mode's candidates (pick one)",
            columns=5,
            height=300,
            object_fit="contain",
            elem_id="studio-grid",
        )
        ui.studio_why = gr.Markdown(
            "Load a product photo, then **Stage in every mode**.", elem_id="studio-why"
        )
        with gr.Row():
            ui.studio_favourite = gr.Button("★ Favourite", elem_id="studio-favourite")
            ui.studio_adjust = gr.Button(
                "Adjust (copy-paste)", interactive=False, elem_id="studio-adjust"
            )
            ui.studio_animate = gr.Button("Animate", elem_id="studio-animate")
            ui.studio_export = gr.Button("Export favourites", elem_id="studio-export")
        ui.studio_favourites = gr.Markdown(elem_id="studio-favourites")
        with gr.Row():
            with gr.Column(visible=False) as ui.studio_clip_box:
                ui.studio_video = gr.Video(
                    label="Parallax (settings: Parallax tab)", autoplay=True, loop=True,
                    height=260, elem_id="studio-video",
                )  # fmt: skip
                ui.studio_clip = gr.Markdown(elem_id="studio-clip")
                ui.studio_download = gr.DownloadButton(
                    "Download MP4", visible=False, elem_id="studio-download"
                )
            with gr.Column(visible=False) as ui.studio_files_box:
                ui.studio_files = gr.File(
                    label="Exported files", file_count="multiple", elem_id="studio-files"
                )
                ui.studio_zip = gr.File(label="All as .zip", elem_id="studio-zip")
        ui.studio_details = gr.JSON(label="Details", visible=False, elem_id="studio-details")


def wire(studio, ui) -> None:
    """Stage in every mode; pick, adjust, favourite, export, animate."""
    ui.picks = gr.State([])  # the grid's results: label, words, details, scene to adjust
    ui.picked = gr.State(None)  # the label of the picked one
    ui.studio_button.click(
        studio.stage_all,
        [
            ui.image, ui.alpha, ui.studio_k, ui.product_kind, ui.product_size, ui.index_dir,
            ui.results, ui.steps,
        ],
        [
            ui.studio_grid, ui.studio_why, ui.studio_details, ui.results, ui.steps, ui.status,
            ui.picks,
        ],
        api_name="stage_all",
        concurrency_id=HEAVY,
        concurrency_limit=HEAVY_LIMIT,
    ).success(**ui.refresh)  # fmt: skip
    ui.studio_grid.select(
        studio.pick_candidate,
        [ui.picks],
        [ui.picked, ui.studio_why, ui.studio_details, ui.studio_adjust],
        api_visibility="private",
    )
    ui.studio_adjust.click(
        studio.adjust_candidate,
        [ui.picks, ui.picked],
        [ui.adjusting, ui.old_object, ui.adjust_scale, ui.tabs],
        api_visibility="private",
    ).success(**ui.rerender)
    ui.studio_favourite.click(
        studio.favourite_candidate,
        [ui.picked, ui.favourites],
        [ui.favourites, ui.studio_favourites],
        api_visibility="private",
    )
    shown = lambda: gr.Column(visible=True)  # noqa: E731
    ui.studio_export.click(
        studio.export_results,
        [ui.favourites, ui.fmt, ui.results],
        [ui.studio_files, ui.studio_zip],
        api_visibility="private",
    ).success(shown, None, [ui.studio_files_box], api_visibility="private")
    ui.studio_animate.click(
        studio.animate_candidate,
        [ui.image, ui.alpha, ui.picked, ui.motion, ui.seconds, ui.size, ui.results, ui.steps],
        [
            ui.studio_clip_box, ui.studio_video, ui.studio_download, ui.studio_clip, ui.steps,
            ui.status,
        ],
        api_visibility="private",
        concurrency_id=HEAVY,
        concurrency_limit=HEAVY_LIMIT,
    )  # fmt: skip
