"""The Copy-paste tab: the product in its k most similar staged scenes, and adjusting one.

``engine.stage_copy_paste(image, index=..., k=..., mask=...)`` stages
(``staging stage copy-paste``);
``engine.stage_in_scene`` re-renders one result after a click, a new size or another choice
for the old object (the cut-out, the scene's analysis and its clean plate are cached, so a
re-render only pastes).
"""

from __future__ import annotations

import gradio as gr

from staging.io import load_image
from staging.ui.config import HEAVY, HEAVY_LIMIT
from staging.ui.plumbing import (
    details,
    mask_or_none,
    need_image,
    progress_callback,
    readable_errors,
    scene_info,
    tab,
    text_or_none,
    why,
)

OLD_OBJECT = {"as fitted": None, "removed": True, "kept": False}
CLICK_MOVES, CLICK_PICKS = "moves the product there", "picks the object to replace"
PICK_A_RESULT = "Pick one of the copy-paste results above first."
INTRO = (
    "Paper §5.3: the product is pasted into the most similar **staged** catalog "
    "scenes, where the old product stood (removed and inpainted). Uses the product "
    "and mask of the Studio and Mask tabs, and the index of the Catalog tab."
)


class CopyPasteHandlers:
    """The Copy-paste tab's handlers (methods of :class:`staging.ui.Studio`)."""

    def _retrieval(self, image, mask, k, index_dir, product_type, product_size, progress):
        """The keywords copy-paste and the Studio's grid share: k scenes of the chosen index
        (the demo index built first when it is that one), the mask, the product's kind and
        size (blank: read from the catalog) and the progress bar."""
        need_image(image)
        return dict(
            k=int(k),
            index=self._index_dir(index_dir, progress),
            mask=mask_or_none(mask),
            product_type=text_or_none(product_type),
            product_size=text_or_none(product_size),
            progress=progress_callback(progress),
        )

    @readable_errors
    def copy_paste(
        self,
        image: str | None,
        mask: str | None = None,
        k: int = 3,
        shadow: bool = True,
        harmonize: bool = True,
        index_dir: str = "",
        results: list | None = None,
        steps: dict | None = None,
        product_type: str = "",
        product_size: str = "",
        progress=gr.Progress(),
    ):
        """Copy-paste tab: k candidates, each with the catalog scene it came from. A blank kind
        and size are read from the catalog; the caption says what was read, to correct here."""
        staged = self.engine.stage_copy_paste(
            image,
            shadow=bool(shadow),
            harmonize=bool(harmonize),
            **self._retrieval(image, mask, k, index_dir, product_type, product_size, progress),
        )
        results, gallery = self._keep(results, staged, image)
        sources = [
            (
                self._served(load_image(s.source["path"]), "scene"),
                f"{s.source.get('id')}: {s.source.get('title') or ''}",
            )
            for s in staged
        ]
        first = staged[0].source if staged else {}
        steps, status = self._step(
            steps,
            "copy-paste",
            f"segment `{first.get('segment_backend', '?')}`, inpaint "
            f"`{first.get('inpaint_backend') or 'none (nothing removed)'}`",
        )
        scenes = [scene_info(s) for s in staged]
        return gallery, sources, details(staged), results, steps, status, scenes, why(staged)

    def pick_result(self, scenes: list | None, evt: gr.SelectData):
        """Selecting a copy-paste result opens it for adjusting, as it was fitted."""
        if not scenes or evt.index is None or evt.index >= len(scenes):
            raise gr.Error("Stage the product first, then pick one of its results.")
        return dict(scenes[evt.index], object_at=None, position=None), "as fitted", 1.0

    def click_scene(self, adjusting: dict | None, click: str, evt: gr.SelectData) -> dict:
        """A click in the adjusted image moves the product's feet there, or picks the object
        there to stand in for (the product then goes where that object stands)."""
        if not adjusting:
            raise gr.Error(PICK_A_RESULT)
        point = [float(v) for v in evt.index]
        if click == CLICK_PICKS:  # another object: the catalog's box and size were the old one's
            return dict(
                adjusting, object_at=point, position=None, box=None, object_size=None,
                object_type=None,
            )  # fmt: skip
        return dict(adjusting, position=point)

    @readable_errors
    def restage(
        self,
        image: str | None,
        mask: str | None,
        adjusting: dict | None,
        old_object: str = "as fitted",
        scale: float = 1.0,
        shadow: bool = True,
        harmonize: bool = True,
    ):
        """One re-render of the picked result (engine.stage_in_scene; the cut-out, the scene's
        analysis and its clean plate are cached, so this only pastes)."""
        need_image(image)
        if not adjusting:
            raise gr.Error(PICK_A_RESULT)
        scene_mask = adjusting.get("scene_mask")
        staged = self.engine.stage_in_scene(
            image,
            self.confined(adjusting["scene"], "scene"),
            mask=mask_or_none(mask),
            scene_mask=self.confined(scene_mask, "scene mask") if scene_mask else None,
            object_at=adjusting.get("object_at"),
            box=adjusting.get("box"),
            object_size=adjusting.get("object_size"),
            object_type=adjusting.get("object_type"),
            product_type=adjusting.get("product_type"),
            product_size=adjusting.get("product_size"),
            remove=OLD_OBJECT.get(old_object),
            position=adjusting.get("position"),
            scale=float(scale),
            shadow=bool(shadow),
            harmonize=bool(harmonize),
        )
        path = staged.save(self._result_path("adjusted", ".png"))
        return str(path), details([staged])[0], staged

    def keep_adjusted(self, staged, results: list | None, image: str | None = None):
        """Add the adjusted image to the session's results (Compare tab, exports)."""
        if staged is None:
            raise gr.Error("Adjust a result first.")
        results, _ = self._keep(results, [staged], image, "Adjusted ")
        return results


def build(studio, ui) -> None:
    """The Copy-paste tab's components, added to ``ui``."""
    with tab("Copy-paste", "copy-paste", INTRO):
        with gr.Row():
            ui.k = gr.Slider(1, 6, value=3, step=1, label="Candidates (k)", elem_id="copy-paste-k")
            ui.shadow = gr.Checkbox(value=True, label="Contact shadow")
            ui.harmonize = gr.Checkbox(value=True, label="Harmonise colours")
            ui.cp_button = gr.Button("Stage", variant="primary", elem_id="copy-paste-button")
        with gr.Row():
            ui.cp_gallery = gr.Gallery(
                label="Staged candidates",
                columns=3,
                height=230,
                object_fit="contain",  # whole, never cropped
                elem_id="copy-paste-gallery",
            )
            ui.cp_sources = gr.Gallery(
                label="Catalog scene each came from",
                columns=3,
                height=230,
                object_fit="contain",
                elem_id="copy-paste-sources",
            )
        ui.cp_why = gr.Markdown(elem_id="copy-paste-why")
        ui.cp_details = gr.JSON(
            label="Details (retrieval score, product SSIM, alignment)", visible=False
        )
        with gr.Accordion("Adjust a result (pick one above)", open=True):
            with gr.Row():
                ui.click_mode = gr.Radio(
                    [CLICK_MOVES, CLICK_PICKS],
                    value=CLICK_MOVES,
                    label="A click in the picture",
                    elem_id="adjust-click",
                )
                ui.old_object = gr.Radio(
                    list(OLD_OBJECT), value="as fitted", label="The old object",
                    elem_id="adjust-old-object",
                )  # fmt: skip
                ui.adjust_scale = gr.Slider(
                    0.3, 2.0, value=1.0, step=0.05, label="Size", elem_id="adjust-scale"
                )
                ui.adjust_shadow = gr.Checkbox(value=True, label="Shadows")
                ui.keep_button = gr.Button("Keep this version", elem_id="adjust-keep")
            with gr.Row():
                ui.adjust_view = gr.Image(
                    label="Click to move the product or to pick the object it replaces",
                    interactive=False,
                    height=420,
                    elem_id="adjust-view",
                )
                ui.adjust_details = gr.JSON(
                    label="Placement (feet, object, fit)", visible=False,
                    elem_id="adjust-details",
                )  # fmt: skip


def rerender_event(studio, ui) -> dict:
    """The re-render of the result being adjusted, as an event's keywords (the Studio tab's
    Adjust button ends with it too)."""
    return dict(
        fn=studio.restage,
        inputs=[
            ui.image, ui.alpha, ui.adjusting, ui.old_object, ui.adjust_scale, ui.adjust_shadow,
            ui.harmonize,
        ],
        outputs=[ui.adjust_view, ui.adjust_details, ui.adjusted],
        api_visibility="private",
    )  # fmt: skip


def wire(studio, ui) -> None:
    """Stage, pick a result to adjust, click, resize, keep."""
    ui.cp_button.click(
        studio.copy_paste,
        [
            ui.image, ui.alpha, ui.k, ui.shadow, ui.harmonize, ui.index_dir, ui.results,
            ui.steps, ui.product_kind, ui.product_size,
        ],
        [
            ui.cp_gallery, ui.cp_sources, ui.cp_details, ui.results, ui.steps, ui.status,
            ui.cp_scenes, ui.cp_why,
        ],
        api_name="copy_paste",
        concurrency_id=HEAVY,
        concurrency_limit=HEAVY_LIMIT,
    ).success(**ui.refresh)  # fmt: skip
    rerender = ui.rerender
    ui.cp_gallery.select(
        studio.pick_result,
        [ui.cp_scenes],
        [ui.adjusting, ui.old_object, ui.adjust_scale],
        api_visibility="private",
    ).success(**rerender)
    ui.adjust_view.select(
        studio.click_scene, [ui.adjusting, ui.click_mode], [ui.adjusting], api_visibility="private"
    ).success(**rerender)
    for control in (ui.old_object, ui.adjust_shadow):
        control.input(**rerender)
    ui.adjust_scale.release(**rerender)
    ui.keep_button.click(
        studio.keep_adjusted, [ui.adjusted, ui.results, ui.image], [ui.results],
        api_visibility="private",
    ).success(**ui.refresh)  # fmt: skip
