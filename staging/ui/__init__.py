"""The web app (Gradio): a thin skin over :class:`staging.StagingEngine`, one module per tab.

``python app.py`` runs :func:`main`. One :class:`Studio` holds the engine shared by every tab
and request, the app's cache folder (the demo index, the named indexes), the folder of this
process's result files and the lock that builds the demo index once; every handler is one of
its methods and makes one engine (or library) call that also works from Python and the CLI.

* :mod:`~staging.ui.studio` — the Studio tab: every mode in one grid, and acting on a pick;
* :mod:`~staging.ui.mask` — segmentation and brush corrections;
* :mod:`~staging.ui.catalog` — index a folder or uploaded rooms;
* :mod:`~staging.ui.copy_paste` — copy-paste staging, and adjusting a result by hand;
* :mod:`~staging.ui.generated` — the Vanilla and Prompt tabs, and the bandit's suggestion;
* :mod:`~staging.ui.compare` — every result side by side, favourites, exports;
* :mod:`~staging.ui.parallax` — a looping MP4 of the photo or a result;
* :mod:`~staging.ui.plumbing` — readable errors and uploads, progress, a result's words;
* :mod:`~staging.ui.context` — the app's state, the status line, result files, indexes;
* :mod:`~staging.ui.layout` — the page: the tabs in order and the events joining them;
* :mod:`~staging.ui.main` — :class:`Studio`, :func:`create_app`, :func:`main`.

Which server paths and index names a browser may use is :mod:`staging.access`'s rule, and
what a favourite teaches the bandit :mod:`staging.generate.bandit.favourites`'s: the skin
holds no policy. The library never imports this package (Gradio is an optional extra).
"""

from staging.ui.config import DEMO_CATALOG, EXAMPLES, HEAVY, MAX_UPLOAD, PRODUCT_PHOTO
from staging.ui.copy_paste import CLICK_MOVES, CLICK_PICKS
from staging.ui.main import Studio, create_app, launch_options, main
from staging.ui.plumbing import readable_errors, readable_uploads

__all__ = [
    "CLICK_MOVES",
    "CLICK_PICKS",
    "DEMO_CATALOG",
    "EXAMPLES",
    "HEAVY",
    "MAX_UPLOAD",
    "PRODUCT_PHOTO",
    "Studio",
    "create_app",
    "launch_options",
    "main",
    "readable_errors",
    "readable_uploads",
]
