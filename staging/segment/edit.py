"""Correcting a product mask by hand: brush strokes in, a corrected segmentation out.

Automatic masks are sometimes wrong (a shadow kept, a thin leg lost). The app lets people
paint over the photo with two brushes — one colour adds to the product, the other removes —
and every staging mode then uses the corrected mask. The logic lives here so that it is the
same from Python, the CLI or any other UI:

>>> add, remove = strokes_to_edits(layers, size=(width, height))   # painted RGBA layers
>>> seg = edit_segmentation(engine.segment("chair.jpg"), add=add, remove=remove)
>>> seg.mask, seg.cutout                                            # corrected

Edits are hard: painted pixels become fully product (alpha 1) or fully background (alpha 0);
the soft alpha of the automatic mask is kept everywhere else, so untouched edges stay soft.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from staging.segment.base import Segmentation

ADD_COLOUR = "#22c55e"
"""Brush colour that adds to the product (green)."""
REMOVE_COLOUR = "#ef4444"
"""Brush colour that removes from the product (red)."""


def _rgb(hex_colour: str) -> np.ndarray:
    value = hex_colour.lstrip("#")
    return np.array([int(value[i : i + 2], 16) for i in (0, 2, 4)], np.float32)


def strokes_to_edits(
    layers: Iterable[np.ndarray] | np.ndarray,
    size: tuple[int, int] | None = None,
    add_colour: str = ADD_COLOUR,
    remove_colour: str = REMOVE_COLOUR,
    min_alpha: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """``(add, remove)`` bool masks from painted layers.

    Args:
        layers: RGBA arrays (``H, W, 4``; uint8 or float in [0, 1]) of brush strokes on a
            transparent layer, as an image editor exports them; several layers are merged
            (later ones win where they overlap). RGB arrays count every non-black pixel as
            painted.
        size: ``(width, height)`` of the mask to edit; layers of another size (an editor's
            canvas) are resized to it.
        add_colour, remove_colour: the two brush colours; each painted pixel goes to the
            nearer one.
        min_alpha: painted pixels are those with at least this opacity.
    """
    if isinstance(layers, np.ndarray):
        layers = [layers]
    add = remove = None
    target_add, target_remove = _rgb(add_colour), _rgb(remove_colour)
    for layer in layers:
        if layer is None:
            continue
        arr = np.asarray(layer)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ValueError(f"a stroke layer must be HxWx3 or HxWx4, not shape {arr.shape}")
        arr = arr.astype(np.float32)
        if np.issubdtype(np.asarray(layer).dtype, np.integer):
            arr = arr / 255.0
        if size is not None and (arr.shape[1], arr.shape[0]) != tuple(size):
            arr = cv2.resize(arr, tuple(int(v) for v in size), interpolation=cv2.INTER_NEAREST)
        rgb = arr[..., :3] * 255.0
        painted = arr[..., 3] >= min_alpha if arr.shape[2] == 4 else rgb.max(axis=2) > 8
        d_add = np.linalg.norm(rgb - target_add, axis=2)
        d_remove = np.linalg.norm(rgb - target_remove, axis=2)
        layer_add = painted & (d_add <= d_remove)
        layer_remove = painted & ~layer_add
        if add is None:
            add, remove = layer_add, layer_remove
        else:
            add = (add & ~layer_remove) | layer_add
            remove = (remove & ~layer_add) | layer_remove
    if add is None:
        if size is None:
            raise ValueError("no stroke layers and no size: cannot make empty edits")
        width, height = (int(v) for v in size)
        empty = np.zeros((height, width), bool)
        return empty, empty.copy()
    return add, remove


def apply_edits(
    prob: np.ndarray, add: np.ndarray | None = None, remove: np.ndarray | None = None
) -> np.ndarray:
    """``prob`` (float32 HxW in [0, 1]) with ``add`` set to 1 and ``remove`` set to 0.

    Where both are set, ``remove`` wins (erasing is the safer reading of a double stroke).
    """
    out = np.clip(np.asarray(prob, np.float32), 0.0, 1.0).copy()
    for edit, value in ((add, 1.0), (remove, 0.0)):
        if edit is None:
            continue
        edit = np.asarray(edit, bool)
        if edit.shape != out.shape:
            raise ValueError(f"edit mask {edit.shape} does not match the mask {out.shape}")
        out[edit] = value
    return out


def edit_segmentation(
    seg: Segmentation, add: np.ndarray | None = None, remove: np.ndarray | None = None
) -> Segmentation:
    """A copy of ``seg`` with the edits applied to its probability map.

    The mask, cutout and exports of the result all follow the correction. The backend name
    gets ``+edit`` appended when anything was painted, so results record that a person
    changed the mask.
    """
    prob = apply_edits(seg.prob, add, remove)
    touched = (add is not None and np.any(add)) or (remove is not None and np.any(remove))
    backend = seg.backend
    if touched and not backend.endswith("+edit"):
        backend = f"{backend}+edit"
    return Segmentation(
        image=seg.image,
        prob=prob,
        backend=backend,
        threshold=seg.threshold,
        background_estimate=seg.background_estimate,
    )


def mask_overlay(
    image: np.ndarray,
    mask: np.ndarray,
    colour: tuple[int, int, int] = (80, 110, 255),
    opacity: float = 0.45,
) -> np.ndarray:
    """The photo with the background (``~mask``) tinted, so a brush can be aimed at errors.

    Returns an RGB uint8 array of the image's size; the product itself stays as shot.
    """
    rgb = np.asarray(image, np.float32)
    m = np.asarray(mask).astype(np.float32)
    if m.shape != rgb.shape[:2]:
        raise ValueError(f"mask {m.shape} does not match the image {rgb.shape[:2]}")
    if m.max() > 1.0:
        m = m / 255.0
    tint = (1.0 - m)[..., None] * opacity
    out = rgb * (1.0 - tint) + np.asarray(colour, np.float32) * tint
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
