"""Product Staging Studio — the web app (a thin skin over :class:`staging.StagingEngine`).

Run ``python app.py`` (``--host``, ``--port``) and open http://127.0.0.1:7860. One engine is
created at start-up and shared by every tab and request. Each UI action is one engine (or
library) call that also works from Python and the CLI:

* Studio — ``engine.stage_candidates(image, k, index, mask=...)``, every mode in one grid,
  worded by :mod:`staging.captions`;
* Mask — ``engine.segment(image, backend)``, brush corrections with
  :mod:`staging.segment.edit` (``staging segment``);
* Catalog — ``engine.update_index(out, folder, csv=...)`` (``staging index FOLDER --out DIR``),
  ``engine.index_uploads`` and ``engine.delete_index`` for rooms uploaded from the browser;
* Copy-paste — ``engine.stage_copy_paste(image, index=..., k=..., mask=...)``
  (``staging stage copy-paste``), and ``engine.stage_in_scene`` to adjust a result;
* Vanilla and Prompt — ``engine.stage_vanilla(...)``, ``engine.stage_prompt(...)`` and the
  bandit's ``engine.suggest_prompt(category, context, interests)``
  (``staging stage vanilla|prompt``);
* Compare — ``Staged.save(path)`` as PNG, JPEG or WebP (``--format``);
* Parallax — ``engine.parallax(image, out, mask, seconds=..., motion=..., size=...)``
  (``staging parallax``).

The tabs live in :mod:`staging.ui`, one module each. User errors become readable messages
(``gr.Error``), never tracebacks. Settings come from ``STAGING_*`` variables (see the README);
the app adds ``STAGING_MAX_UPLOAD`` (upload size limit, default 25 MB), ``STAGING_APP_CACHE``
(where the demo index and the named indexes go; default the per-user cache folder),
``STAGING_APP_CONCURRENCY`` (heavy steps run at once, default 1) and
``STAGING_CATALOG_ROOTS`` (the server folders a browser may name).
"""

from staging.ui import (  # noqa: F401 - the app's names, as the README and tests use them
    CLICK_MOVES,
    CLICK_PICKS,
    DEMO_CATALOG,
    EXAMPLES,
    HEAVY,
    MAX_UPLOAD,
    PRODUCT_PHOTO,
    Studio,
    create_app,
    launch_options,
    main,
    readable_errors,
    readable_uploads,
)

if __name__ == "__main__":
    main()
