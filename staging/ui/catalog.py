"""The Catalog tab: index a folder or uploaded rooms, show an index, delete one's own.

``engine.update_index(out, folder, csv=...)`` builds or updates an index (``staging index``);
``engine.index_uploads`` and ``engine.delete_index`` do the same for rooms uploaded from the
browser. Which folders and index names a browser may use is :mod:`staging.access`'s rule.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import gradio as gr

from staging.access import DEMO
from staging.io import load_image
from staging.ui.config import DEMO_CATALOG, DEMO_CSV, EXAMPLES, HEAVY, HEAVY_LIMIT
from staging.ui.plumbing import readable_errors, tab

INTRO = (
    "Copy-paste staging reuses the backgrounds of **staged** catalog photos "
    "(products in rooms). Upload your own rooms below, or (operators) index a "
    "folder shared on the server into a named index kept in the app's cache "
    "(incremental: re-running only processes new or changed images). Without "
    "either, the demo catalog is used."
)


class CatalogHandlers:
    """The Catalog tab's handlers (methods of :class:`staging.ui.Studio`)."""

    def _catalog_entries(self, index: Path, image: str | None) -> list[tuple[Any, str]]:
        """A few catalog entries: the items nearest to the product (engine.search)."""
        query = image or (EXAMPLES[0] if EXAMPLES else None)
        if query is None:
            return []
        hits = self.engine.search(query, k=8, index=index, staged_only=False)
        return [
            (
                self._served(load_image(hit.path), "catalog"),
                f"{hit.id} · {hit.category or 'no category'} · "
                f"{'staged' if hit.staged else 'studio'} · {hit.score:.2f}",
            )
            for hit in hits
        ]

    def _scene_thumbnails(self, index: Path, count: int = 12) -> list[tuple[Any, str]]:
        """The index's staged scenes (what copy-paste stages into), a few, by their names."""
        hits = self.engine.index(index).staged_items()[:count]
        return [(self._served(load_image(hit.path), "scene"), hit.id) for hit in hits]

    @readable_errors
    def index_catalog(
        self,
        folder: str,
        csv: str = "",
        index_dir: str = "",
        image: str | None = None,
        steps: dict | None = None,
        progress=gr.Progress(track_tqdm=True),
    ):
        """Catalog tab: index a folder (incremental), show counts and a few entries."""
        if not folder or not folder.strip():
            raise gr.Error(
                "Enter the folder of your catalog images (on the server running the app)."
            )
        name = folder.strip()
        folder = self.confined(name, "catalog folder")
        if not folder.is_dir():
            raise gr.Error(f"No such folder on the server: '{name}'.")
        csv = str(self.confined(csv, "CSV file")) if csv and csv.strip() else ""
        demo_folder = folder == DEMO_CATALOG.resolve()
        if not csv and demo_folder:
            csv = str(DEMO_CSV)
        chosen = (index_dir or "").strip()
        if not chosen:  # a name of its own for this folder's index
            chosen = DEMO if demo_folder else self.default_index_dir(folder).name
        out = self.index_path(chosen)
        if out == self.demo_index_dir and not demo_folder:
            raise gr.Error(
                "The demo index is read-only: it holds the demo catalog only. Type a name for "
                "your own index in the Index field (for example 'my-catalog') and index again."
            )
        progress(0.0, desc="indexing")
        index, report = self.build_index(folder, csv or None, out, progress=progress)
        stats = index.stats()
        entries = self._catalog_entries(index.path, image)
        steps, status = self._step(steps, "index", f"embedder `{stats['embedder']}`")
        listed = gr.update(value=chosen, choices=self.index_choices())
        return stats_markdown(stats, report), entries, listed, steps, status

    @readable_errors
    def upload_catalog(
        self,
        files: list | None,
        name: str = "",
        steps: dict | None = None,
        request: gr.Request | None = None,
        progress=gr.Progress(track_tqdm=True),
    ):
        """Catalog tab: index uploaded room photos (files or a zip, and an optional CSV) into
        an index of this browser session, or the name given; Copy-paste uses it at once."""
        if not files:
            raise gr.Error("Choose room photos (or a zip of them, and optionally a CSV) first.")
        session = getattr(request, "session_hash", None) or uuid.uuid4().hex
        chosen = (name or "").strip() or f"uploads-{session[:8]}"
        out = self._own_index(chosen)
        progress(0.0, desc="indexing the uploaded rooms")
        paths = [getattr(f, "name", f) for f in files]  # file paths (gr.File type="filepath")
        report = self.engine.index_uploads(out, paths, progress=True)
        stats = self.engine.index(out).stats()
        steps, status = self._step(
            steps, "index", f"{stats['staged']} uploaded scenes in `{chosen}`"
        )
        listed = gr.update(value=chosen, choices=self.index_choices())
        return stats_markdown(stats, report), self._scene_thumbnails(out), listed, steps, status

    @readable_errors
    def delete_catalog(self, index_dir: str = ""):
        """Catalog tab: delete one of the user's indexes (and the rooms uploaded into it)."""
        out = self._own_index(index_dir)
        self.engine.delete_index(out)
        text = f"Deleted the index `{out.name}`; Copy-paste uses the demo catalog again."
        return text, [], gr.update(value=DEMO, choices=self.index_choices())

    @readable_errors
    def show_catalog(self, index_dir: str = "", image: str | None = None):
        """Counts and a few entries of an existing index (the demo index when none is given);
        the Index field keeps its name (it never turns into a folder path)."""
        index = self.engine.index(self._index_dir(index_dir))
        listed = gr.update(value=(index_dir or "").strip() or DEMO, choices=self.index_choices())
        return stats_markdown(index.stats()), self._catalog_entries(index.path, image), listed


def stats_markdown(stats: dict, report=None) -> str:
    """An index's counts in words, and what this run of the indexer did."""
    lines = [
        f"**{stats['items']} images** in `{Path(stats['path']).name}`: {stats['staged']} staged "
        f"(scenes copy-paste can use), {stats['unstaged']} studio shots, "
        f"{stats['categories']} categories; embedder `{stats['embedder']}` "
        f"({stats['dim']}-d), {stats['index_type']} search.",
    ]
    if report is not None:
        lines.append(
            f"This run: {report.added} added, {report.changed} changed, {report.removed} "
            f"removed, {report.unchanged} unchanged, {len(report.failed)} failed "
            f"({report.seconds:.1f} s)."
        )
        lines += [f"- skipped `{Path(path).name}`: {why}" for path, why in report.failed[:8]]
    return "\n\n".join(lines)


def build(studio, ui) -> None:
    """The Catalog tab's components, added to ``ui``."""
    with tab("Catalog", "catalog", INTRO):
        gr.Markdown(
            "**Bring your own rooms.** Upload room photos — many files or a zip, and "
            "optionally a CSV (`image,mask,type,size,...`) — to index them into an index of "
            "this session (or the name you type). Copy-paste and the Studio use it at once. Up "
            "to 500 images of 25 MB each; files that cannot be used are listed."
        )
        with gr.Row():
            ui.uploads = gr.File(
                file_count="multiple", file_types=["image", ".zip", ".csv"],
                type="filepath", label="Room photos, a zip, a CSV", scale=3, height=170,
                elem_id="catalog-upload",
            )  # fmt: skip
            ui.upload_name = gr.Textbox(
                label="Index name (blank: this session's)", scale=1, elem_id="upload-name"
            )
        ui.upload_button = gr.Button("Upload and index", variant="primary", elem_id="upload-button")
        ui.index_dir = gr.Dropdown(
            studio.index_choices(),
            value=DEMO,
            allow_custom_value=True,
            label="Index (used by Copy-paste): 'demo' is the read-only demo catalog; type "
            "a new name to index your own folder into it",
            elem_id="index-dir",
        )
        with gr.Row():
            ui.show_button = gr.Button("Show index", elem_id="show-index-button")
            ui.delete_button = gr.Button("Delete this index", elem_id="delete-index-button")
        ui.catalog_stats = gr.Markdown(label="Index", elem_id="catalog-stats")
        ui.catalog_gallery = gr.Gallery(
            label="Catalog items nearest to the product", columns=4, height=300
        )
        with gr.Accordion("Index a folder on the server (operators)", open=False):
            gr.Markdown(studio.engine.scene_parser_status(), elem_id="scene-parser-status")
            with gr.Row():
                ui.folder = gr.Textbox(
                    label="Catalog folder on the server",
                    placeholder="a folder inside STAGING_CATALOG_ROOTS",
                    scale=3,
                )
                ui.csv = gr.Textbox(
                    label="CSV (optional: id,image,category,title,...)", value="", scale=2
                )
            ui.index_button = gr.Button("Index folder", elem_id="index-button")


def wire(studio, ui) -> None:
    """Index a folder, upload rooms, delete an index, show one."""
    shown = [ui.catalog_stats, ui.catalog_gallery, ui.index_dir]
    ui.index_button.click(
        studio.index_catalog,
        [ui.folder, ui.csv, ui.index_dir, ui.image, ui.steps],
        [*shown, ui.steps, ui.status],
        api_name="index_catalog",
        concurrency_id=HEAVY,
        concurrency_limit=HEAVY_LIMIT,
    )
    ui.upload_button.click(
        studio.upload_catalog,
        [ui.uploads, ui.upload_name, ui.steps],
        [*shown, ui.steps, ui.status],
        api_name="upload_catalog",
        concurrency_id=HEAVY,
        concurrency_limit=HEAVY_LIMIT,
    )
    ui.delete_button.click(studio.delete_catalog, [ui.index_dir], shown, api_name="delete_catalog")
    ui.show_button.click(
        studio.show_catalog, [ui.index_dir, ui.image], shown, api_name="show_catalog"
    )
