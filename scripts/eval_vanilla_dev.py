"""Vanilla staging of held-apart rooms, for `staging eval realism` (BENCHMARKS.md, issue 18).

Each record of a `staging dataset` folder gives its product on white to pix2pix (a model folder
from `staging train pix2pix`) and to the weights-free studio backdrop, at the room's own layout
(512 px wide); the product is cut back on top. Writes OUT/real, OUT/pix2pix and OUT/studio:

    python scripts/eval_vanilla_dev.py DATASET PIX2PIX_MODEL OUT
    staging eval realism --real OUT/real --generated OUT/pix2pix --json
"""

import sys
from pathlib import Path

import cv2
import numpy as np

from staging.generate.base import GenerationRequest
from staging.generate.pix2pix import Pix2PixGenerator
from staging.generate.studio import StudioGenerator
from staging.io import load_image, save_image
from staging.train.dataset import read_metadata


def main(dataset: str, model: str, out: str, width: int = 512) -> None:
    folder = Path(out)
    generators = {"pix2pix": Pix2PixGenerator(model), "studio": StudioGenerator()}
    for record in read_metadata(dataset):
        target, source = load_image(record["file_name"]), load_image(record["input"])
        alpha = load_image(record["mask"])[..., 0].astype(np.float32) / 255
        size = (width, round(target.shape[0] * width / target.shape[1]))
        target, source, alpha = (cv2.resize(a, size, interpolation=cv2.INTER_AREA)
                                 for a in (target, source, alpha))  # fmt: skip
        save_image(folder / "real" / f"{record['id']}.png", target)
        for name, generator in generators.items():
            frame = generator.generate(GenerationRequest(image=source, alpha=alpha, seed=0))
            a = alpha[..., None]
            staged = np.clip(frame * (1 - a) + source * a, 0, 255).astype(np.uint8)
            save_image(folder / name / f"{record['id']}.png", staged)


if __name__ == "__main__":
    main(*sys.argv[1:4])
