"""The Compare tab: every result of the session side by side, favourites, and downloads.

Exports are ``Staged.save(path)`` as PNG, JPEG or WebP (``--format`` of the CLI), each named by
product, mode, placement and seed, and a zip of them. Exported favourites of the Prompt tab
teach its theme bandit (the rule: :mod:`staging.generate.bandit.favourites`).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import gradio as gr

from staging.generate.bandit.favourites import favourite_lesson
from staging.io import load_image, save_image
from staging.ui.config import PRODUCT_PHOTO
from staging.ui.plumbing import readable_errors, tab

FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WebP": ".webp"}
INTRO = (
    "Every result of this session, side by side. Tick favourites and download "
    "them (all results when none is ticked). Downloaded favourites of the Prompt "
    "tab teach its theme bandit which themes you prefer."
)


def export_stem(item: dict) -> str:
    """An export's file name: product, mode, placement (or catalog scene) and seed, e.g.
    ``lamp-prompt-story-seed0`` or ``chair-copy-paste-R13``."""
    source = item["info"]["source"]
    placement = source.get("placement")
    where = placement.get("name") if isinstance(placement, dict) else source.get("id")
    seed = f"seed{source['seed']}" if "seed" in source else None
    parts = [item.get("product") or "product", item["info"]["mode"], where, seed]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(str(p) for p in parts if p))


class CompareHandlers:
    """The Compare tab's handlers (methods of :class:`staging.ui.Studio`)."""

    export_stem = staticmethod(export_stem)

    def compare_view(self, results: list | None, favourites: list[str] | None = None):
        """Gallery of every result so far, favourites choices (the ticked ones kept), parallax
        sources."""
        results = results or []
        labels = [r["label"] for r in results]
        gallery = [(r["image"], r["label"]) for r in results]
        kept = [label for label in favourites or [] if label in labels]
        favourites = gr.CheckboxGroup(choices=labels, value=kept)
        sources = gr.Dropdown(choices=[PRODUCT_PHOTO, *labels], value=PRODUCT_PHOTO)
        return gallery, favourites, sources

    @readable_errors
    def export_results(
        self, favourites: list[str] | None, fmt: str = "PNG", results: list | None = None
    ):
        """Compare tab: favourites (or all results) as PNG, JPEG or WebP files, and a zip."""
        results = results or []
        if not results:
            raise gr.Error("No results yet: stage the product (Copy-paste, Vanilla or Prompt tab).")
        if fmt not in FORMATS:
            raise gr.Error(f"Unknown format {fmt!r}: choose {', '.join(FORMATS)}.")
        chosen = [r for r in results if r["label"] in (favourites or [])] or results
        if favourites:
            self._learn_from_favourites(results, set(favourites))
        folder = self._result_path("export", "")
        files, used = [], set()
        for item in chosen:
            stem = export_stem(item)
            name, number = stem, 1
            while name in used:  # the same product, mode and placement kept twice
                number += 1
                name = f"{stem}-{number}"
            used.add(name)
            target = folder / f"{name}{FORMATS[fmt]}"
            files.append(str(save_image(target, load_image(item["image"]), quality=92)))
        archive = folder / "staged-images.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for file in files:
                zf.write(file, Path(file).name)
        return files, str(archive)

    def _learn_from_favourites(self, results: list, favourites: set[str]) -> None:
        """Each result shown teaches its category's bandit once (the session remembers which
        did); what it teaches is :func:`staging.generate.bandit.favourites.favourite_lesson`."""
        for item in results:
            if item.get("rewarded"):
                continue
            lesson = favourite_lesson(item["info"], item["label"] in favourites)
            if lesson is None:
                continue
            self.engine.record_feedback(*lesson)
            item["rewarded"] = True

    @staticmethod
    def clear_results():
        return [], None, None


def build(studio, ui) -> None:
    """The Compare tab's components, added to ``ui``."""
    with tab("Compare", "compare", INTRO):
        ui.compare_gallery = gr.Gallery(
            label="Results", columns=4, height=360, object_fit="contain"
        )
        ui.favourites = gr.CheckboxGroup(label="Favourites", choices=[], elem_id="favourites")
        with gr.Row():
            ui.fmt = gr.Radio(list(FORMATS), value="PNG", label="Format")
            ui.export_button = gr.Button(
                "Prepare downloads", variant="primary", elem_id="export-button"
            )
            ui.clear_button = gr.Button("Clear results")
        with gr.Row():
            ui.export_files = gr.File(label="Files", file_count="multiple", elem_id="export-files")
            ui.export_zip = gr.File(label="All as .zip")


def refresh_event(studio, ui) -> dict:
    """Refreshing the Compare tab and the Parallax sources, as an event's keywords: every
    step that adds results ends with it."""
    return dict(
        fn=studio.compare_view,
        inputs=[ui.results, ui.favourites],
        outputs=[ui.compare_gallery, ui.favourites, ui.source],
        api_visibility="private",
    )


def wire(studio, ui) -> None:
    """Export, clear."""
    ui.export_button.click(
        studio.export_results,
        [ui.favourites, ui.fmt, ui.results],
        [ui.export_files, ui.export_zip],
        api_name="export",
    )
    ui.clear_button.click(
        studio.clear_results,
        None,
        [ui.results, ui.export_files, ui.export_zip],
        api_visibility="private",
    ).then(**ui.refresh)
