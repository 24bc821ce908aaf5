"""``staging train inpaint``: EdgeConnect (Nazeri et al. 2019) on a catalog's staged images, with
the weighted boundary loss of seed 000 (§5.3.1) as an option.

What one step does, following the paper's code (knazeri/edge-connect) where it is specific:

* **Data**: a staged image resized so its shorter side is ``size`` and cropped to a random
  ``size``² square (flipped half the time), a fresh free-form hole (Yu et al. 2019) for each
  sample, its grey image and Canny edges (σ = 2). The dataset's stored holes are the
  validation holes: the same for every run and model.
* **Edge model**: the generator draws edges from (grey with a white hole, the edges outside
  the hole, the hole). Its discriminator (PatchGAN on grey + edges) learns real from drawn
  with the non-saturating GAN loss; the generator's loss is the adversarial loss plus 10 × the
  discriminator's feature matching, plus — with ``wbl`` — the weighted boundary loss: the L1
  between drawn and true edges weighted λ_boundary on a band at the hole's edge and
  λ_non-boundary elsewhere (:func:`staging.train.masks.boundary_weights`).
* **Inpainting model**: paints the hole from (the image with a white hole, the true edges
  outside it and the drawn ones inside); its loss is L1 over the image (divided by the hole's
  share, as in the paper's code) plus 0.1 × adversarial. EdgeConnect's perceptual and style
  losses need VGG-19 weights, which this project does not ship: they are left out.

Both models train together from the first step (the paper trains the edge model first, then
the inpainting model on true edges, then on drawn ones; one joint stage is what a CPU budget
allows). On CUDA the forward passes run in fp16 autocast with a gradient scaler.

``out`` is an ``edgeconnect`` model folder (:mod:`staging.inpaint.edgeconnect`) plus
``checkpoint.pt`` (both discriminators, all optimisers, the step): a run stopped at any
moment resumes from the last checkpoint; ``samples/`` gets a sheet of validation fills
(masked input, drawn edges, fill, truth) every ``sample_every`` steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from staging.inpaint.edgeconnect import (
    build_networks,
    canny,
    complete,
    draw_edges,
    paint,
    save_model,
    to_gray,
)
from staging.train.common import (
    adversarial,
    crop,
    finish,
    gan_start,
    load_checkpoint,
    out_of_time,
    read_rgb,
    save_checkpoint,
    step_bar,
    tensor,
)
from staging.train.masks import WBL, boundary_weights, free_form_mask


@dataclass
class InpaintTraining:
    """Options of ``staging train inpaint`` (the paper's values where it gives them)."""

    size: int = 256
    width: int = 64
    blocks: int = 8
    batch: int = 8
    steps: int = 10_000
    minutes: float | None = None  # stop (and save) after this long, whatever ``steps``
    lr: float = 1e-4
    d2g_lr: float = 0.1  # discriminators learn at lr × d2g_lr
    wbl: tuple[float, float] | None = WBL
    sigma: float = 2.0
    validation: int = 4  # records held apart for the sample sheets and the final figures
    sample_every: int = 200
    save_every: int = 200
    seed: int = 0
    device: str = "cpu"


def sample(
    record: dict, size: int, sigma: float, rng: np.random.Generator, hole_index: int | None = None
) -> dict[str, np.ndarray]:
    """One example (float32 arrays at ``size``²): image (H×W×3, [0, 1]), hole, grey, edges.

    Training (``hole_index`` None): a random crop, flipped half the time, with a fresh free-
    form hole, as the paper makes one for each training sample. Validation: the centre crop
    and the record's stored hole ``hole_index``, the same every time."""
    rgb = read_rgb(record["file_name"])
    if hole_index is None:
        (rgb,) = crop([rgb], size, rng)
        hole = free_form_mask(size, size, rng)
    else:
        stored = cv2.imread(record["holes"][hole_index], cv2.IMREAD_GRAYSCALE)
        stored = cv2.resize(stored, rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        rgb, stored = crop([rgb, stored], size, None)
        hole = stored > 127
    image = np.ascontiguousarray(rgb, dtype=np.float32) / 255
    gray = to_gray(image)
    return {
        "image": image,
        "hole": np.ascontiguousarray(hole).astype(np.float32),
        "gray": gray,
        "edges": canny(gray, sigma),
    }


def _batch(examples: list[dict], wbl, device):
    out = {key: tensor([e[key] for e in examples], device)
           for key in ("image", "hole", "gray", "edges")}  # fmt: skip
    if wbl is not None:
        out["wbl"] = tensor([boundary_weights(e["hole"] > 0.5, wbl) for e in examples], device)
    return out


def train_inpaint(
    data: str | Path, out: str | Path, options: InpaintTraining | None = None,
    progress: bool = True, fresh: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Train (or resume) EdgeConnect on the dataset folder ``data`` into the model folder
    ``out``; returns the run's summary (steps, seconds, last losses, validation figures, and
    the ``history`` of this run's L1 and edge losses per step)."""
    import torch
    from torch.nn import functional as F  # noqa: N812 - PyTorch's own convention

    options = options or InpaintTraining()
    out = Path(out)
    device, amp, train, held = gan_start(data, options)
    nets = {k: v.to(device) for k, v in build_networks(options.width, options.blocks).items()}
    betas = (0.0, 0.9)
    optimisers = {
        name: torch.optim.Adam(
            nets[name].parameters(), lr=options.lr * (options.d2g_lr if name.endswith("_d") else 1),
            betas=betas,
        )
        for name in nets
    }  # fmt: skip
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    checkpoint = out / "checkpoint.pt"
    step = load_checkpoint(checkpoint, options, nets, optimisers, scaler, device,
                           ("width", "blocks", "seed"), fresh)  # fmt: skip
    rng = np.random.default_rng([options.seed, step])  # a resumed run draws new examples
    config = {
        "size": options.size, "width": options.width, "blocks": options.blocks,
        "sigma": options.sigma, "wbl": list(options.wbl) if options.wbl else None,
        "dataset": str(Path(data).resolve()), "records": len(train), "seed": options.seed,
    }  # fmt: skip
    held_examples = [sample(r, options.size, options.sigma, rng, hole_index=0) for r in held]

    def save() -> None:
        save_model(out, nets, config | {"steps": step})
        save_checkpoint(checkpoint, step, options, nets, optimisers, scaler)

    losses: dict[str, float] = {}
    history: dict[str, list[float]] = {"l1": [], "edge": []}  # this run's steps
    started = time.monotonic()
    bar = step_bar("inpaint", options, step, progress)
    while step < options.steps:
        if out_of_time(options, started):
            break
        picks = rng.integers(len(train), size=options.batch)
        batch = _batch([sample(train[i], options.size, options.sigma, rng) for i in picks],
                       options.wbl, device)  # fmt: skip
        image, hole, gray, edges = batch["image"], batch["hole"], batch["gray"], batch["edges"]
        for net in nets.values():
            net.train()
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            drawn_edges = draw_edges(nets["edge"], image, hole, edges)
            # The painting learns from the drawn edges but does not train the edge model.
            painted = paint(nets["inpaint"], image, hole, drawn_edges.detach())
        # -- discriminators
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            real_e, _ = nets["edge_d"](torch.cat([gray, edges], 1))
            fake_e, _ = nets["edge_d"](torch.cat([gray, drawn_edges.detach()], 1))
            edge_d_loss = (adversarial(real_e, True) + adversarial(fake_e, False)) / 2
            real_i, _ = nets["inpaint_d"](image)
            fake_i, _ = nets["inpaint_d"](painted.detach())
            inpaint_d_loss = (adversarial(real_i, True) + adversarial(fake_i, False)) / 2
        for name, loss in (("edge_d", edge_d_loss), ("inpaint_d", inpaint_d_loss)):
            optimisers[name].zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimisers[name])
        # -- generators
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            fake_e, fake_features = nets["edge_d"](torch.cat([gray, drawn_edges], 1))
            _, real_features = nets["edge_d"](torch.cat([gray, edges], 1))
            matching = sum(
                F.l1_loss(f.float(), r.detach().float())
                for f, r in zip(fake_features, real_features, strict=True)
            )
            edge_loss = adversarial(fake_e, True) + 10 * matching
            if options.wbl is not None:
                wbl_loss = (batch["wbl"] * (drawn_edges.float() - edges).abs()).mean()
                edge_loss = edge_loss + wbl_loss
                losses["wbl"] = wbl_loss.item()
            fake_i, _ = nets["inpaint_d"](painted)
            l1 = F.l1_loss(painted.float(), image) / hole.mean().clamp(min=1e-3)
            inpaint_loss = l1 + 0.1 * adversarial(fake_i, True)
        for name, loss in (("edge", edge_loss), ("inpaint", inpaint_loss)):
            optimisers[name].zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimisers[name])
        scaler.update()
        step += 1
        losses |= {
            "edge_d": edge_d_loss.item(), "inpaint_d": inpaint_d_loss.item(),
            "edge": edge_loss.item(), "l1": l1.item(), "inpaint": inpaint_loss.item(),
        }  # fmt: skip
        history["l1"].append(losses["l1"])
        history["edge"].append(losses["edge"])
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
        if step % options.save_every == 0:
            save()
        if step % options.sample_every == 0:
            _sample_sheet(nets, held_examples, device, out / "samples" / f"step-{step:07d}.png")
    bar.close()
    save()
    _sample_sheet(nets, held_examples, device, out / "samples" / f"step-{step:07d}.png")
    summary = {"steps": step, "seconds": round(time.monotonic() - started, 1), "losses": losses,
               "validation": validate(nets, held_examples, device, options.wbl or WBL)}  # fmt: skip
    return finish(out, summary, history)


def _fill(nets, examples: list[dict], device) -> tuple[np.ndarray, np.ndarray]:
    """Drawn edges and fills (merged with the known pixels) of ``examples``, as arrays."""
    import torch

    batch = _batch(examples, None, device)
    for name in ("edge", "inpaint"):
        nets[name].eval()
    with torch.inference_mode():
        edges, painted = complete(nets, batch["image"], batch["hole"], batch["edges"])
        merged = painted * batch["hole"] + batch["image"] * (1 - batch["hole"])
    return edges.float().cpu().numpy()[:, 0], merged.float().cpu().numpy().transpose(0, 2, 3, 1)


def validate(nets, examples: list[dict], device, wbl: tuple[float, float]) -> dict[str, float]:
    """On held-apart images: mean absolute error inside the hole (0–255 scale) and the
    boundary-weighted L1 over the whole image (the weighted boundary loss's map)."""
    _, filled = _fill(nets, examples, device)
    hole_l1, weighted = [], []
    for example, fill in zip(examples, filled, strict=True):
        error = np.abs(fill - example["image"]).mean(-1) * 255
        hole = example["hole"] > 0.5
        hole_l1.append(float(error[hole].mean()) if hole.any() else 0.0)
        weighted.append(float((boundary_weights(hole, wbl) * error).mean()))
    return {"hole_l1": round(float(np.mean(hole_l1)), 3),
            "boundary_weighted_l1": round(float(np.mean(weighted)), 3)}  # fmt: skip


def _sample_sheet(nets, examples: list[dict], device, path: Path) -> None:
    """One row per held-apart example: masked input | drawn edges | fill | truth."""
    from staging.io import save_image

    edges, filled = _fill(nets, examples, device)
    rows = []
    for example, edge, fill in zip(examples, edges, filled, strict=True):
        masked = example["image"] * (1 - example["hole"][..., None]) + example["hole"][..., None]
        edge_rgb = np.repeat((1 - edge)[..., None], 3, axis=2)
        rows.append(np.concatenate([masked, edge_rgb, fill, example["image"]], axis=1))
    sheet = np.clip(np.rint(np.concatenate(rows, axis=0) * 255), 0, 255).astype(np.uint8)
    save_image(path, sheet)
