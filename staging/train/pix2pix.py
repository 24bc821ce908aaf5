"""``staging train pix2pix``: the paper's vanilla-staging baseline (seed 000 §5.2) on the dataset's
pairs, *product on white → staged image* (Isola et al. 2017).

One step: a batch of random ``size``² crops (the same square of input and target, flipped half
the time); the PatchGAN learns real (input, target) pairs from (input, generated) ones with the
non-saturating GAN loss; the U-Net's loss is the adversarial loss plus λ_L1 = 100 × the L1 to
the target, Adam at 2e-4 with β = (0.5, 0.999): pix2pix's defaults. fp16 autocast on CUDA.

``out`` is a ``pix2pix`` model folder (:mod:`staging.generate.pix2pix`) plus
``checkpoint.pt``: a stopped run resumes from the last checkpoint; ``samples/`` gets a sheet
(input | generated | staged) of held-apart pairs every ``sample_every`` steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from staging.generate.pix2pix import build_discriminator, build_generator, save_model
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


@dataclass
class Pix2PixTraining:
    """Options of ``staging train pix2pix`` (pix2pix's defaults where it has them)."""

    size: int = 256
    width: int = 64
    batch: int = 1
    steps: int = 10_000
    minutes: float | None = None
    lr: float = 2e-4
    l1_weight: float = 100.0
    validation: int = 4
    sample_every: int = 200
    save_every: int = 200
    seed: int = 0
    device: str = "cpu"


def _pair(record: dict, size: int, rng: np.random.Generator | None) -> tuple[np.ndarray, ...]:
    """(input, target) crops in [-1, 1], H×W×3 float32."""
    source, target = crop([read_rgb(record["input"]), read_rgb(record["file_name"])], size, rng)
    return tuple(a.astype(np.float32) / 127.5 - 1 for a in (source, target))


def train_pix2pix(
    data: str | Path, out: str | Path, options: Pix2PixTraining | None = None,
    progress: bool = True, fresh: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Train (or resume) pix2pix on the dataset folder ``data`` into the model folder ``out``;
    returns the summary (steps, seconds, last losses, held-apart L1, this run's ``history``)."""
    import torch
    from torch.nn import functional as F  # noqa: N812 - PyTorch's own convention

    options = options or Pix2PixTraining()
    out = Path(out)
    device, amp, train, held = gan_start(data, options)
    nets = {"generator": build_generator(options.width).to(device),
            "discriminator": build_discriminator(options.width).to(device)}  # fmt: skip
    optimisers = {k: torch.optim.Adam(v.parameters(), lr=options.lr, betas=(0.5, 0.999))
                  for k, v in nets.items()}  # fmt: skip
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    checkpoint = out / "checkpoint.pt"
    step = load_checkpoint(
        checkpoint, options, nets, optimisers, scaler, device, ("width", "seed"), fresh
    )
    rng = np.random.default_rng([options.seed, step])
    config = {"size": options.size, "width": options.width,
              "dataset": str(Path(data).resolve()), "records": len(train),
              "seed": options.seed}  # fmt: skip
    held_pairs = [_pair(r, options.size, None) for r in held]

    def save() -> None:
        save_model(out, nets["generator"], config | {"steps": step})
        save_checkpoint(checkpoint, step, options, nets, optimisers, scaler)

    losses: dict[str, float] = {}
    history: dict[str, list[float]] = {"l1": []}
    started = time.monotonic()
    bar = step_bar("pix2pix", options, step, progress)
    generator, discriminator = nets["generator"], nets["discriminator"]
    while step < options.steps:
        if out_of_time(options, started):
            break
        picks = rng.integers(len(train), size=options.batch)
        pairs = [_pair(train[i], options.size, rng) for i in picks]
        source = tensor([p[0] for p in pairs], device)
        target = tensor([p[1] for p in pairs], device)
        generator.train()
        discriminator.train()
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            fake = generator(source)
            real_logits = discriminator(torch.cat([source, target], 1))
            fake_logits = discriminator(torch.cat([source, fake.detach()], 1))
            d_loss = (adversarial(real_logits, True) + adversarial(fake_logits, False)) / 2
        optimisers["discriminator"].zero_grad(set_to_none=True)
        scaler.scale(d_loss).backward()
        scaler.step(optimisers["discriminator"])
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            l1 = F.l1_loss(fake.float(), target)
            g_loss = adversarial(discriminator(torch.cat([source, fake], 1)), True)
            g_loss = g_loss + options.l1_weight * l1
        optimisers["generator"].zero_grad(set_to_none=True)
        scaler.scale(g_loss).backward()
        scaler.step(optimisers["generator"])
        scaler.update()
        step += 1
        losses = {"discriminator": d_loss.item(), "generator": g_loss.item(), "l1": l1.item()}
        history["l1"].append(losses["l1"])
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
        if step % options.save_every == 0:
            save()
        if step % options.sample_every == 0:
            _sample_sheet(generator, held_pairs, device, out / "samples" / f"step-{step:07d}.png")
    bar.close()
    save()
    generated = _sample_sheet(
        generator, held_pairs, device, out / "samples" / f"step-{step:07d}.png"
    )
    held_l1 = float(np.mean([np.abs(g - t).mean() for g, (_, t) in zip(generated, held_pairs,
                                                                        strict=True)]))  # fmt: skip
    summary = {"steps": step, "seconds": round(time.monotonic() - started, 1), "losses": losses,
               "validation": {"l1": round(held_l1 * 127.5, 3)}}  # fmt: skip
    return finish(out, summary, history)


def _sample_sheet(generator, pairs, device, path: Path) -> list[np.ndarray]:
    """Input | generated | staged for each held-apart pair; returns the generated images."""
    import torch

    from staging.io import save_image

    generator.eval()
    with torch.inference_mode():
        made = generator(tensor([p[0] for p in pairs], device)).float().cpu().numpy()
    generated = list(made.transpose(0, 2, 3, 1))
    rows = [np.concatenate([s, g, t], axis=1) for (s, t), g in zip(pairs, generated, strict=True)]
    sheet = np.clip(np.rint((np.concatenate(rows, axis=0) + 1) * 127.5), 0, 255)
    save_image(path, sheet.astype(np.uint8))
    return generated
