"""Product Staging Studio: catalog photos in, staged ad images and parallax videos out.

Conventions shared by every module (validated once, at the edge, by :mod:`staging.io`):

* an **image** is an RGB ``uint8`` numpy array of shape ``(H, W, 3)``;
* a **mask** is a ``bool`` array ``(H, W)``; a **probability** or **alpha** map is ``float32``
  ``(H, W)`` in ``[0, 1]``;
* PIL images appear only where a file format needs one (RGBA cutouts, exports).

The :class:`StagingEngine` owns settings and models; everything else is plain functions and
small backend classes chosen by name.
"""

from staging.engine import StagingEngine
from staging.errors import ImageLoadError, ModelNotAvailableError, StagingError
from staging.io import load_image
from staging.result import Candidates, Staged
from staging.segment.base import Segmentation
from staging.settings import Settings

__all__ = [
    "ImageLoadError",
    "ModelNotAvailableError",
    "Segmentation",
    "Settings",
    "Staged",
    "Candidates",
    "StagingEngine",
    "StagingError",
    "load_image",
]
__version__ = "0.1.0"
