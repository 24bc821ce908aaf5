"""Parallax animation (Ku et al. §5.4): a looping video of a photo's product.

1. **the product layer**: a given mask (bool, float alpha or a file) or the segmenter's;
2. **render**: the background behind the product inpainted once, then every frame moves
   the product against it (:func:`staging.animate.parallax`), written as MP4, WebM or GIF.

The pipeline gets its components from whoever builds it (the engine); it never imports the
engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from staging.options import ParallaxOptions, Progress

if TYPE_CHECKING:
    from staging.animate import ParallaxClip
    from staging.inpaint.base import Inpainter


@dataclass(eq=False)
class ParallaxPipeline:
    """Parallax staging (see the module doc).

    Args:
        segment: the product's mask in a photo, by a segmentation backend (None: default).
        inpainter: the loaded inpainting backend of a name (None: ``auto``).
        max_pixels: the pixel limit for a mask file.
    """

    segment: Callable[[np.ndarray, str | None], np.ndarray]
    inpainter: Callable[[str | None], Inpainter]
    max_pixels: int | None

    def __call__(
        self,
        rgb: np.ndarray,
        out: str | os.PathLike,
        mask: Any,
        options: ParallaxOptions,
        progress: Progress | None = None,
    ) -> ParallaxClip:
        """Write a parallax video of the product in ``rgb`` to ``out``.

        The product layer comes from ``mask`` (bool HxW, a float alpha, or a mask file), or
        from its segmentation when none is given; the background behind it is inpainted once
        and reused by every frame. The format follows the extension: ``.mp4`` (H.264,
        yuv420p, faststart), ``.webm`` (VP9) or ``.gif``.

        Args:
            options: (:class:`~staging.options.ParallaxOptions`)

                * ``seconds``, ``fps``: clip length (``round(seconds * fps)`` frames);
                * ``motion``: ``pan``, ``zoom`` or ``orbit``;
                * ``strength``: product shift amplitude, share of the output's short side
                  (None: :data:`staging.animate.DEFAULT_STRENGTH`, 0.04);
                * ``size``: ``"WxH"``, ``1:1``, ``4:5``, ``9:16``, ``16:9`` or None (the
                  photo's aspect, long side at most 1080);
                * ``loop``: one full period (seamless loop) or one sweep;
                * ``fit``: ``cover`` (crop around the product), ``pad`` (blurred background),
                  ``auto``;
                * ``inpaint_backend``: default ``auto``
                  (:meth:`~staging.StagingEngine.resolve_inpaint_backend`);
                * ``segment_backend``: the product's segmenter, when no mask is given.
            progress: called as ``progress(fraction, message)`` while rendering.
        """
        from staging.animate import DEFAULT_STRENGTH
        from staging.animate import parallax as render_parallax
        from staging.io import load_mask

        o = options
        # 1. the product layer
        if mask is None:
            alpha = self.segment(rgb, o.segment_backend)
        else:  # arrays or files; float masks are used as soft alpha
            size_wh = (rgb.shape[1], rgb.shape[0])
            alpha = load_mask(mask, size=size_wh, max_pixels=self.max_pixels)
        # 2. render it against its inpainted background
        return render_parallax(
            rgb,
            out,
            alpha,
            self.inpainter(o.inpaint_backend).inpaint,
            seconds=o.seconds,
            fps=o.fps,
            motion=o.motion,
            strength=DEFAULT_STRENGTH if o.strength is None else o.strength,
            size=o.size,
            loop=o.loop,
            fit=o.fit,
            progress=progress,
        )
