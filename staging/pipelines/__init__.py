"""One readable pipeline per staging mode.

Each pipeline is given its components (the product's cut-outs, the catalog query, the scene
store, the inpainter, the generator) by whoever builds it, and its ``__call__`` reads top to
bottom as numbered steps. The engine builds them from its settings and model cache; nothing
here imports the engine.

* :mod:`~staging.pipelines.copy_paste`: the product pasted into the catalog scenes it fits;
* :mod:`~staging.pipelines.in_scene`: into one scene, by hand;
* :mod:`~staging.pipelines.generated`: a generated background (vanilla and prompt);
* :mod:`~staging.pipelines.parallax`: a parallax video of a photo.

Shared pieces: :mod:`~staging.pipelines.cutout` (the product cut out of its photo),
:mod:`~staging.pipelines.scenes` (scene analyses and clean plates) and
:mod:`~staging.pipelines.cache` (byte-bounded memory caches and content keys).
"""
