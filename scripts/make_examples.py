"""Render the example product photos in examples/products/ (made by the project, no licence
strings attached): procedural products composed as studio shots with soft shadows.

    python scripts/make_examples.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from staging.evaluate.synth import compose_catalog_shot, procedural_object
from staging.io import save_image

OUT = Path(__file__).resolve().parents[1] / "examples" / "products"
SHOTS = [
    ("chair", "white", 11),
    ("lamp", "gradient", 12),
    ("plant", "pastel", 13),
    ("box", "sweep", 14),
    ("ring", "grey", 15),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for kind, background, seed in SHOTS:
        rng = np.random.default_rng(seed)
        rgb, alpha = procedural_object(kind, rng, size=384)
        image, _ = compose_catalog_shot(
            rgb, alpha, rng, size=512, style={"background": background, "jpeg": 0}
        )
        path = save_image(OUT / f"{kind}.png", image)
        print(path)


if __name__ == "__main__":
    main()
