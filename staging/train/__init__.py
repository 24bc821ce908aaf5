"""Training the seeds' models on an advertiser's own catalog.

* :mod:`.dataset` — ``staging dataset``: training records from staged catalog images (the
  product's mask, the product on white, the staged image, a caption, free-form holes);
* :mod:`.masks` — free-form hole masks (Yu et al. 2019) and the weighted boundary loss's
  weight map (Ku et al. 2023, §5.3.1);
* :mod:`.edgeconnect` — ``staging train inpaint``: EdgeConnect (Nazeri et al. 2019) with the
  weighted boundary loss.

Nothing here imports the engine: the engine hands the dataset builder its segmenter and
captioner, and the trained models load through the ``edgeconnect`` inpainting backend.
"""
