"""A staged result in a designer's words, and its details without the server's paths.

The app, the CLI and the service show the same words: a short :func:`label` under a thumbnail,
and :func:`explain` for the picked result — where the scene came from, why it was chosen (the
fit in words), what the product was taken for, and which models ran. :func:`public_details`
is :meth:`Staged.describe` with every file *named*, never located: a client must not learn the
server's folders.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from staging.result import Staged

MODES = {"copy-paste": "Copy-paste", "vanilla": "Vanilla", "prompt": "Prompt"}


def label(item: Staged) -> str:
    """A thumbnail's caption: the mode and where the picture came from, in a few words."""
    source = item.source
    mode = MODES.get(item.mode, item.mode)
    if item.mode == "copy-paste":
        scene = source.get("title") or source.get("id") or "catalog scene"
        return f"{mode} · {scene} · fit {_percent(item.scores.get('fit'))}"
    placement = (source.get("placement") or {}).get("name")
    what = source.get("theme") if item.mode == "prompt" else source.get("category")
    # "backdrop only (no diffusion model)" without weights: a designer must not take it for one
    return " · ".join(str(bit) for bit in (mode, what, placement, source.get("label")) if bit)


def explain(item: Staged) -> str:
    """Where the result came from, why, what the product was taken for and which models ran:
    a few sentences for the picked result."""
    if item.mode == "copy-paste":
        lines = [_scene_words(item.source), _fit_words(item), product_words(_product(item))]
        if item.scores.get("scale", 0) > 1 and item.source.get("warning"):
            lines.append(
                f"The product photo was enlarged {item.scores['scale']:.1f}× (may look soft)."
            )
    else:
        lines = [_generated_words(item)]
    lines.append(_model_words(item.source))
    return " ".join(line for line in lines if line)


def product_words(product: dict[str, Any]) -> str:
    """What copy-paste took the product for: given, read from the catalog, or unknown."""
    kind, size = product.get("product_type"), product.get("product_size")
    if not kind and not size:
        return "Product kind unknown: give one (Product kind, --type) to place it at its real size."
    said = " ".join(str(v) for v in (kind, size) if v)
    if product.get("inferred_from") == "catalog":
        sure = _percent(product.get("confidence"))
        vote = f"nearest catalog shots, {sure} of the vote; edit it in Product kind"
        return f"Product taken for {said} ({vote})."
    return f"Product as given: {said}."


def public_details(item: Staged) -> dict[str, Any]:
    """:meth:`Staged.describe` for clients: a ``path`` key becomes ``file`` (API clients take
    any ``{"path": ...}`` object for a file to download) and every absolute path, at any depth,
    becomes its file name."""
    info = item.describe()
    info["source"] = {("file" if k == "path" else k): v for k, v in info["source"].items()}
    return _named(info)


def _named(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _named(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_named(v) for v in value]
    if isinstance(value, os.PathLike) or (isinstance(value, str) and os.path.isabs(value)):
        return Path(value).name
    return value


def _scene_words(source: dict[str, Any]) -> str:
    """The scene by its title, else its file (an uploaded room has no title), with its
    category, room type, catalog id and file where they say more than the name."""
    file, title, id = _file(source.get("path")), source.get("title"), source.get("id")
    name = title or file or id or "a catalog scene"
    same = {name, Path(file).stem if file else None}
    bits = [source.get("category"), source.get("room"), id, file]
    known = ", ".join(str(b) for b in dict.fromkeys(bits) if b and b not in same)
    return f"Scene: {name}" + (f" ({known})." if known else ".")


def _fit_words(item: Staged) -> str:
    source, scores = item.source, item.scores
    old = source.get("object_type") or "old object"
    if source.get("placement") == "insert":
        where = f"Stands on free floor in front of the {old}, which is kept"
    else:
        where = f"Stands where the {old} stood (removed and filled in)"
    parts = [
        ("its product looks like yours", scores.get("fit_similarity")),
        ("yours covers the old one", scores.get("fit_coverage")),
        ("fits the frame at real size", scores.get("fit_scale")),
        ("same kind", scores.get("fit_category")),
        ("usual in this room", scores.get("fit_room")),
    ]
    why = ", ".join(f"{name} {_percent(value)}" for name, value in parts if value is not None)
    return f"{where}; fit {_percent(scores.get('fit'))}" + (f" ({why})." if why else ".")


def _generated_words(item: Staged) -> str:
    source = item.source
    placement = source.get("placement") or {}
    size = f"{placement.get('width')}×{placement.get('height')}" if placement else None
    where = f"{placement.get('name')} ({size})" if placement.get("name") else size
    if item.mode == "prompt" and source.get("theme"):
        what = f"Generated scene, theme {source['theme']}"
        if source.get("category"):
            what += f" for {source['category']}"
    else:
        what = "Generated background" + (
            f" for {source['category']}" if source.get("category") else ""
        )
    if source.get("label"):
        what += f" — {source['label']}"
    seed = f", seed {source['seed']}" if "seed" in source else ""
    return f"{what}; {where}{seed}." if where else f"{what}{seed}."


def _model_words(source: dict[str, Any]) -> str:
    segmenter = source.get("segment_backend")
    ran = [
        ("mask", "given" if segmenter == "mask" else segmenter),  # "mask": the caller's own
        ("fill", source.get("inpaint_backend")),
        ("generator", source.get("backend")),
        ("model", _file(source.get("model"))),
    ]
    named = ", ".join(f"{what} {name}" for what, name in ran if name)
    return f"Models: {named}." if named else ""


def _product(item: Staged) -> dict[str, Any]:
    return item.source.get("product") or {}


def _file(value: Any) -> str | None:
    return Path(str(value)).name if value else None


def _percent(value: Any) -> str:
    return "?" if value is None else f"{round(100 * float(value))}%"
