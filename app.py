"""Product Staging Studio — the web app (a thin skin over :class:`staging.StagingEngine`).

Run ``python app.py`` and open http://127.0.0.1:7860. One engine is created at start-up and
shared by every tab and request; each UI action is one engine call that also works from Python
(``engine.segment(...)``) and the CLI (``staging segment ...``). No image logic lives here.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gradio as gr

from staging import StagingEngine, StagingError
from staging.segment import BACKENDS

EXAMPLES = sorted(str(p) for p in (Path(__file__).parent / "examples" / "products").glob("*.*"))
MAX_UPLOAD = os.environ.get("STAGING_MAX_UPLOAD", "25mb")

engine = StagingEngine()


def _status(step: str, backend: str) -> str:
    return f"{step}: backend **{backend}** on **{engine.device}**"


def segment_product(image, backend: str):
    """Product tab: probability map, binary mask and cutout of the uploaded image."""
    if image is None:
        raise gr.Error("Upload a product image first (or pick an example below).")
    try:
        seg = engine.segment(image, backend=backend)
    except StagingError as exc:
        raise gr.Error(str(exc)) from None
    return seg.prob_image, seg.mask_image, seg.cutout, _status("segmentation", seg.backend)


def build_ui() -> gr.Blocks:
    with gr.Blocks(title="Product Staging Studio") as demo:
        gr.Markdown(
            "# Product Staging Studio\n"
            "Upload a catalog photo of a product. Runs offline on the CPU by default; real use "
            "means indexing your own catalog (see the README)."
        )
        with gr.Tab("Product"):
            with gr.Row():
                image = gr.Image(label="Product photo", type="filepath", height=360)
                with gr.Column():
                    backend = gr.Dropdown(
                        ["auto", *BACKENDS],
                        value="auto",
                        label="Segmentation backend",
                        info="auto: weights-free 'catalog' on plain backgrounds, else the best "
                        "pretrained model on disk",
                    )
                    run = gr.Button("Segment", variant="primary")
                    status = gr.Markdown()
            with gr.Row():
                prob = gr.Image(label="Probability", type="pil", format="png")
                mask = gr.Image(label="Mask (threshold 0.5)", type="pil", format="png")
                cutout = gr.Image(label="Cutout", type="pil", format="png")
            if EXAMPLES:
                gr.Examples(EXAMPLES, inputs=image)
            run.click(
                segment_product,
                [image, backend],
                [prob, mask, cutout, status],
                api_name="segment",
                concurrency_limit=2,
            )
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args()
    demo = build_ui()
    demo.queue(default_concurrency_limit=2, max_size=32)
    demo.launch(
        server_name=args.host, server_port=args.port, max_file_size=MAX_UPLOAD, show_error=True
    )


if __name__ == "__main__":
    main()
