"""``staging bench parallax``: frames per second of the parallax renderer, alone and with the
H.264 encoder, on a synthetic square scene (a textured room-like background and a product
blob covering about a sixth of it).

Reported per size: the one-off preparation (fit + inpainting + sprite, seconds), render-only
frames per second, and render + encode (MP4, the default preset) frames per second, end to
end through the pipe to ffmpeg (which encodes in parallel in its own process).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from staging.animate import prepare, write_video
from staging.inpaint.base import Inpainter


def synthetic_scene(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A ``size``-square textured scene with a red product blob, and the blob's mask."""
    rng = np.random.default_rng(seed)
    low = rng.integers(60, 200, (max(2, size // 16), max(2, size // 16), 3), dtype=np.uint8)
    scene = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    scene[size * 2 // 3 :] = (scene[size * 2 // 3 :] * 0.7).astype(np.uint8)  # a "floor"
    mask = np.zeros((size, size), np.uint8)
    cv2.ellipse(mask, (size // 2, size * 3 // 5), (size // 7, size // 5), 0, 0, 360, 1, -1)
    image = scene.copy()
    image[mask.astype(bool)] = (200, 40, 35)
    return image, mask.astype(bool)


def bench_parallax(
    inpainter: Inpainter,
    sizes: tuple[int, ...] = (720, 1080),
    seconds: float = 3.0,
    fps: float = 30.0,
    motion: str = "orbit",
) -> dict:
    """Preparation seconds and render / render+encode frames per second per square size
    (``render_encode_fps`` includes starting ffmpeg and finishing the file)."""
    frames = round(seconds * fps)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            image, mask = synthetic_scene(size)
            t0 = time.perf_counter()
            renderer = prepare(image, mask, inpainter.inpaint, motion, size=(size, size))
            prep = time.perf_counter() - t0
            renderer.frame(0.0)  # warm-up
            t0 = time.perf_counter()
            for _ in renderer.frames(frames):
                pass
            render = time.perf_counter() - t0
            out = Path(tmp) / f"bench_{size}.mp4"
            t0 = time.perf_counter()
            write_video(out, renderer.frames(frames), fps, renderer.layers.size)
            total = time.perf_counter() - t0
            results[f"{size}x{size}"] = {
                "prepare_s": round(prep, 3),
                "render_fps": round(frames / render, 1),
                "render_encode_fps": round(frames / max(total, 1e-9), 1),
                "file_kib": round(out.stat().st_size / 1024, 1),
            }
    return {
        "motion": motion,
        "frames": frames,
        "cpus": os.cpu_count(),
        "inpainter": inpainter.name,
        "sizes": results,
    }
