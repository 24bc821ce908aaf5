"""The app's constants: where its examples and demo catalog are, and its environment settings.

``STAGING_MAX_UPLOAD`` (upload size limit, default 25 MB) and ``STAGING_APP_CONCURRENCY``
(heavy steps at once, default 1) are read when the app is imported; ``STAGING_APP_CACHE``
(where the demo index and the named indexes go) when a :class:`~staging.ui.Studio` is made.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

# The project's root: the examples and the demo catalog sit beside the package (a source tree;
# a wheel has neither, and the app then offers no examples).
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(str(p) for p in (ROOT / "examples" / "products").glob("*.*"))
DEMO_CATALOG = ROOT / "examples" / "catalog"
DEMO_CSV = DEMO_CATALOG / "catalog.csv"
MAX_UPLOAD = os.environ.get("STAGING_MAX_UPLOAD", "25mb")
HEAVY = "heavy"  # concurrency group of the CPU-bound staging/rendering steps
HEAVY_LIMIT = int(os.environ.get("STAGING_APP_CONCURRENCY", "1"))
PRODUCT_PHOTO = "Product photo (with its mask)"  # the Parallax tab's first source
PICK_FIRST = "Pick a result in the grid first."


def default_cache() -> Path:
    """``STAGING_APP_CACHE``, else the per-user cache folder."""
    configured = os.environ.get("STAGING_APP_CACHE")
    return Path(configured or platformdirs.user_cache_dir("product-staging-studio"))
