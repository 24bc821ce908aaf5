"""``staging eval copy-paste``: stage a list of products into a folder of scenes, look, measure.

The scenes are indexed (``OUT/index``), every product is staged into its ``k`` best scenes,
and everything a reviewer needs is written under ``OUT``:

* ``results/<product>_<rank>.jpg``: every staged image;
* ``sheet_<n>.png``: contact sheets, one row per product (input, then its results, each
  captioned with the scene and fit), so a person can count the usable results;
* ``report.json``: per product the scenes, fit parts and failures; the realism figures of
  the results against ``reference`` (real rooms the index never saw), beside two anchors
  computed the same way: real rooms against real rooms (half the reference against the other
  half) and the same products pasted naively (the white-background shot dropped into the
  centre of the scene, a quarter of its width). Retrieval picks some scenes for many products,
  and a set of few distinct rooms is far from the reference whatever is pasted into it, so two
  more anchors use exactly the results' scenes: those scenes untouched (the best any paste into
  them can score), the naive paste into them, and the same product pixels at the same place
  (each result's own product layer over its untouched scene: nothing removed, no shadow, no
  fill), which every step copy-paste adds around the paste must beat.

With ``bare`` the products' ``type`` and ``size`` are withheld, as a designer's upload has
none: copy-paste reads them from the catalog, and the report says how often the kind it read
is the CSV's (``kind_inference``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from staging.batch import read_products
from staging.compose.fit import same_kind
from staging.errors import StagingError
from staging.evaluate.realism import FeatureFn, realism
from staging.io import list_images, load_image, save_image

THUMB = 256


def _thumb(rgb: np.ndarray, caption: str = "") -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = THUMB / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))))
    tile = np.full((THUMB + 18, THUMB, 3), 255, np.uint8)
    y, x = (THUMB - small.shape[0]) // 2, (THUMB - small.shape[1]) // 2
    tile[y : y + small.shape[0], x : x + small.shape[1]] = small
    cv2.putText(tile, caption[:40], (3, THUMB + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1)
    return tile


def contact_sheets(rows: list[list[np.ndarray]], out: Path, per_sheet: int = 6) -> list[Path]:
    """Write rows of thumbnails as sheets of ``per_sheet`` rows; returns the files."""
    paths = []
    width = max(len(r) for r in rows) * THUMB
    for start in range(0, len(rows), per_sheet):
        lines = []
        for tiles in rows[start : start + per_sheet]:
            line = np.full((THUMB + 18, width, 3), 255, np.uint8)
            line[:, : len(tiles) * THUMB] = np.concatenate(tiles, axis=1)
            lines.append(line)
        paths.append(save_image(out / f"sheet_{start // per_sheet + 1}.png", np.vstack(lines)))
    return paths


def naive_paste(product: np.ndarray, scene: np.ndarray) -> np.ndarray:
    """The anchor: the product shot, background and all, a quarter of the scene's width,
    bottom-centre on the lower third of the scene."""
    h, w = scene.shape[:2]
    ph, pw = product.shape[:2]
    scale = 0.25 * w / pw
    small = cv2.resize(product, (max(1, round(pw * scale)), max(1, round(ph * scale))))
    sh, sw = small.shape[:2]
    y1 = min(h, int(0.9 * h))
    y0, x0 = max(0, y1 - sh), (w - sw) // 2
    out = scene.copy()
    out[y0:y1, x0 : x0 + sw] = small[sh - (y1 - y0) :]
    return out


def evaluate_copy_paste(
    engine,
    products: Path,
    scenes: Path,
    reference: Path,
    out: Path,
    features: FeatureFn,
    k: int = 3,
    limit: int = 0,
    progress: bool = True,
    bare: bool = False,
    csv: Path | None = None,
    **stage_options,
) -> dict:
    """Stage every product of ``products`` into the indexed ``scenes``; see the module doc."""

    out = Path(out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    rows = read_products(Path(products))[: limit or None]  # staging batch's reader
    index = out / "index"
    engine.update_index(index, scenes, csv=csv, progress=progress)
    generated, naive, sheet_rows, per_product = [], [], [], []
    untouched, naive_same = [], []  # the results' own scenes, as they are / pasted naively
    same_place = []  # the results' product layer over their untouched scenes
    kinds_right = kinds_read = 0
    scene_files = [hit.path for hit in engine.index(index).staged_items()]  # no product shots
    started = time.perf_counter()
    for i, row in enumerate(tqdm(rows, desc="staging", disable=not progress)):
        rgb = load_image(row.image)
        tiles = [_thumb(rgb, f"{row.id} {row.type or ''}")]
        entry: dict = {"id": row.id, "type": row.type or "", "results": []}
        try:
            results = engine.stage_copy_paste(
                rgb,
                k=k,
                index=index,
                product_type=None if bare else row.type,
                product_size=None if bare else row.size,
                **stage_options,
            )
        except StagingError as exc:
            entry["error"] = str(exc)
            tiles.append(_thumb(np.full((64, 64, 3), 230, np.uint8), "no result"))
            results = []
        for rank, result in enumerate(results, 1):
            name = f"{row.id}_{rank}.jpg"
            result.save(out / "results" / name)
            generated.append(result.image)
            h, w = result.image.shape[:2]
            own = cv2.resize(
                load_image(result.source["path"]), (w, h), interpolation=cv2.INTER_AREA
            )
            untouched.append(own)
            naive_same.append(naive_paste(rgb, own))
            alpha = result.alpha[..., None]
            same_place.append(np.round(alpha * result.image + (1 - alpha) * own).astype(np.uint8))
            fit = result.scores.get("fit")
            scene_name = Path(result.source["path"]).stem[-24:]
            caption = f"{scene_name} fit {fit:.2f}" if fit is not None else scene_name
            tiles.append(_thumb(result.image, caption))
            entry["results"].append(
                {"file": name, "scene": result.source["path"]}
                | {k: result.source.get(k) for k in ("placement", "object_type", "room")}
                | result.scores
            )
        if results:
            entry["product"] = results[0].source.get("product")
            read = (entry["product"] or {}).get("product_type")
            if bare and row.type and read:
                kinds_read += 1
                kinds_right += same_kind(read, row.type) == 1.0
        if scene_files:
            naive.append(naive_paste(rgb, load_image(scene_files[i % len(scene_files)])))
        sheet_rows.append(tiles)
        per_product.append(entry)
    seconds = time.perf_counter() - started
    real = [load_image(p) for p in list_images(reference)]
    report: dict = {
        "products": len(rows),
        "with_results": sum(1 for e in per_product if e["results"]),
        "results": len(generated),
        "seconds_per_result": round(seconds / max(1, len(generated)), 2),
        "scene_parser": engine.scene_parser_name(),  # what the figures were made with
        "sheets": [str(p) for p in contact_sheets(sheet_rows, out)],
    }
    if len(generated) >= 2:
        report["realism"] = realism(real, generated, features)
    if len(naive) >= 2:
        report["realism_naive_paste"] = realism(real, naive, features)
    if len(untouched) >= 2:
        report["realism_same_scenes_untouched"] = realism(real, untouched, features)
        report["realism_same_scenes_naive_paste"] = realism(real, naive_same, features)
        report["realism_same_place_naive_paste"] = realism(real, same_place, features)
    if bare:
        typed = sum(1 for row in rows if row.type)
        report["kind_inference"] = {"right": kinds_right, "read": kinds_read, "typed": typed}
    if len(real) >= 8:
        report["realism_real_vs_real"] = realism(real[::2], real[1::2], features)
    (out / "report.json").write_text(
        json.dumps(report | {"per_product": per_product}, indent=2, default=float)
    )
    return report
