"""Staging into one scene the way the user wants it: copy-paste, by hand.

One call of :class:`InScenePipeline` runs these steps:

1. **cut out** the product (cached: re-rendering a placement does not matte it again);
2. **check** the hand-set values (box, object size, scale, position);
3. **analyse the scene**: the object to replace (the largest, the one at a click, or the one
   inside a catalog box), floor line, shadow and light (cached);
4. **fit** the product as copy-paste would, then **adjust** it where the user moved or
   resized it;
5. **clean plate** when the object is removed (cached per scene and object);
6. **paste** the product, and say where everything came from.

Without the hand-set values the result is what copy-paste made of that scene.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from staging.errors import StagingError
from staging.io import ImageSource
from staging.options import InSceneOptions
from staging.pipelines.cache import settled
from staging.pipelines.copy_paste import feet, staged_result
from staging.pipelines.cutout import Cutouts
from staging.pipelines.scenes import SceneStore
from staging.result import Staged


@dataclass(eq=False)
class InScenePipeline:
    """Stage a product into one given scene (see the module doc).

    Args:
        cut_out: the product's cut-out.
        scenes: the scene store (analyses and clean plates).
        resolve_inpaint: the inpainting backend a name means (``auto`` resolved).
    """

    cut_out: Cutouts
    scenes: SceneStore
    resolve_inpaint: Callable[[str | None], str]

    def __call__(
        self,
        rgb: np.ndarray,
        scene: ImageSource,
        mask: Any,
        scene_mask: Any,
        options: InSceneOptions,
    ) -> Staged:
        """Stage the product photo ``rgb`` into ``scene``, the way ``options`` say.

        Any room photo works as ``scene``: a copy-paste result's ``source["path"]`` (with its
        ``source["mask"]`` as ``scene_mask``) or one of the user's own. Without the hand-set
        options the result is what copy-paste made of that scene. The product's cut-out, the
        scene's analysis and its clean plate are cached, so a call that only moves, resizes
        or re-shadows the product just pastes again (``staging bench restage``).

        Args:
            rgb: the product photo; ``mask``: its mask, as in copy-paste.
            scene: the room photo.
            scene_mask: the scene's objects (a mask file or array); default: the segmenter's.
            options: (:class:`~staging.options.InSceneOptions`) ``shadow``, ``harmonize``,
                ``product_type``, ``product_size``, ``inpaint_backend``, ``segment_backend``,
                ``max_side`` and ``inpaint_side`` as in copy-paste
                (:meth:`CopyPastePipeline.__call__`), and

                * ``object_at``: ``(x, y)`` in the scene (at ``max_side``): the object there
                  (or the nearest one) is the one replaced; default: the largest;
                * ``box``: ``(x0, y0, x1, y1)`` in the scene's own pixels, as a catalog row
                  gives it (a copy-paste result's ``source["box"]``): the object mostly
                  inside it is the one replaced;
                * ``remove``: inpaint that object away (True) or keep it and stand the product
                  in front (False); default: what the fit chose (replace when the product
                  covers most of it at its real size);
                * ``position``: ``(x, y)``: where the product's feet go (the middle of its
                  bottom edge); default: the fit's placement;
                * ``scale``: the product's size, as a multiple of the fit's;
                * ``object_size``: the real size of the scene's object (``160x200 cm``, width
                  first): it calibrates the camera height, so the product gets the size the
                  room implies (see :mod:`staging.compose.scale`);
                * ``object_type``: the scene object's kind (a copy-paste result's
                  ``source["object_type"]``): only one of the product's kind is replaced by
                  default; default the scene parser's name for it, if any.
        """
        from staging.compose.copy_paste import paste_product
        from staging.compose.fit import adjust, place_product
        from staging.compose.scale import SizePriors, width_from_size

        o = options
        # 1. cut out the product
        scene, scene_mask = settled(scene), settled(scene_mask, as_mask=True)
        cutout = self.cut_out(rgb, mask, o.segment_backend)
        # 2. check what was set by hand
        point = None if o.object_at is None else (float(o.object_at[0]), float(o.object_at[1]))
        box = o.box
        if box is not None:
            box = tuple(int(v) for v in box)
            if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
                raise StagingError(f"box must be x0,y0,x1,y1 with x0 < x1, y0 < y1, got {box}.")
        object_width = width_from_size(o.object_size)
        if o.object_size and object_width is None:
            raise StagingError(
                f"object_size {o.object_size!r} is not a length: give the object's real size, "
                "width first (e.g. 160x200 cm)."
            )
        # 3. analyse the scene
        parser = self.scenes.parser_name()
        plate_key = self.scenes.key(scene, scene_mask, o.max_side, point, box, parser)
        analysis, problem = self.scenes.analyse(scene, scene_mask, o.max_side, point, box, parser)
        if analysis is None:
            raise StagingError(
                f"In this scene: {problem}. Give its objects' mask (scene_mask=) to say which "
                "object the product stands in for."
            )
        image = self.scenes.image(scene, o.max_side)
        h, w = image.shape[:2]
        if not 0 < o.scale <= 10:
            raise StagingError(f"scale must be in (0, 10], got {o.scale}.")
        if o.position is not None and not (0 <= o.position[0] <= w and 0 <= o.position[1] <= h):
            raise StagingError(
                f"position {tuple(o.position)} is outside the scene ({w}x{h} at max_side)."
            )
        # 4. fit the product as copy-paste would, then where the user put it
        width = SizePriors().width(o.product_type, o.product_size)
        fit = place_product(
            cutout.alpha, analysis, width[0] if width else None, None, o.product_type,
            o.object_type or analysis.category, object_width,
        )  # fmt: skip
        removed = fit.mode == "replace" if o.remove is None else bool(o.remove)
        alignment = adjust(fit.alignment, cutout.alpha.shape, o.position, o.scale)
        # 5. the clean plate, when the object is removed
        plate, inpaint_name = image, o.inpaint_backend
        if removed:
            inpaint_name = self.resolve_inpaint(o.inpaint_backend)
            plate = self.scenes.clean_plate(
                plate_key, image, analysis, inpaint_name, o.inpaint_side
            )
        # 6. paste, and say where everything came from
        pasted = paste_product(
            plate, analysis, cutout.colour, cutout.alpha, alignment, o.shadow, o.harmonize
        )
        named = isinstance(scene, (str, os.PathLike))
        source = {
            "id": Path(scene).stem if named else None,
            "path": str(scene) if named else None,
            "mask": str(scene_mask) if isinstance(scene_mask, (str, os.PathLike)) else None,
            "segment_backend": cutout.backend,
            "inpaint_backend": inpaint_name if removed else None,
            "placement": "replace" if removed else "insert",
            "object_box": list(analysis.box),
            "feet": feet(alignment),
            "scale": float(o.scale),
        }
        if box is not None:
            source["box"] = list(box)
        if fit.problem is not None:  # placed by the paper's rule, and said why
            source["fit_problem"] = fit.problem
        if object_width is not None and width is not None and fit.camera_height_cm is None:
            source["calibration_problem"] = (
                f"the object's size ({o.object_size}) is not what a level camera in a room sees "
                "at its pixel width (another object, or not its width?): the default camera "
                "height was used"
            )
        return staged_result(pasted, fit, alignment, source, width)
