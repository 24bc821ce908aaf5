"""``staging eval retrieval``: similar-product retrieval, as in the paper's Table 1.

Every image of the labelled set is a query against all the *others* (the query itself is
excluded); similarity is the cosine, i.e. the dot product of unit embeddings. A hit is
*relevant* when it has the query's label (the paper: "the same subcategory"). For each ``k``:

* ``P@k`` (precision) = mean over queries of (relevant hits among the top k) / k;
* ``R@k`` (recall, as the paper uses it) = share of queries with at least one relevant hit in
  the top k. (So ``P@1 == R@1``.)

Only labels with at least ``min_count`` images take part (the paper: subcategories with
>= 20 images; the IKEA set here uses 10), and rows with an empty label are dropped.

Products are embedded with their mask, as in the paper ("for a given *segmented* product").
The mask comes from the weights-free ``backdrop`` segmenter (:mod:`staging.segment.backdrop`;
``catalog`` is its former name and still accepted),
which is what the pipeline uses on plain-background catalog shots; if it cannot be loaded, a
simple near-white threshold (private to this module) stands in, and the report says which.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from staging.catalog.csv import read_csv, resolve_path
from staging.errors import StagingError
from staging.io import load_image

KS = (1, 3, 5)


def retrieval_metrics(
    embeddings: np.ndarray, labels: Sequence, ks: Sequence[int] = KS
) -> dict[str, float]:
    """Leave-one-out ``P@k`` and ``R@k`` (see the module docstring) for every ``k`` in ``ks``.

    ``embeddings`` is ``(N, D)``; rows are L2-normalised here, so any scale is fine. Ties in
    similarity are broken by row order (stable sort), so results are deterministic.
    Returns ``{"P@1": .., "R@1": .., ..., "queries": N}``.
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    n = len(emb)
    if emb.ndim != 2 or len(labels) != n:
        raise ValueError(f"need (N, D) embeddings and N labels, got {emb.shape} and {len(labels)}")
    if n < 2:
        raise ValueError("retrieval needs at least two items")
    ks = sorted({int(k) for k in ks})
    if ks[0] < 1:
        raise ValueError(f"k must be >= 1, got {ks}")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = emb / np.maximum(norms, 1e-12)
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)  # the query never retrieves itself
    kmax = min(ks[-1], n - 1)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :kmax]
    relevant = labels[order] == labels[:, None]
    out: dict[str, float] = {}
    for k in ks:
        top = relevant[:, : min(k, kmax)]
        out[f"P@{k}"] = float(np.mean(top.sum(axis=1) / k))
        out[f"R@{k}"] = float(np.mean(top.any(axis=1)))
    out["queries"] = n
    return out


def read_labelled_csv(
    csv_path: str | Path, root: str | Path | None = None, label: str = "type", min_count: int = 10
) -> list[tuple[Path, str]]:
    """``(image path, label)`` rows whose label is non-empty and has >= ``min_count`` rows.

    Image paths in the CSV (column ``image``) follow :mod:`staging.catalog.csv`: absolute, or
    relative to ``root`` (default: the CSV's folder).
    """
    csv_path = Path(csv_path)
    root = Path(root) if root is not None else csv_path.parent
    rows = read_csv(csv_path).rows
    if not rows:
        raise StagingError(f"{csv_path} has no rows.")
    for column in ("image", label):
        if column not in rows[0]:
            raise StagingError(
                f"{csv_path} has no column {column!r} (columns: {', '.join(rows[0])})."
            )
    counts = Counter(r[label].strip() for r in rows if r[label].strip())
    kept = [
        (resolve_path(r["image"] or "", [root]), r[label].strip())
        for r in rows
        if r[label].strip() and counts[r[label].strip()] >= min_count
    ]
    if len({lab for _, lab in kept}) < 2:
        raise StagingError(
            f"Fewer than two labels in {csv_path} have >= {min_count} images in column "
            f"{label!r}; lower --min-count."
        )
    return kept


def _white_threshold_mask(image: np.ndarray) -> np.ndarray:
    """Fallback product mask: pixels that are not near-white, cleaned up a little."""
    grey_min = image.min(axis=2)
    mask = (grey_min < 235).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    return mask.astype(bool)


def _mask_function(
    runtime, backend: str = "backdrop"
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """The product-mask function for the evaluation, and its name for the report.

    ``backdrop`` (or its former name ``catalog``) falls back to a white threshold if it
    cannot run, and the report names it as asked; any other backend (e.g.
    ``hybrid``, what ``staging index`` uses for shots when U^2-Net-p is on disk) must run.
    """
    from staging.segment import canonical_backend

    if canonical_backend(backend) != "backdrop":
        from staging.segment import create_segmenter

        chosen = create_segmenter(backend, runtime)
        return (lambda image: chosen.predict(image) >= 0.5), backend
    try:
        from staging.segment import create_segmenter

        segmenter = create_segmenter(backend, runtime)
        probe = np.full((64, 64, 3), 250, np.uint8)
        probe[20:44, 20:44] = (120, 40, 30)
        segmenter.predict(probe)

        def segment(image: np.ndarray) -> np.ndarray:
            return segmenter.predict(image) >= 0.5

        return segment, backend
    except Exception:  # noqa: BLE001 - any failure means: use the fallback, and say so
        return _white_threshold_mask, "white-threshold"


def _resolve_embedder(engine_or_embed_fn: Any, embedder: str | None):
    """``(embed_batch(images, masks) -> (N, D), name, runtime)`` from an engine or a callable."""
    from staging.embed import DEFAULT, create_embedder

    runtime = getattr(engine_or_embed_fn, "runtime", None)
    if runtime is not None:  # a StagingEngine (or anything with a Runtime)
        name = embedder or DEFAULT
        get = getattr(engine_or_embed_fn, "embedder", None)
        model = get(name) if callable(get) else create_embedder(name, runtime)
        return model.embed_batch, model.name, runtime
    if hasattr(engine_or_embed_fn, "embed_batch"):  # an Embedder
        return engine_or_embed_fn.embed_batch, getattr(engine_or_embed_fn, "name", "?"), None
    if callable(engine_or_embed_fn):  # fn(image, mask) -> vector

        def batch(images, masks):
            pairs = zip(images, masks, strict=True)
            return np.stack([np.asarray(engine_or_embed_fn(i, m)) for i, m in pairs])

        return batch, getattr(engine_or_embed_fn, "__name__", "custom"), None
    raise TypeError(
        "evaluate_retrieval needs a StagingEngine, an Embedder or a function (image, mask) -> "
        f"vector, not {type(engine_or_embed_fn).__name__}"
    )


def evaluate_retrieval(
    engine_or_embed_fn: Any,
    csv_path: str | Path,
    root: str | Path | None = None,
    label: str = "type",
    min_count: int = 10,
    embedder: str | None = None,
    ks: Sequence[int] = KS,
    batch_size: int = 32,
    progress: bool = True,
    masks: str = "backdrop",
) -> dict:
    """Embed every kept image of a labelled CSV (with its product mask) and score retrieval.

    Args:
        engine_or_embed_fn: a :class:`~staging.StagingEngine` (its runtime builds the
            embedder ``embedder``, default :data:`staging.embed.DEFAULT`), an
            :class:`~staging.embed.base.Embedder`, or a function ``(image, mask) -> vector``.
        csv_path: CSV with columns ``image`` (path relative to ``root``) and ``label``.
        root: folder the image paths are relative to (default: the CSV's folder).
        label, min_count: the label column, and the minimum number of images per label.
        embedder: embedder name (engines only).
        masks: the segmentation backend that makes the product masks (``backdrop``).

    Returns a dict with ``P@k``/``R@k``, ``queries``, ``labels``, ``embedder``, ``masks`` (the
    mask source: ``backdrop`` or ``white-threshold``), ``seconds_per_image`` and
    ``images_per_second`` (embedding only, masks and decoding excluded).
    """
    from tqdm import tqdm

    from staging.models import ModelStore
    from staging.runtime import Runtime

    items = read_labelled_csv(csv_path, root, label, min_count)
    embed_batch, name, runtime = _resolve_embedder(engine_or_embed_fn, embedder)
    if runtime is None:
        runtime = Runtime(ModelStore([Path.cwd()]))
    mask_fn, mask_source = _mask_function(runtime, masks)
    parts: list[np.ndarray] = []
    seconds = 0.0
    for start in tqdm(
        range(0, len(items), batch_size), desc=f"embed {name}", unit="batch", disable=not progress
    ):
        chunk = items[start : start + batch_size]
        images = [load_image(path) for path, _ in chunk]
        masks = [mask_fn(img) for img in images]
        t0 = time.perf_counter()
        parts.append(np.asarray(embed_batch(images, masks), dtype=np.float32))
        seconds += time.perf_counter() - t0
    embeddings = np.concatenate(parts)
    labels = [lab for _, lab in items]
    report: dict = {
        "embedder": name,
        "masks": mask_source,
        "label": label,
        "min_count": min_count,
        "labels": len(set(labels)),
    }
    report.update(retrieval_metrics(embeddings, labels, ks))
    report["dim"] = int(embeddings.shape[1])
    report["seconds_per_image"] = seconds / len(items)
    report["images_per_second"] = len(items) / seconds if seconds > 0 else float("inf")
    return report


__all__ = ["KS", "evaluate_retrieval", "read_labelled_csv", "retrieval_metrics"]
