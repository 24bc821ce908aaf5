"""``staging eval segment`` and ``staging bench segment``.

Quality is measured on real labelled folders (image and mask share a file stem); speed on
synthetic studio shots at fixed sizes so runs are comparable across machines and dates.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from staging.errors import ModelNotAvailableError, StagingError
from staging.evaluate.metrics import segmentation_metrics
from staging.io import list_images, load_mask
from staging.segment.base import Segmenter

METRICS = ("iou", "mae", "fbeta", "boundary_f")


def pair_images_and_masks(images: Path, masks: Path) -> list[tuple[Path, Path]]:
    """Images with a mask of the same stem (any image extension)."""
    by_stem = {p.stem: p for p in list_images(masks)}
    pairs = [(img, by_stem[img.stem]) for img in list_images(images) if img.stem in by_stem]
    if not pairs:
        raise StagingError(f"No image in {images} has a mask with the same name in {masks}.")
    return pairs


def evaluate_segmentation(
    engine,
    images: Path,
    masks: Path,
    backend: str | None = None,
    limit: int = 0,
    compare_plain: bool = False,
    progress: bool = True,
) -> dict:
    """Mean metrics over a labelled folder, plus per-image rows and seconds per image.

    With ``compare_plain`` every image also goes through :func:`plain_segmenter` of the same
    file (the network alone, as a first try with ONNX Runtime would run it), so the report
    shows whether what the product adds around the network helps: both IoUs per image, both
    means, how many images each wins, and the 10 images where the product loses most.
    """
    pairs = pair_images_and_masks(Path(images), Path(masks))
    if limit:
        pairs = pairs[:limit]
    rows = []
    seconds = plain_seconds = 0.0
    used: set[str] = set()
    plain_models: dict[str, Segmenter] = {}
    for image_path, mask_path in tqdm(pairs, desc="eval segment", unit="img", disable=not progress):
        rgb = engine.load_image(image_path)
        gt = load_mask(mask_path, size=(rgb.shape[1], rgb.shape[0]))
        start = time.perf_counter()
        seg = engine.segment(rgb, backend=backend)
        seconds += time.perf_counter() - start
        used.add(seg.backend)
        row = {"image": image_path.name, **segmentation_metrics(seg.prob, gt)}
        if compare_plain:
            if seg.backend not in plain_models:
                plain_models[seg.backend] = plain_segmenter(engine, seg.backend)
            start = time.perf_counter()
            prob = plain_models[seg.backend].predict(rgb)
            plain_seconds += time.perf_counter() - start
            for key, value in segmentation_metrics(prob, gt).items():
                row[f"plain_{key}"] = value
        rows.append(row)
    report: dict = {"backend": ",".join(sorted(used)), "images": len(rows)}
    for metric in METRICS:
        report[metric] = float(np.mean([r[metric] for r in rows]))
    report["seconds_per_image"] = seconds / len(rows)
    report["worst"] = {r["image"]: round(r["iou"], 4) for r in sorted(rows, key=_iou)[:5]}
    if compare_plain:
        for metric in METRICS:
            report[f"plain_{metric}"] = float(np.mean([r[f"plain_{metric}"] for r in rows]))
        report["plain_seconds_per_image"] = plain_seconds / len(rows)
        gains = [r["iou"] - r["plain_iou"] for r in rows]
        report["better_than_plain"] = sum(g > 1e-4 for g in gains)
        report["worse_than_plain"] = sum(g < -1e-4 for g in gains)
        report["worst_vs_plain"] = {
            r["image"]: f"{r['iou']:.4f} vs plain {r['plain_iou']:.4f}"
            for r in sorted(rows, key=_loss_to_plain)[:10]
        }
    report["per_image"] = rows
    return report


def _iou(row: dict) -> float:
    return row["iou"]


def _loss_to_plain(row: dict) -> float:
    return row["iou"] - row["plain_iou"]


def plain_segmenter(engine, name: str) -> Segmenter:
    """The network behind backend ``name`` with nothing around it: its file in a default ONNX
    Runtime session, the whole photo resized to the net's input (bilinear) and the map resized
    back, no margin, no refinement, no working size. The baseline every added step must beat.
    """
    from staging.segment import ISNET_NORMALIZATION
    from staging.segment.isnet import IsNetSegmenter
    from staging.segment.u2net import U2NetSegmenter

    if name not in ISNET_NORMALIZATION and name not in ("u2net", "u2netp"):
        raise StagingError(
            f"--compare-plain needs a pretrained ONNX backend (IS-Net or U^2-Net); {name!r} "
            "has no plain network session to compare with."
        )
    session = _plain_session(engine, name)
    if name in ISNET_NORMALIZATION:
        return IsNetSegmenter(session, name, ISNET_NORMALIZATION[name], refine="none", pad=0.0)
    return U2NetSegmenter(session, name)


def bench_segmentation(
    engine, backends: list[str] | None, sizes: list[int], repeat: int = 10
) -> dict:
    """Median latency in ms per backend and square size (one warm-up run first).

    Times the backend's ``predict`` (the mask cache is not consulted). For IS-Net it also
    times a plain ONNX Runtime session on the same file (default options, the ``output``
    tensor only), interleaved run by run with ours, so the ratio is fair on a noisy machine.
    """
    from staging.evaluate.synth import compose_catalog_shot, procedural_object
    from staging.segment import BACKENDS, ISNET_NORMALIZATION

    if backends is None:
        backends = [b for b in BACKENDS if b == "backdrop" or engine.store.find(b) is not None]
    rng = np.random.default_rng(0)
    kinds = ("chair", "lamp", "plant", "box", "grey", "ring")
    report: dict = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "device": engine.device,
        "images": "distinct synthetic studio shots per run (no result caching can help)",
    }
    shots = {
        size: [
            compose_catalog_shot(*procedural_object(kinds[i % len(kinds)], rng), rng, size=size)[0]
            for i in range(repeat + 1)
        ]
        for size in sizes
    }
    for name in backends:
        try:
            engine.segmenter(name)
        except ModelNotAvailableError:
            report[name] = "weights not present"
            continue
        segmenter = engine.segmenter(name)
        plain = _plain_session(engine, name) if name in ISNET_NORMALIZATION else None
        timings = {}
        for size in sizes:
            segmenter.predict(shots[size][0])  # warm-up (lazy init, caches)
            runs, net_runs, plain_runs = [], [], []
            for shot in shots[size][1:]:
                start = time.perf_counter()
                segmenter.predict(shot)
                runs.append(time.perf_counter() - start)
                if plain is not None:
                    x = segmenter.preprocess(shot)
                    start = time.perf_counter()
                    segmenter.session.run([segmenter.output_name], {segmenter.input_name: x})
                    net_runs.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    plain.run([segmenter.output_name], {plain.get_inputs()[0].name: x})
                    plain_runs.append(time.perf_counter() - start)
            timings[f"{size}px_ms"] = 1000 * float(np.median(runs))
            if plain is not None:
                timings[f"{size}px_net_ms"] = 1000 * float(np.median(net_runs))
                timings[f"{size}px_plain_onnxruntime_ms"] = 1000 * float(np.median(plain_runs))
                timings[f"{size}px_net_speedup"] = float(np.median(plain_runs)) / float(
                    np.median(net_runs)
                )
                # All of our backend (staged test, margin when unsure, refinement) over the
                # plain session's network run, measured in the same loop: a ratio survives a
                # noisy machine where seconds do not.
                timings[f"{size}px_vs_plain"] = float(np.median(runs)) / float(
                    np.median(plain_runs)
                )
        report[name] = timings
    return report


def bench_big_photos(engine, sizes: list[int], backend: str | None = None) -> dict:
    """Seconds for what the Product tab does with a big photo: ``engine.segment`` (a fresh
    image, so no cached map) and the full-size cut-out, once per square size (synthetic studio
    shots enlarged to the size: the pixel count is what costs). The backend's load is not
    timed."""
    from staging.evaluate.synth import compose_catalog_shot, procedural_object

    rng = np.random.default_rng(1)
    report: dict = {}
    for size in sizes:
        shot = compose_catalog_shot(*procedural_object("chair", rng), rng, size=1024)[0]
        photo = cv2.resize(shot, (size, size), interpolation=cv2.INTER_CUBIC)
        photo[0, 0] = rng.integers(0, 256, 3)  # a new image each run: never a cache hit
        engine.segmenter(engine.resolve_segment_backend(photo, backend))  # load, untimed
        start = time.perf_counter()
        seg = engine.segment(photo, backend)
        segmented = time.perf_counter() - start
        _ = seg.cutout
        report[f"{size}px"] = {
            "backend": seg.backend,
            "segment_s": round(segmented, 2),
            "cutout_s": round(time.perf_counter() - start - segmented, 2),
        }
    return report


def _plain_session(engine, name: str):
    """What a first try looks like: the model file in a default ONNX Runtime session."""
    import onnxruntime as ort

    return ort.InferenceSession(str(engine.store.path(name)), providers=["CPUExecutionProvider"])
