"""Product Staging Studio — the web app (a thin skin over :class:`staging.StagingEngine`).

Run ``python app.py`` and open http://127.0.0.1:7860. One engine is created at start-up and
shared by every tab and request. Each UI action is one engine (or library) call that also
works from Python and the CLI:

* Product — ``engine.segment(image, backend)``, brush corrections with
  :mod:`staging.segment.edit` (``staging segment``);
* Catalog — ``engine.update_index(out, folder, csv=...)``
  (``staging index FOLDER --out DIR``);
* Copy-paste — ``engine.stage_copy_paste(image, k, index, mask=...)``
  (``staging stage copy-paste``);
* Vanilla and Prompt — ``engine.stage_vanilla(...)``, ``engine.stage_prompt(...)`` and the
  bandit's ``engine.suggest_prompt(category, context, interests)``
  (``staging stage vanilla|prompt``);
* Compare — ``Staged.save(path)`` as PNG, JPEG or WebP (``--format``);
* Parallax — ``engine.parallax(image, out, mask, seconds, motion, size)``
  (``staging parallax``).

No image logic lives here. User errors become readable messages (``gr.Error``), never
tracebacks. Settings come from ``STAGING_*`` variables (see the README); the app adds
``STAGING_MAX_UPLOAD`` (upload size limit, default 25 MB), ``STAGING_APP_CACHE`` (where the
demo index and the named indexes go; default the per-user cache folder)
and ``STAGING_APP_CONCURRENCY`` (heavy steps run at once, default 1).
"""

from __future__ import annotations

import argparse
import atexit
import functools
import inspect
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import gradio as gr
import platformdirs

from staging import StagingEngine, StagingError, captions
from staging.animate import MOTIONS
from staging.errors import without_paths
from staging.io import load_image, save_image, save_mask
from staging.models import get_spec
from staging.segment import BACKENDS, RECOMMENDED
from staging.segment import edit as mask_edit
from staging.segment.base import WORKING_SIDE, prepare_matting

log = logging.getLogger("staging.app")

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p) for p in (ROOT / "examples" / "products").glob("*.*"))
DEMO_CATALOG = ROOT / "examples" / "catalog"
DEMO_CSV = DEMO_CATALOG / "catalog.csv"
MAX_UPLOAD = os.environ.get("STAGING_MAX_UPLOAD", "25mb")
CACHE = Path(
    os.environ.get("STAGING_APP_CACHE") or platformdirs.user_cache_dir("product-staging-studio")
)
DEMO_INDEX = CACHE / "demo-index"
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WebP": ".webp"}
PARALLAX_SIZES = ["photo", "1:1", "4:5", "9:16", "16:9"]
PRODUCT_PHOTO = "Product photo (with its mask)"
HEAVY = "heavy"  # concurrency group of the CPU-bound staging/rendering steps
HEAVY_LIMIT = int(os.environ.get("STAGING_APP_CONCURRENCY", "1"))

engine = StagingEngine()

# Results (staged images, videos, exports) go to one folder per process, removed at exit;
# Gradio copies what it serves into its own cache.
RESULTS = Path(tempfile.mkdtemp(prefix="staging-app-"))
atexit.register(shutil.rmtree, RESULTS, ignore_errors=True)
_demo_lock = threading.Lock()
_demo_checked = False


# --------------------------------------------------------------------------------------------
# Plumbing: readable errors, the status line, result files
# --------------------------------------------------------------------------------------------


def readable_errors(fn):
    """Run a handler; turn every failure into a ``gr.Error`` with a sentence, never a traceback.

    Library errors (:class:`StagingError`, which includes unreadable images and missing
    models) are already written for people. Anything else is a bug: its message is shown
    and the traceback goes to the server log. Paths in a message are cut to their file names
    (:func:`staging.errors.without_paths`): a browser never learns the server's folders.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except StagingError as exc:
            raise gr.Error(without_paths(str(exc)), print_exception=False) from None
        except (ValueError, OSError) as exc:
            message = without_paths(f"That did not work: {exc}")
            raise gr.Error(message, print_exception=False) from None
        except Exception as exc:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                without_paths(
                    f"Unexpected error ({type(exc).__name__}: {exc}). The details are in the "
                    "server log."
                ),
                print_exception=False,
            ) from None

    wrapper.__signature__ = inspect.signature(fn)  # gr.Progress defaults must stay visible
    return wrapper


def readable_uploads(component: gr.Image) -> gr.Image:
    """Make ``component``'s own decoding of an upload fail with our readable message.

    Gradio opens every uploaded image with PIL *before* a handler runs, so a corrupt or
    non-image file (sent through the API, or renamed to .jpg) used to reach the user as
    Gradio's bare decoding error and left a traceback in the server log. Here such a
    failure is explained by the same loader every other entry point uses. (The instance's
    method is wrapped: subclassing a Gradio component makes Gradio write a ``.pyi`` stub
    next to this file at import time.)
    """
    decode = component.preprocess

    @functools.wraps(decode)
    def preprocess(payload):
        try:
            return decode(payload)
        except gr.Error:
            raise
        except Exception as exc:
            path = getattr(payload, "path", None)
            message = f"That file could not be read as an image ({type(exc).__name__})."
            if path:
                try:
                    load_image(path)
                except StagingError as why:  # named as the user knows it, not our temp path
                    name = getattr(payload, "orig_name", None) or Path(path).name
                    message = str(why).replace(str(path), name)
                except Exception:  # the loader's own surprise: keep the message above
                    log.exception("loading the upload %s", path)
            raise gr.Error(message, print_exception=False) from None

    component.preprocess = preprocess
    return component


def _need_image(image: Any) -> None:
    if image is None:
        raise gr.Error("Upload a product photo first (or pick an example in the Product tab).")


def status_line(steps: dict[str, str]) -> str:
    """The status line: which backend each step used, and on which device."""
    parts = [f"**{step}**: {text}" for step, text in steps.items()]
    body = " · ".join(parts) if parts else "nothing run yet"
    return f"Device **{engine.device}** · {body}"


def _step(steps: dict | None, step: str, text: str) -> tuple[dict, str]:
    steps = dict(steps or {})
    steps[step] = text
    return steps, status_line(steps)


def _result_path(stem: str, suffix: str) -> Path:
    return RESULTS / f"{stem}-{uuid.uuid4().hex[:8]}{suffix}"


def _served(image: Any, stem: str) -> str:
    """``image`` (array or PIL) written to a new file, atomically, for an output to show.

    Handing Gradio pixels makes it write them to a file named by their content, rewriting
    that file in place whenever the same picture is shown again — while a browser may be
    reading it (h11 "Too much data for declared Content-Length", a broken preview). A new
    file per result, which Gradio copies into its cache atomically, is never rewritten.
    """
    return str(save_image(_result_path(stem, ".png"), image))


def _progress(progress: gr.Progress):
    """Adapt a gr.Progress to the library's ``progress(fraction, message)`` callbacks."""

    def report(fraction: float, message: str = "") -> None:
        progress(float(fraction), desc=message or None)

    return report


def _mask_or_none(mask: str | None) -> str | None:
    return mask if mask else None


# --------------------------------------------------------------------------------------------
# Product: segmentation and brush corrections
# --------------------------------------------------------------------------------------------


def segmentation_banner():
    """What ``auto`` segments with, and the one-click fetch when no pretrained model is on
    disk (engine.segmentation_status)."""
    missing = engine.pretrained_segmenter_name() is None
    return gr.update(value=engine.segmentation_status()), gr.update(visible=missing)


@readable_errors
def pull_segmenter(progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio's idiom
    """Fetch the recommended segmentation model with progress (engine.pull_model)."""
    engine.pull_model()
    return segmentation_banner()


@readable_errors
def segment_product(
    image: str | None,
    backend: str = "auto",
    steps: dict | None = None,
    progress=gr.Progress(track_tqdm=True),  # noqa: B008 - the first run's model fetch
):
    """Probability map, binary mask, cutout and the product's alpha (engine.segment)."""
    _need_image(image)
    progress(0.1, desc=f"Segmenting (big photos at a {WORKING_SIDE} px working size)")
    seg = engine.segment(image, backend=backend)
    steps, status = _step(steps, "segment", f"`{seg.backend}`")
    progress(0.5, desc="Cutting out at the photo's own size")
    cutout = _served(seg.cutout, "cutout")
    return (
        _served(seg.prob_image, "probability"),
        _served(seg.mask_image, "mask"),
        cutout,
        _served(seg.prob_image, "alpha"),
        steps,
        status,
    )


@readable_errors
def correct_mask(
    image: str | None, backend: str = "auto", editor: dict | None = None, steps: dict | None = None
):
    """Apply the brush strokes to the segmentation (staging.segment.edit)."""
    _need_image(image)
    seg = engine.segment(image, backend=backend)
    layers = (editor or {}).get("layers") or []
    add, remove = mask_edit.strokes_to_edits(layers, size=(seg.image.shape[1], seg.image.shape[0]))
    if not add.any() and not remove.any():
        raise gr.Error(
            f"No strokes yet: paint with green ({mask_edit.ADD_COLOUR}) to add to the product "
            f"and red ({mask_edit.REMOVE_COLOUR}) to remove from it, then apply."
        )
    fixed = mask_edit.edit_segmentation(seg, add=add, remove=remove)
    steps, status = _step(steps, "segment", f"`{fixed.backend}`")
    return (
        _served(fixed.mask_image, "mask"),
        _served(fixed.cutout, "cutout"),
        _served(fixed.prob_image, "alpha"),
        steps,
        status,
    )


def brush_canvas(image: str | None, mask: str | None):
    """The photo with the background tinted, as the brush editor's background."""
    if image is None or mask is None:
        return None
    try:
        rgb = engine.load_image(image)
        alpha = load_image(mask)[..., 0]
        return {
            "background": mask_edit.mask_overlay(rgb, alpha),
            "layers": [],
            "composite": None,
        }
    except (StagingError, ValueError):
        return None


def _no_alpha():
    return None


def product_failed(steps: dict | None = None):
    """After a photo could not be read: clear the previous product's views."""
    line = status_line(steps or {}) + " · **product**: the last photo could not be read"
    return None, None, None, None, None, line


def product_changed(image: str | None, backend: str = "auto", steps: dict | None = None):
    """A new photo (upload, example, clear): segment it at once, or clear the old results."""
    if image is None:
        return None, None, None, None, steps or {}, status_line(steps or {})
    return segment_product(image, backend, steps)


# --------------------------------------------------------------------------------------------
# Catalog: build or update an index, the demo index
# --------------------------------------------------------------------------------------------


def catalog_roots() -> list[Path]:
    """The server folders a browser or API client may name (catalog, CSV, index folder):
    ``STAGING_CATALOG_ROOTS`` (separated by ``os.pathsep``), by default the demo catalog and the
    app's cache folder (where the indexes it builds live)."""
    configured = os.environ.get("STAGING_CATALOG_ROOTS", "")
    roots = [Path(p) for p in configured.split(os.pathsep) if p.strip()] or [DEMO_CATALOG, CACHE]
    return [root.expanduser().resolve() for root in roots]


def confined(path: str, what: str) -> Path:
    """``path`` resolved (``~``, ``..`` and symlinks) and checked to lie inside
    :func:`catalog_roots`: a client must not read or write other server folders."""
    resolved = Path(path.strip()).expanduser().resolve()
    if not any(resolved.is_relative_to(root) for root in catalog_roots()):
        raise gr.Error(
            f"The {what} '{path.strip()}' is outside the folders this server shares with the "
            "browser. Ask its administrator to add it to STAGING_CATALOG_ROOTS, or use the "
            "demo catalog."
        )
    return resolved


def default_index_dir(folder: str | os.PathLike) -> Path:
    """Where the app keeps the index of ``folder`` when no index folder is given."""
    path = Path(folder).expanduser().resolve()
    if path == DEMO_CATALOG.resolve():
        return DEMO_INDEX
    digest = uuid.uuid5(uuid.NAMESPACE_URL, str(path)).hex[:8]
    return CACHE / "indexes" / f"{path.name or 'catalog'}-{digest}"


def build_index(folder, csv=None, out=None, progress=None):
    """``staging index FOLDER --out OUT [--csv CSV]``: build or update, then the open index."""
    out = Path(out) if out else default_index_dir(folder)
    report = engine.update_index(out, folder, csv=csv or None, progress=progress is not None)
    index = engine.index(out)  # the engine's shared, cached handle
    return index, report


def demo_index(progress=None) -> Path:
    """The demo catalog's index, built in the cache folder on first use (a few seconds)."""
    global _demo_checked
    with _demo_lock:
        if not _demo_checked:
            if progress is not None:
                progress(0.0, desc="indexing the demo catalog (first use)")
            build_index(DEMO_CATALOG, DEMO_CSV, DEMO_INDEX, progress=progress)
            _demo_checked = True
    return DEMO_INDEX


DEMO = "demo"
INDEX_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def index_path(index: str | None) -> Path:
    """Where the index called ``index`` lives: ``demo`` (or nothing) is the demo index, a plain
    name one of the user's indexes in the app's cache folder (``<cache>/indexes/<name>``), and
    anything else a server folder, confined to the shared roots."""
    name = (index or "").strip()
    if name in ("", DEMO):
        return DEMO_INDEX
    if INDEX_NAME.match(name):
        return CACHE / "indexes" / name
    return confined(name, "index folder")


def index_choices() -> list[str]:
    """``demo`` and the user's named indexes, for the Index dropdown."""
    folder = CACHE / "indexes"
    names = sorted(p.name for p in folder.iterdir() if (p / "catalog.sqlite").is_file()) if (
        folder.is_dir()
    ) else []  # fmt: skip
    return [DEMO, *names]


def _index_dir(index_dir: str | None, progress=None) -> Path:
    path = index_path(index_dir)
    return demo_index(progress) if path == DEMO_INDEX else path


def _catalog_entries(index: Path, image: str | None) -> list[tuple[Any, str]]:
    """A few catalog entries: the items nearest to the product (engine.search)."""
    query = image or (EXAMPLES[0] if EXAMPLES else None)
    if query is None:
        return []
    hits = engine.search(query, k=8, index=index, staged_only=False)
    return [
        (
            _served(load_image(hit.path), "catalog"),
            f"{hit.id} · {hit.category or 'no category'} · "
            f"{'staged' if hit.staged else 'studio'} · {hit.score:.2f}",
        )
        for hit in hits
    ]


def _stats_markdown(stats: dict, report=None) -> str:
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


@readable_errors
def index_catalog(
    folder: str,
    csv: str = "",
    index_dir: str = "",
    image: str | None = None,
    steps: dict | None = None,
    progress=gr.Progress(track_tqdm=True),
):
    """Catalog tab: index a folder (incremental), show counts and a few entries."""
    if not folder or not folder.strip():
        raise gr.Error("Enter the folder of your catalog images (on the server running the app).")
    name = folder.strip()
    folder = confined(name, "catalog folder")
    if not folder.is_dir():
        raise gr.Error(f"No such folder on the server: '{name}'.")
    csv = str(confined(csv, "CSV file")) if csv and csv.strip() else ""
    demo_folder = folder == DEMO_CATALOG.resolve()
    if not csv and demo_folder:
        csv = str(DEMO_CSV)
    chosen = (index_dir or "").strip()
    if not chosen:  # a name of its own for this folder's index
        chosen = DEMO if demo_folder else default_index_dir(folder).name
    out = index_path(chosen)
    if out == DEMO_INDEX and not demo_folder:
        raise gr.Error(
            "The demo index is read-only: it holds the demo catalog only. Type a name for "
            "your own index in the Index field (for example 'my-catalog') and index again."
        )
    progress(0.0, desc="indexing")
    index, report = build_index(folder, csv or None, out, progress=progress)
    stats = index.stats()
    entries = _catalog_entries(index.path, image)
    steps, status = _step(steps, "index", f"embedder `{stats['embedder']}`")
    listed = gr.update(value=chosen, choices=index_choices())
    return _stats_markdown(stats, report), entries, listed, steps, status


def _own_index(name: str) -> Path:
    """The app-cache index a browser may write to or delete: a plain name, never the demo's
    or a server folder."""
    name = (name or "").strip()
    if name == DEMO or not INDEX_NAME.match(name):
        raise gr.Error(
            f"'{name}' cannot be written by the browser: use a plain name of your own (letters, "
            "digits, '.', '_' or '-'), not 'demo' or a folder."
        )
    return CACHE / "indexes" / name


def _scene_thumbnails(index: Path, count: int = 12) -> list[tuple[Any, str]]:
    """The index's staged scenes (what copy-paste stages into), a few, by their names."""
    hits = engine.index(index).staged_items()[:count]
    return [(_served(load_image(hit.path), "scene"), hit.id) for hit in hits]


@readable_errors
def upload_catalog(
    files: list | None,
    name: str = "",
    steps: dict | None = None,
    request: gr.Request | None = None,
    progress=gr.Progress(track_tqdm=True),
):
    """Catalog tab: index uploaded room photos (files or a zip, and an optional CSV) into an
    index of this browser session, or the name given; Copy-paste uses it at once."""
    if not files:
        raise gr.Error("Choose room photos (or a zip of them, and optionally a CSV) first.")
    session = getattr(request, "session_hash", None) or uuid.uuid4().hex
    chosen = (name or "").strip() or f"uploads-{session[:8]}"
    out = _own_index(chosen)
    progress(0.0, desc="indexing the uploaded rooms")
    paths = [getattr(f, "name", f) for f in files]  # file paths (gr.File type="filepath")
    report = engine.index_uploads(out, paths, progress=True)
    stats = engine.index(out).stats()
    steps, status = _step(steps, "index", f"{stats['staged']} uploaded scenes in `{chosen}`")
    listed = gr.update(value=chosen, choices=index_choices())
    return _stats_markdown(stats, report), _scene_thumbnails(out), listed, steps, status


@readable_errors
def delete_catalog(index_dir: str = ""):
    """Catalog tab: delete one of the user's indexes (and the rooms uploaded into it)."""
    out = _own_index(index_dir)
    engine.delete_index(out)
    text = f"Deleted the index `{out.name}`; Copy-paste uses the demo catalog again."
    return text, [], gr.update(value=DEMO, choices=index_choices())


@readable_errors
def show_catalog(index_dir: str = "", image: str | None = None):
    """Counts and a few entries of an existing index (the demo index when none is given);
    the Index field keeps its name (it never turns into a folder path)."""
    index = engine.index(_index_dir(index_dir))
    listed = gr.update(value=(index_dir or "").strip() or DEMO, choices=index_choices())
    return _stats_markdown(index.stats()), _catalog_entries(index.path, image), listed


# --------------------------------------------------------------------------------------------
# Staging modes and results
# --------------------------------------------------------------------------------------------


def _keep(
    results: list | None, staged: list, product: str | None = None, label: str = ""
) -> tuple[list, list]:
    """Save staged results as files; add them to the session's results (the Compare tab),
    each named by its number and :func:`staging.captions.label` (``label`` goes before it,
    e.g. "Adjusted "). ``product``: the photo's file name, to name exports by."""
    results = list(results or [])
    gallery = []
    for number, item in enumerate(staged, start=1):
        stem = f"{item.mode}-{number}"
        image = item.save(_result_path(stem, ".png"))
        alpha = save_mask(_result_path(f"{stem}-alpha", ".png"), item.alpha)
        caption = f"#{len(results) + 1} {label}{captions.label(item)}"
        results.append(
            {
                "label": caption,
                "image": str(image),
                "alpha": str(alpha),
                "info": item.describe(),
                "product": Path(product).stem if product else None,
            }
        )
        gallery.append((str(image), caption))
    return results, gallery


def _details(staged: list) -> list[dict]:
    """The JSON panel's details: files named, never located (:func:`captions.public_details`)."""
    return [captions.public_details(item) for item in staged]


def _why(staged: list, skipped: dict | None = None) -> str:
    """Each result in a designer's words (:func:`captions.explain`), and what did not run."""
    lines = [f"**{captions.label(item)}.** {captions.explain(item)}" for item in staged]
    lines += [
        f"**{mode.capitalize()}** made nothing: {why}" for mode, why in (skipped or {}).items()
    ]
    return "\n\n".join(lines)


def _scene_info(item) -> dict[str, Any]:
    """What re-rendering a copy-paste result needs (kept server-side, in a gr.State)."""
    source, product = item.source, item.source.get("product") or {}
    return {
        "scene": source["path"], "scene_mask": source.get("mask"), "box": source.get("box"),
        "object_size": source.get("object_size"), "object_type": source.get("object_type"),
        "product_type": product.get("product_type"), "product_size": product.get("product_size"),
    }  # fmt: skip


@readable_errors
def copy_paste(
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
    _need_image(image)
    index = _index_dir(index_dir, progress)
    staged = engine.stage_copy_paste(
        image,
        k=int(k),
        index=index,
        mask=_mask_or_none(mask),
        shadow=bool(shadow),
        harmonize=bool(harmonize),
        product_type=(product_type or "").strip() or None,
        product_size=(product_size or "").strip() or None,
        progress=_progress(progress),
    )
    results, gallery = _keep(results, staged, image)
    sources = [
        (
            _served(load_image(s.source["path"]), "scene"),
            f"{s.source.get('id')}: {s.source.get('title') or ''}",
        )
        for s in staged
    ]
    details = _details(staged)
    first = staged[0].source if staged else {}
    steps, status = _step(
        steps,
        "copy-paste",
        f"segment `{first.get('segment_backend', '?')}`, inpaint "
        f"`{first.get('inpaint_backend') or 'none (nothing removed)'}`",
    )
    scenes = [_scene_info(s) for s in staged]
    return gallery, sources, details, results, steps, status, scenes, _why(staged)


# --------------------------------------------------------------------------------------------
# Studio: every mode at once, one grid
# --------------------------------------------------------------------------------------------

PICK_FIRST = "Pick a result in the grid first."


@readable_errors
def stage_all(
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
    _need_image(image)
    index = _index_dir(index_dir, progress)
    found = engine.stage_candidates(
        image,
        k=int(k),
        index=index,
        mask=_mask_or_none(mask),
        product_type=(product_type or "").strip() or None,
        product_size=(product_size or "").strip() or None,
        progress=_progress(progress),
    )
    results, gallery = _keep(results, found.results, image)
    new = results[len(results) - len(found.results) :]
    picks = [
        {
            "label": kept["label"],
            "why": f"**{kept['label']}.** {captions.explain(item)}",
            "details": captions.public_details(item),
            "scene": _scene_info(item) if item.mode == "copy-paste" else None,
        }
        for kept, item in zip(new, found.results, strict=True)
    ]
    made = ", ".join(
        f"{mode} ×{sum(r.mode == mode for r in found.results)}" for mode in found.modes
    )
    steps, status = _step(steps, "studio", made)
    notes = _why([], found.skipped) or "Pick a result to see where it came from and why."
    details = [dict(p["details"], label=p["label"], why=captions.explain(item))
               for p, item in zip(picks, found.results, strict=True)]  # fmt: skip
    return gallery, notes, details, results, steps, status, picks


def pick_candidate(picks: list | None, evt: gr.SelectData):
    """Selecting a grid result: its words and details; Adjust only for copy-paste results."""
    if not picks or evt.index is None or evt.index >= len(picks):
        raise gr.Error("Stage the product first (Stage in every mode), then pick a result.")
    pick = picks[evt.index]
    return pick["label"], pick["why"], pick["details"], gr.update(interactive=bool(pick["scene"]))


def adjust_candidate(picks: list | None, picked: str | None):
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
    image: str | None,
    mask: str | None,
    picked: str | None,
    motion: str = "pan",
    seconds: float = 3.0,
    size: str = "photo",
    results: list | None = None,
    steps: dict | None = None,
    progress=gr.Progress(),
):
    """A parallax clip of the picked result, with the Parallax tab's settings."""
    if not picked:
        raise gr.Error(PICK_FIRST)
    clip = render_parallax(image, mask, picked, motion, seconds, size, results, steps, progress)
    return (gr.Column(visible=True), *clip)


def favourite_candidate(picked: str | None, favourites: list[str] | None):
    """Mark the picked result a favourite (the Compare tab's favourites: exported, and they
    teach the prompt bandit)."""
    if not picked:
        raise gr.Error(PICK_FIRST)
    chosen = list(dict.fromkeys([*(favourites or []), picked]))
    return gr.update(value=chosen), f"{len(chosen)} favourite(s): " + "; ".join(chosen)


OLD_OBJECT = {"as fitted": None, "removed": True, "kept": False}
CLICK_MOVES, CLICK_PICKS = "moves the product there", "picks the object to replace"


def pick_result(scenes: list | None, evt: gr.SelectData):
    """Selecting a copy-paste result opens it for adjusting, as it was fitted."""
    if not scenes or evt.index is None or evt.index >= len(scenes):
        raise gr.Error("Stage the product first, then pick one of its results.")
    return dict(scenes[evt.index], object_at=None, position=None), "as fitted", 1.0


def click_scene(adjusting: dict | None, click: str, evt: gr.SelectData) -> dict:
    """A click in the adjusted image moves the product's feet there, or picks the object
    there to stand in for (the product then goes where that object stands)."""
    if not adjusting:
        raise gr.Error("Pick one of the copy-paste results above first.")
    point = [float(v) for v in evt.index]
    if click == CLICK_PICKS:  # another object: the catalog's box and size were the old one's
        return dict(
            adjusting, object_at=point, position=None, box=None, object_size=None,
            object_type=None,
        )  # fmt: skip
    return dict(adjusting, position=point)


@readable_errors
def restage(
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
    _need_image(image)
    if not adjusting:
        raise gr.Error("Pick one of the copy-paste results above first.")
    scene_mask = adjusting.get("scene_mask")
    staged = engine.stage_in_scene(
        image,
        confined(adjusting["scene"], "scene"),
        mask=_mask_or_none(mask),
        scene_mask=confined(scene_mask, "scene mask") if scene_mask else None,
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
    path = staged.save(_result_path("adjusted", ".png"))
    return str(path), _details([staged])[0], staged


def keep_adjusted(staged, results: list | None, image: str | None = None):
    """Add the adjusted image to the session's results (Compare tab, exports)."""
    if staged is None:
        raise gr.Error("Adjust a result first.")
    results, _ = _keep(results, [staged], image, "Adjusted ")
    return results


def _placements(placement) -> list[str] | None:
    if isinstance(placement, str):
        placement = [placement]
    chosen = [p.strip() for p in placement or [] if p and p.strip()]
    return chosen or None


def _generated_status(steps, step, staged):
    source = staged[0].source if staged else {}
    model = source.get("model")
    backend = f"`{source.get('backend', '?')}`" + (f" ({model})" if model else "")
    return _step(steps, step, f"segment `{source.get('segment_backend', '?')}`, generate {backend}")


def _interests(text: str | None) -> list[str] | None:
    return [i.strip() for i in (text or "").split(",") if i.strip()] or None


@readable_errors
def stage_vanilla(
    image: str | None,
    mask: str | None = None,
    category: str = "",
    prompt: str = "",
    placement: list[str] | str | None = None,
    seed: int = 0,
    backend: str = "auto",
    results: list | None = None,
    steps: dict | None = None,
    progress=gr.Progress(),
):
    """Vanilla tab: the whole background generated around the product (engine.stage_vanilla)."""
    _need_image(image)
    staged = engine.stage_vanilla(
        image,
        category=(category or "").strip() or None,
        prompt=(prompt or "").strip() or None,
        placement=_placements(placement),
        seed=int(seed or 0),
        backend=backend or None,
        mask=_mask_or_none(mask),
        progress=_progress(progress),
    )
    results, gallery = _keep(results, staged, image)
    steps, status = _generated_status(steps, "vanilla", staged)
    return gallery, _details(staged), results, steps, status


@readable_errors
def stage_prompt(
    image: str | None,
    mask: str | None = None,
    category: str = "",
    theme: str = "",
    prompt: str = "",
    interests: str = "",
    placement: list[str] | str | None = None,
    seed: int = 0,
    backend: str = "auto",
    results: list | None = None,
    steps: dict | None = None,
    progress=gr.Progress(),
):
    """Prompt tab: a generated scene from a prompt, or a theme of the category's library."""
    _need_image(image)
    staged = engine.stage_prompt(
        image,
        prompt=(prompt or "").strip() or None,
        theme=(theme or "").strip() or None,
        category=(category or "").strip() or None,
        placement=_placements(placement),
        seed=int(seed or 0),
        backend=backend or None,
        mask=_mask_or_none(mask),
        interests=_interests(interests),
        progress=_progress(progress),
    )
    results, gallery = _keep(results, staged, image)
    steps, status = _generated_status(steps, "prompt", staged)
    return gallery, _details(staged), results, steps, status


@readable_errors
def suggest_prompt(category: str = "", location: str = "", interests: str = ""):
    """The bandit's suggestion (engine.suggest_prompt): a theme, its filled prompt, scores."""
    context = {"location": location.strip()} if location and location.strip() else None
    suggestion = engine.suggest_prompt(
        (category or "").strip() or None, context=context, interests=_interests(interests)
    )
    ranked = sorted(suggestion.scores.items(), key=lambda kv: -kv[1])
    scores = ", ".join(f"{name} {score:.2f}" for name, score in ranked)
    about = (
        f"The bandit for **{suggestion.category}** suggests **{suggestion.theme}** "
        f"(upper confidence bounds: {scores}; {suggestion.updates} feedback updates so far)."
    )
    return suggestion.theme, suggestion.prompt, about


def placement_choices() -> list[str]:
    from staging.compose.placement import PLACEMENTS

    return [f"{name}" for name in PLACEMENTS]


def category_choices() -> list[str]:
    """Categories of the prompt library (its themes are what the bandit chooses among)."""
    try:
        return list(engine.prompt_library().categories)
    except StagingError:  # a broken prompts file must not stop the app; staging reports it
        log.exception("cannot read the prompt library")
        return []


def theme_choices(category: str | None) -> list[str]:
    try:
        return [t.name for t in engine.prompt_library().themes((category or "").strip() or None)]
    except StagingError:
        return []


def themes_for(category: str | None):
    """New theme choices when the category changes."""
    return gr.Dropdown(choices=theme_choices(category), value=None)


def generation_note() -> str:
    """Which generator ``auto`` runs, and how to get diffusion weights when there are none."""
    from staging.generate import resolve

    hint = engine.generation_hint()
    if hint is None:
        return f"Generator `auto` = **{resolve(None, engine.runtime)}** (weights found)."
    lines: list[str] = []
    for line in hint.splitlines():  # indented command lines become a code block
        if lines and line.startswith("    ") != lines[-1].startswith("    "):
            lines.append("")
        lines.append(line)
    return "\n".join(lines)


def generator_title() -> str:
    from staging.generate import resolve

    name = resolve(None, engine.runtime)
    if engine.generation_hint() is None:
        return f"Generator 'auto' = {name}"
    return f"Generator 'auto' = {name} (weights-free): how to use diffusion models"


def generator_choices() -> list[str]:
    from staging.generate import BACKENDS as GENERATORS

    return ["auto", *GENERATORS]


# --------------------------------------------------------------------------------------------
# Compare and export
# --------------------------------------------------------------------------------------------


def compare_view(results: list | None, favourites: list[str] | None = None):
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
def export_results(favourites: list[str] | None, fmt: str = "PNG", results: list | None = None):
    """Compare tab: favourites (or all results) as PNG, JPEG or WebP files, and a zip."""
    results = results or []
    if not results:
        raise gr.Error("No results yet: stage the product (Copy-paste, Vanilla or Prompt tab).")
    if fmt not in FORMATS:
        raise gr.Error(f"Unknown format {fmt!r}: choose {', '.join(FORMATS)}.")
    chosen = [r for r in results if r["label"] in (favourites or [])] or results
    if favourites:
        _learn_from_favourites(results, set(favourites))
    folder = _result_path("export", "")
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


def export_stem(item: dict) -> str:
    """An export's file name: product, mode, placement (or catalog scene) and seed, e.g.
    ``lamp-prompt-story-seed0`` or ``chair-copy-paste-R13``."""
    source = item["info"]["source"]
    placement = source.get("placement")
    where = placement.get("name") if isinstance(placement, dict) else source.get("id")
    seed = f"seed{source['seed']}" if "seed" in source else None
    parts = [item.get("product") or "product", item["info"]["mode"], where, seed]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(str(p) for p in parts if p))


def _learn_from_favourites(results: list, favourites: set[str]) -> None:
    """Each prompt-staged result shown teaches its category's bandit once: a favourite is a
    click (reward 1) on its theme, in its placement's context; the others are not (0)."""
    for item in results:
        source = item["info"].get("source", {})
        theme, placement = source.get("theme"), source.get("placement") or {}
        if item["info"].get("mode") != "prompt" or not theme or item.get("rewarded"):
            continue
        context = {"placement": f"{placement.get('width')}x{placement.get('height')}"}
        reward = 1.0 if item["label"] in favourites else 0.0
        engine.record_feedback(source.get("category"), theme, context, reward)
        item["rewarded"] = True


def clear_results():
    return [], None, None


# --------------------------------------------------------------------------------------------
# Parallax
# --------------------------------------------------------------------------------------------


@readable_errors
def render_parallax(
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
    _need_image(image if picked is None else picked["image"])
    # Named as a designer files it: the product (or the staged result) and the motion.
    stem = export_stem(picked) if picked is not None else Path(image).stem
    if picked is not None:
        image, mask = picked["image"], picked["alpha"]
    progress(0.05, desc="inpainting the background and rendering frames")
    out = _result_path("parallax", "") / f"{stem}-parallax-{motion}.mp4"
    out.parent.mkdir(parents=True)
    started = time.perf_counter()
    clip = engine.parallax(
        image,
        out,
        mask=_mask_or_none(mask),
        seconds=float(seconds),
        motion=motion,
        size=None if size in (None, "", "photo") else size,
        progress=lambda fraction, message: progress(fraction, desc=message),
    )
    width, height = clip.size
    steps, status = _step(
        steps,
        "parallax",
        f"inpaint `{engine.inpainter().name}`, mask `{'given' if mask else 'segment'}`",
    )
    info = (
        f"{clip.frames} frames, {width}x{height} at {clip.fps:g} fps, {clip.motion}, "
        f"{clip.fit}{', seamless loop' if clip.loop else ''} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    button = gr.DownloadButton(value=str(clip.path), visible=True)
    return str(clip.path), button, info, steps, status


# --------------------------------------------------------------------------------------------
# The UI
# --------------------------------------------------------------------------------------------

INTRO = """# Product Staging Studio
Catalog photo in → staged ad images and parallax videos out, on the CPU. Segmentation uses a
pretrained IS-Net (fetched once); everything else has weights-free defaults, and pretrained
models are used when they are in the models folder.
**Demo data:** the examples and the small demo catalog are procedural renders shipped with the
project. Real use means indexing **your own catalog** of staged photos (Catalog tab, or
`staging index`)."""


def build_ui() -> gr.Blocks:
    backends = ["auto", *BACKENDS]
    placements = placement_choices()
    default_placement = "square"
    generators = generator_choices()
    with gr.Blocks(title="Product Staging Studio", delete_cache=(3600, 86400)) as demo:
        steps = gr.State({})
        results = gr.State([])
        cp_scenes = gr.State([])  # the last copy-paste results' scenes, for adjusting
        adjusting = gr.State(None)  # the result being adjusted: scene, object, feet
        adjusted = gr.State(None)  # its last render (a Staged), to keep
        gr.Markdown(INTRO)
        status = gr.Markdown(status_line({}), label="Status", elem_id="status-line")
        with gr.Row():
            seg_banner = gr.Markdown(engine.segmentation_status(), elem_id="segmentation-banner")
            pull_button = gr.Button(
                f"Fetch the segmentation model ({get_spec(RECOMMENDED).size_mb:.0f} MB)",
                visible=engine.pretrained_segmenter_name() is None,
                elem_id="pull-model-button",
                scale=0,
            )

        advanced = gr.Checkbox(
            value=False, label="Advanced: show the JSON details of each result", elem_id="advanced"
        )
        with gr.Tabs(selected="studio") as tabs:
            # ------------------------------------------------------------ Studio
            with gr.Tab("Studio", id="studio"):
                with gr.Row():
                    with gr.Column(scale=2):
                        image = readable_uploads(
                            gr.Image(
                                label="Product photo",
                                type="filepath",
                                image_mode=None,
                                height=300,
                                elem_id="product-image",
                            )
                        )
                    with gr.Column(scale=2):
                        product_kind = gr.Textbox(
                            label="Product kind",
                            placeholder="blank: read from the catalog (e.g. Chair)",
                            elem_id="product-kind",
                        )
                        product_size = gr.Textbox(
                            label="Size",
                            placeholder="blank: the kind's (e.g. 80x78 cm, width first)",
                            elem_id="product-size",
                        )
                        studio_k = gr.Slider(
                            1, 6, value=3, step=1, label="Copy-paste candidates",
                            elem_id="studio-k",
                        )  # fmt: skip
                        studio_button = gr.Button(
                            "Stage in every mode", variant="primary", elem_id="studio-button"
                        )
                        gr.Markdown(
                            "Copy-paste uses the index chosen in the **Catalog** tab (the demo "
                            "rooms, or the rooms you upload there). The mask is made as soon "
                            "as a photo is loaded (see and correct it in the **Mask** tab)."
                        )
                        if EXAMPLES:
                            gr.Examples(
                                EXAMPLES, inputs=image, label="Examples (procedural renders)"
                            )
                studio_grid = gr.Gallery(
                    label="Every mode's candidates (pick one)",
                    columns=5,
                    height=300,
                    object_fit="contain",
                    elem_id="studio-grid",
                )
                studio_why = gr.Markdown(
                    "Load a product photo, then **Stage in every mode**.", elem_id="studio-why"
                )
                with gr.Row():
                    studio_favourite = gr.Button("★ Favourite", elem_id="studio-favourite")
                    studio_adjust = gr.Button(
                        "Adjust (copy-paste)", interactive=False, elem_id="studio-adjust"
                    )
                    studio_animate = gr.Button("Animate", elem_id="studio-animate")
                    studio_export = gr.Button("Export favourites", elem_id="studio-export")
                studio_favourites = gr.Markdown(elem_id="studio-favourites")
                with gr.Row():
                    with gr.Column(visible=False) as studio_clip_box:
                        studio_video = gr.Video(
                            label="Parallax (settings: Parallax tab)", autoplay=True, loop=True,
                            height=260, elem_id="studio-video",
                        )  # fmt: skip
                        studio_clip = gr.Markdown(elem_id="studio-clip")
                        studio_download = gr.DownloadButton(
                            "Download MP4", visible=False, elem_id="studio-download"
                        )
                    with gr.Column(visible=False) as studio_files_box:
                        studio_files = gr.File(
                            label="Exported files", file_count="multiple", elem_id="studio-files"
                        )
                        studio_zip = gr.File(label="All as .zip", elem_id="studio-zip")
                studio_details = gr.JSON(label="Details", visible=False, elem_id="studio-details")

            # ------------------------------------------------------------ Mask
            with gr.Tab("Mask", id="mask"):
                with gr.Row():
                    backend = gr.Dropdown(
                        backends,
                        value="auto",
                        label="Segmentation backend",
                        info="auto: the best pretrained model on disk (IS-Net first); without "
                        "one, the weights-free 'catalog' for plain backdrops only",
                        scale=3,
                    )
                    run = gr.Button("Segment again", variant="primary", elem_id="segment-button")
                with gr.Row():
                    prob = gr.Image(
                        label="Probability",
                        type="filepath",
                        format="png",
                        height=240,
                        interactive=False,
                    )
                    mask_view = gr.Image(
                        label="Mask (threshold 0.5, with corrections)",
                        type="filepath",
                        format="png",
                        height=240,
                        interactive=False,
                        elem_id="mask-image",
                    )
                    cutout = gr.Image(
                        label="Cutout",
                        type="filepath",
                        format="png",
                        height=240,
                        interactive=False,
                        elem_id="cutout-image",
                    )
                # The product's alpha as every mode receives it (hidden; an API input).
                alpha = readable_uploads(  # an upload too: every staging call of the API takes it
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
                    editor = gr.ImageEditor(
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
                    apply_brush = gr.Button("Apply corrections", elem_id="apply-brush")

            # ---------------------------------------------------------------- Catalog
            with gr.Tab("Catalog", id="catalog"):
                gr.Markdown(
                    "Copy-paste staging reuses the backgrounds of **staged** catalog photos "
                    "(products in rooms). Upload your own rooms below, or (operators) index a "
                    "folder shared on the server into a named index kept in the app's cache "
                    "(incremental: re-running only processes new or changed images). Without "
                    "either, the demo catalog is used."
                )
                gr.Markdown(engine.scene_parser_status(), elem_id="scene-parser-status")
                with gr.Row():
                    folder = gr.Textbox(
                        label="Catalog folder on the server (operators)",
                        placeholder="a folder inside STAGING_CATALOG_ROOTS",
                        scale=3,
                    )
                    csv = gr.Textbox(
                        label="CSV (optional: id,image,category,title,...)", value="", scale=2
                    )
                index_dir = gr.Dropdown(
                    index_choices(),
                    value=DEMO,
                    allow_custom_value=True,
                    label="Index (used by Copy-paste): 'demo' is the read-only demo catalog; type "
                    "a new name to index your own folder into it",
                    elem_id="index-dir",
                )
                with gr.Row():
                    index_button = gr.Button(
                        "Index folder", variant="primary", elem_id="index-button"
                    )
                    show_button = gr.Button("Show index", elem_id="show-index-button")
                with gr.Accordion("Bring your own rooms (upload)", open=True):
                    gr.Markdown(
                        "Upload room photos — many files or a zip, and optionally a CSV "
                        "(`image,mask,type,size,...`) — to index them into an index of this "
                        "session (or the name you type). Copy-paste uses it at once. Up to 500 "
                        "images of 25 MB each; files that cannot be used are listed."
                    )
                    with gr.Row():
                        uploads = gr.File(
                            file_count="multiple", file_types=["image", ".zip", ".csv"],
                            type="filepath", label="Room photos, a zip, a CSV", scale=3,
                            elem_id="catalog-upload",
                        )  # fmt: skip
                        upload_name = gr.Textbox(
                            label="Index name (blank: this session's)", scale=1,
                            elem_id="upload-name",
                        )  # fmt: skip
                    with gr.Row():
                        upload_button = gr.Button(
                            "Upload and index", variant="primary", elem_id="upload-button"
                        )
                        delete_button = gr.Button(
                            "Delete this index", elem_id="delete-index-button"
                        )
                catalog_stats = gr.Markdown(label="Index", elem_id="catalog-stats")
                catalog_gallery = gr.Gallery(
                    label="Catalog items nearest to the product", columns=4, height=300
                )

            # ---------------------------------------------------------------- Copy-paste
            with gr.Tab("Copy-paste", id="copy-paste"):
                gr.Markdown(
                    "Paper §5.3: the product is pasted into the most similar **staged** catalog "
                    "scenes, where the old product stood (removed and inpainted). Uses the product "
                    "and mask of the Studio and Mask tabs, and the index of the Catalog tab."
                )
                with gr.Row():
                    k = gr.Slider(
                        1, 6, value=3, step=1, label="Candidates (k)", elem_id="copy-paste-k"
                    )
                    shadow = gr.Checkbox(value=True, label="Contact shadow")
                    harmonize = gr.Checkbox(value=True, label="Harmonise colours")
                    cp_button = gr.Button("Stage", variant="primary", elem_id="copy-paste-button")
                with gr.Row():
                    cp_gallery = gr.Gallery(
                        label="Staged candidates",
                        columns=3,
                        height=230,
                        object_fit="contain",  # whole, never cropped
                        elem_id="copy-paste-gallery",
                    )
                    cp_sources = gr.Gallery(
                        label="Catalog scene each came from",
                        columns=3,
                        height=230,
                        object_fit="contain",
                        elem_id="copy-paste-sources",
                    )
                cp_why = gr.Markdown(elem_id="copy-paste-why")
                cp_details = gr.JSON(
                    label="Details (retrieval score, product SSIM, alignment)", visible=False
                )
                with gr.Accordion("Adjust a result (pick one above)", open=True):
                    with gr.Row():
                        click_mode = gr.Radio(
                            [CLICK_MOVES, CLICK_PICKS],
                            value=CLICK_MOVES,
                            label="A click in the picture",
                            elem_id="adjust-click",
                        )
                        old_object = gr.Radio(
                            list(OLD_OBJECT), value="as fitted", label="The old object",
                            elem_id="adjust-old-object",
                        )  # fmt: skip
                        adjust_scale = gr.Slider(
                            0.3, 2.0, value=1.0, step=0.05, label="Size", elem_id="adjust-scale"
                        )
                        adjust_shadow = gr.Checkbox(value=True, label="Shadows")
                        keep_button = gr.Button("Keep this version", elem_id="adjust-keep")
                    with gr.Row():
                        adjust_view = gr.Image(
                            label="Click to move the product or to pick the object it replaces",
                            interactive=False,
                            height=420,
                            elem_id="adjust-view",
                        )
                        adjust_details = gr.JSON(
                            label="Placement (feet, object, fit)", visible=False,
                            elem_id="adjust-details",
                        )  # fmt: skip

            # ---------------------------------------------------------------- Vanilla
            categories = category_choices()
            with gr.Tab("Vanilla", id="vanilla"):
                gr.Markdown(
                    "The whole background generated around the product, laid out for each "
                    "placement size; no retrieval, and no scene prompt (`a photo of a <category>`, "
                    "or nothing without a category)."
                )
                with gr.Accordion(generator_title(), open=False):
                    gr.Markdown(generation_note())
                with gr.Row():
                    v_category = gr.Dropdown(
                        categories,
                        value=None,
                        allow_custom_value=True,
                        label="Product category",
                        elem_id="vanilla-category",
                    )
                    v_prompt = gr.Textbox(label="Prompt (optional: replaces the default)", scale=2)
                with gr.Row():
                    v_placement = gr.Dropdown(
                        placements,
                        value=[default_placement],
                        multiselect=True,
                        allow_custom_value=True,
                        label="Placement sizes (names, WxH or ratios)",
                        scale=2,
                        elem_id="vanilla-placement",
                    )
                    v_seed = gr.Number(value=0, precision=0, label="Seed")
                    v_backend = gr.Dropdown(generators, value="auto", label="Generator")
                v_button = gr.Button("Stage", variant="primary", elem_id="vanilla-button")
                v_gallery = gr.Gallery(
                    label="Results",
                    columns=4,
                    height=320,
                    object_fit="contain",
                    elem_id="vanilla-gallery",
                )
                v_details = gr.JSON(label="Details", visible=False)

            # ---------------------------------------------------------------- Prompt
            with gr.Tab("Prompt", id="prompt"):
                gr.Markdown(
                    "A scene from a prompt, or from one of the category's themes "
                    "(`staging/assets/prompts.yaml`). **Suggest** asks the category's contextual "
                    "bandit (LinUCB) which theme to use for this viewer."
                )
                with gr.Row():
                    p_category = gr.Dropdown(
                        categories,
                        value=None,
                        allow_custom_value=True,
                        label="Product category",
                        elem_id="prompt-category",
                    )
                    p_location = gr.Textbox(label="Viewer location (optional)")
                    p_interests = gr.Textbox(label="Viewer interests, comma-separated (optional)")
                    suggest = gr.Button("Suggest", elem_id="suggest-button")
                suggestion = gr.Markdown(label="Suggestion", elem_id="prompt-suggestion")
                with gr.Row():
                    p_theme = gr.Dropdown(
                        theme_choices(None),
                        value=None,
                        allow_custom_value=True,
                        label="Theme",
                        scale=1,
                    )
                    p_prompt = gr.Textbox(
                        label="Prompt (optional: replaces the theme's)", lines=2, scale=3
                    )
                with gr.Row():
                    p_placement = gr.Dropdown(
                        placements,
                        value=[default_placement],
                        multiselect=True,
                        allow_custom_value=True,
                        label="Placement sizes",
                        scale=2,
                    )
                    p_seed = gr.Number(value=0, precision=0, label="Seed")
                    p_backend = gr.Dropdown(generators, value="auto", label="Generator")
                p_button = gr.Button("Stage", variant="primary", elem_id="prompt-button")
                p_gallery = gr.Gallery(
                    label="Results",
                    columns=4,
                    height=320,
                    object_fit="contain",
                    elem_id="prompt-gallery",
                )
                p_details = gr.JSON(label="Details", visible=False)

            # ---------------------------------------------------------------- Compare
            with gr.Tab("Compare", id="compare"):
                gr.Markdown(
                    "Every result of this session, side by side. Tick favourites and download "
                    "them (all results when none is ticked). Downloaded favourites of the Prompt "
                    "tab teach its theme bandit which themes you prefer."
                )
                compare_gallery = gr.Gallery(
                    label="Results", columns=4, height=360, object_fit="contain"
                )
                favourites = gr.CheckboxGroup(label="Favourites", choices=[], elem_id="favourites")
                with gr.Row():
                    fmt = gr.Radio(list(FORMATS), value="PNG", label="Format")
                    export_button = gr.Button(
                        "Prepare downloads", variant="primary", elem_id="export-button"
                    )
                    clear_button = gr.Button("Clear results")
                with gr.Row():
                    export_files = gr.File(
                        label="Files", file_count="multiple", elem_id="export-files"
                    )
                    export_zip = gr.File(label="All as .zip")

            # ---------------------------------------------------------------- Parallax
            with gr.Tab("Parallax", id="parallax"):
                gr.Markdown(
                    "Paper §5.4: the product moves more than the background behind it (inpainted "
                    "once), which reads as depth. Seamless loop, H.264 MP4."
                )
                with gr.Row():
                    source = gr.Dropdown(
                        [PRODUCT_PHOTO],
                        value=PRODUCT_PHOTO,
                        label="Animate",
                        scale=2,
                        elem_id="parallax-source",
                    )
                    motion = gr.Radio(list(MOTIONS), value="pan", label="Motion")
                    seconds = gr.Slider(
                        1, 10, value=3, step=0.5, label="Length (s)", elem_id="parallax-seconds"
                    )
                    size = gr.Dropdown(
                        PARALLAX_SIZES,
                        value="photo",
                        allow_custom_value=True,
                        label="Size (ratio or WxH)",
                        elem_id="parallax-size",
                    )
                px_button = gr.Button("Render", variant="primary", elem_id="parallax-button")
                with gr.Row():
                    video = gr.Video(
                        label="Preview",
                        autoplay=True,
                        loop=True,
                        height=360,
                        elem_id="parallax-video",
                    )
                    with gr.Column():
                        px_info = gr.Markdown(label="Clip", elem_id="parallax-info")
                        download = gr.DownloadButton(
                            "Download MP4", visible=False, elem_id="parallax-download"
                        )

        # ---------------------------------------------------------------- events
        seg_outputs = [prob, mask_view, cutout, alpha, steps, status]
        banner = dict(
            fn=segmentation_banner,
            inputs=None,
            outputs=[seg_banner, pull_button],
            api_visibility="private",
        )
        pull_button.click(pull_segmenter, None, [seg_banner, pull_button], api_name="pull_model")
        demo.load(**banner)  # a model fetched by another session or the CLI shows up on reload
        refresh = dict(
            fn=compare_view,
            inputs=[results, favourites],
            outputs=[compare_gallery, favourites, source],
            api_visibility="private",
        )
        canvas = dict(
            fn=brush_canvas, inputs=[image, mask_view], outputs=[editor], api_visibility="private"
        )
        run.click(
            segment_product, [image, backend, steps], seg_outputs, api_name="segment"
        ).success(**canvas).then(**banner)
        # A new photo: drop the old alpha at once (a Stage click must never pair the new photo
        # with the previous photo's mask), then segment it.
        changed = image.change(
            _no_alpha, None, [alpha], queue=False, api_visibility="private"
        ).then(product_changed, [image, backend, steps], seg_outputs, api_visibility="private")
        changed.success(**canvas).then(**banner)
        # A photo that cannot be read: its one message is the upload's; nothing of the previous
        # product stays on screen (mask, cut-out, brush canvas), and the status line says so.
        changed.failure(
            product_failed,
            [steps],
            [prob, mask_view, cutout, alpha, editor, status],
            api_visibility="private",
        )
        apply_brush.click(
            correct_mask,
            [image, backend, editor, steps],
            [mask_view, cutout, alpha, steps, status],
            api_name="correct_mask",
        )
        index_button.click(
            index_catalog,
            [folder, csv, index_dir, image, steps],
            [catalog_stats, catalog_gallery, index_dir, steps, status],
            api_name="index_catalog",
            concurrency_id=HEAVY,
            concurrency_limit=HEAVY_LIMIT,
        )
        upload_button.click(
            upload_catalog,
            [uploads, upload_name, steps],
            [catalog_stats, catalog_gallery, index_dir, steps, status],
            api_name="upload_catalog",
            concurrency_id=HEAVY,
            concurrency_limit=HEAVY_LIMIT,
        )
        delete_button.click(
            delete_catalog,
            [index_dir],
            [catalog_stats, catalog_gallery, index_dir],
            api_name="delete_catalog",
        )
        show_button.click(
            show_catalog,
            [index_dir, image],
            [catalog_stats, catalog_gallery, index_dir],
            api_name="show_catalog",
        )
        cp_button.click(
            copy_paste,
            [
                image,
                alpha,
                k,
                shadow,
                harmonize,
                index_dir,
                results,
                steps,
                product_kind,
                product_size,
            ],
            [cp_gallery, cp_sources, cp_details, results, steps, status, cp_scenes, cp_why],
            api_name="copy_paste",
            concurrency_id=HEAVY,
            concurrency_limit=HEAVY_LIMIT,
        ).success(**refresh)
        rerender = dict(
            fn=restage,
            inputs=[image, alpha, adjusting, old_object, adjust_scale, adjust_shadow, harmonize],
            outputs=[adjust_view, adjust_details, adjusted],
            api_visibility="private",
        )
        cp_gallery.select(
            pick_result,
            [cp_scenes],
            [adjusting, old_object, adjust_scale],
            api_visibility="private",
        ).success(**rerender)
        adjust_view.select(
            click_scene, [adjusting, click_mode], [adjusting], api_visibility="private"
        ).success(**rerender)
        for control in (old_object, adjust_shadow):
            control.input(**rerender)
        adjust_scale.release(**rerender)
        keep_button.click(
            keep_adjusted, [adjusted, results, image], [results], api_visibility="private"
        ).success(**refresh)
        v_button.click(
            stage_vanilla,
            [image, alpha, v_category, v_prompt, v_placement, v_seed, v_backend, results, steps],
            [v_gallery, v_details, results, steps, status],
            api_name="vanilla",
            concurrency_id=HEAVY,
            concurrency_limit=HEAVY_LIMIT,
        ).success(**refresh)
        p_category.change(themes_for, [p_category], [p_theme], api_visibility="private")
        suggest.click(
            suggest_prompt,
            [p_category, p_location, p_interests],
            [p_theme, p_prompt, suggestion],
            api_name="suggest_prompt",
        )
        p_button.click(
            stage_prompt,
            [
                image,
                alpha,
                p_category,
                p_theme,
                p_prompt,
                p_interests,
                p_placement,
                p_seed,
                p_backend,
                results,
                steps,
            ],
            [p_gallery, p_details, results, steps, status],
            api_name="prompt",
            concurrency_id=HEAVY,
            concurrency_limit=HEAVY_LIMIT,
        ).success(**refresh)
        export_button.click(
            export_results,
            [favourites, fmt, results],
            [export_files, export_zip],
            api_name="export",
        )
        clear_button.click(
            clear_results, None, [results, export_files, export_zip], api_visibility="private"
        ).then(**refresh)
        px_button.click(
            render_parallax,
            [image, alpha, source, motion, seconds, size, results, steps],
            [video, download, px_info, steps, status],
            api_name="parallax",
            concurrency_id=HEAVY,
            concurrency_limit=HEAVY_LIMIT,
        )
        # ---------------------------------------------------------------- Studio events
        picks = gr.State([])  # the grid's results: label, words, details, scene to adjust
        picked = gr.State(None)  # the label of the picked one
        studio_button.click(
            stage_all,
            [image, alpha, studio_k, product_kind, product_size, index_dir, results, steps],
            [studio_grid, studio_why, studio_details, results, steps, status, picks],
            api_name="stage_all",
            concurrency_id=HEAVY,
            concurrency_limit=HEAVY_LIMIT,
        ).success(**refresh)
        studio_grid.select(
            pick_candidate,
            [picks],
            [picked, studio_why, studio_details, studio_adjust],
            api_visibility="private",
        )
        studio_adjust.click(
            adjust_candidate,
            [picks, picked],
            [adjusting, old_object, adjust_scale, tabs],
            api_visibility="private",
        ).success(**rerender)
        studio_favourite.click(
            favourite_candidate,
            [picked, favourites],
            [favourites, studio_favourites],
            api_visibility="private",
        )
        shown = lambda: gr.Column(visible=True)  # noqa: E731
        studio_export.click(
            export_results, [favourites, fmt, results], [studio_files, studio_zip],
            api_visibility="private",
        ).success(shown, None, [studio_files_box], api_visibility="private")  # fmt: skip
        studio_animate.click(
            animate_candidate,
            [image, alpha, picked, motion, seconds, size, results, steps],
            [studio_clip_box, studio_video, studio_download, studio_clip, steps, status],
            api_visibility="private",
            concurrency_id=HEAVY,
            concurrency_limit=HEAVY_LIMIT,
        )
        details = [studio_details, cp_details, adjust_details, v_details, p_details]
        advanced.change(
            lambda on: [gr.update(visible=bool(on))] * len(details),
            [advanced],
            details,
            api_visibility="private",
        )
    return demo


# Gradio gives a gallery as many columns as it has images (at most ``columns``): one result
# then spans the whole width as a 1200 px square, cropped by the box's height. Results keep
# their four columns, so each is shown whole.
CSS = """
#vanilla-gallery .grid-container, #prompt-gallery .grid-container { --grid-cols: 4 !important; }
"""


def warm_up() -> None:
    """At start, in the background: compile the matting kernels (once per install, about a
    minute), then index the demo catalog (which opens the segmentation model), so that a
    user's first photo and first grid wait for neither. A failure here is only logged: the
    same step runs again, with its readable error, when the user needs it."""
    prepare_matting()
    try:
        demo_index()
    except Exception:  # noqa: BLE001 - a warm-up must never stop the app
        log.exception("warming up the demo index")


def launch_options(host: str = "127.0.0.1", port: int = 7860) -> dict[str, Any]:
    """Keyword arguments of ``demo.launch``: upload size limit, readable errors, cache access."""
    return {
        "server_name": host,
        "server_port": port,
        "max_file_size": MAX_UPLOAD,
        "show_error": True,
        "allowed_paths": [str(RESULTS)],
        "css": CSS,
    }


def create_app() -> gr.Blocks:
    """The UI with its queue: at most 32 waiting requests, light steps 2 at a time, heavy
    steps (index, staging, rendering) ``STAGING_APP_CONCURRENCY`` (1) at a time."""
    demo = build_ui()
    demo.queue(default_concurrency_limit=2, max_size=32)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    log.setLevel(logging.INFO)
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    create_app().launch(**launch_options(args.host, args.port))


if __name__ == "__main__":
    main()
