"""``staging train sd-outpaint``: LoRA fine-tuning of a Stable Diffusion inpainting model to paint
the catalog's own kind of scene around a product (AdBooster, seed 003: SD outpainting fine-
tuned on catalog images with automatic masks and captions).

Each example is a staged image from ``staging dataset`` (a random ``size``² crop), its caption,
and the product's mask: the model sees the product alone (everything else masked, the mask
grown by ``grow`` px so the product's edge is repainted into the scene) and learns to predict
the noise added to the whole image's latents, the standard inpainting objective (diffusers'
``train_dreambooth_inpaint``). Only LoRA adapters on the UNet's attention projections train
(peft, rank ``rank``); the VAE, text encoder and UNet stay frozen — in fp16 on CUDA, with the
adapters in fp32 and autocast, as in diffusers' LoRA scripts.

``out`` gets ``pytorch_lora_weights.safetensors`` (diffusers' LoRA format:
``pipeline.load_lora_weights(out)``, ``staging --lora OUT stage prompt ...``), ``training.json``
and, for resuming, ``checkpoint.pt`` (adapters, optimiser, step). Meant for a GPU: on a CPU a
512² step of SD 1.5 takes tens of seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from staging.train.common import (
    crop,
    finish,
    held_apart,
    out_of_time,
    read_rgb,
    save_whole,
    step_bar,
    tensor,
)
from staging.train.dataset import read_metadata

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]  # the attention projections, as diffusers does


@dataclass
class OutpaintTraining:
    """Options of ``staging train sd-outpaint``."""

    model: str = "sd-inpainting"  # a registry name (its folder in the models directory)
    size: int = 512
    rank: int = 4
    batch: int = 1
    steps: int = 1000
    minutes: float | None = None
    lr: float = 1e-4
    grow: int = 8  # px the product's mask is grown before the rest is repainted
    validation: int = 0
    save_every: int = 100
    seed: int = 0


def _example(record: dict, size: int, grow: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(image in [-1, 1] H×W×3, mask to repaint H×W: 1 outside the grown product)."""
    rgb = read_rgb(record["file_name"])
    product = cv2.imread(record["mask"], cv2.IMREAD_GRAYSCALE)
    product = cv2.resize(product, rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    rgb, product = crop([rgb, product], size, rng)
    if grow > 0:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        product = cv2.dilate(product, disk)
    return rgb.astype(np.float32) / 127.5 - 1, (product <= 127).astype(np.float32)


def train_sd_outpaint(
    data: str | Path, out: str | Path, runtime, options: OutpaintTraining | None = None,
    progress: bool = True, fresh: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """LoRA-train ``options.model`` (loaded from ``runtime``'s store, on its device) on the
    dataset ``data`` into ``out``; returns the summary and this run's loss ``history``."""
    import torch
    from torch.nn import functional as F  # noqa: N812 - PyTorch's own convention

    from staging.diffusion import load_pipeline, require_diffusers
    from staging.errors import StagingError

    options = options or OutpaintTraining()
    _, diffusers = require_diffusers(f"LoRA trainer for {options.model!r}")
    try:
        from peft import LoraConfig
        from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
    except ImportError as exc:
        raise StagingError("LoRA training needs peft: pip install peft") from exc
    out = Path(out)
    records = read_metadata(data)
    train = held_apart(records, options.validation)[0] if options.validation else records
    base = replace(runtime, lora=None)  # the base model alone: the adapters are trained here
    pipeline = load_pipeline(base, "StableDiffusionInpaintPipeline", options.model)
    unet, vae, text_encoder = pipeline.unet, pipeline.vae, pipeline.text_encoder
    device = unet.device
    amp = device.type == "cuda"
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    torch.manual_seed(options.seed)
    unet.add_adapter(LoraConfig(r=options.rank, lora_alpha=options.rank,
                                init_lora_weights="gaussian", target_modules=TARGETS))  # fmt: skip
    trainable = [p for p in unet.parameters() if p.requires_grad]
    for parameter in trainable:  # adapters train in fp32 whatever the frozen weights are
        parameter.data = parameter.data.float()
    optimiser = torch.optim.AdamW(trainable, lr=options.lr)
    noise_scheduler = diffusers.DDPMScheduler.from_config(pipeline.scheduler.config)
    checkpoint = out / "checkpoint.pt"
    step = 0
    if checkpoint.is_file() and not fresh:
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        trained = (state["model"], state["rank"], state.get("seed", 0))
        if trained != (options.model, options.rank, options.seed):
            raise ValueError(
                f"{checkpoint} is a rank-{state['rank']} LoRA of {state['model']!r}, seed "
                f"{state.get('seed', 0)}; pass the same, or --fresh to start over"
            )
        set_peft_model_state_dict(unet, state["lora"])
        optimiser.load_state_dict(state["optimiser"])
        step = int(state["step"])
    rng = np.random.default_rng([options.seed, step])
    scale = vae.config.scaling_factor

    def encode(images):
        return vae.encode(images.to(vae.dtype)).latent_dist.sample() * scale

    def text(captions: list[str]):
        ids = pipeline.tokenizer(captions, padding="max_length", truncation=True,
                                 max_length=pipeline.tokenizer.model_max_length,
                                 return_tensors="pt").input_ids  # fmt: skip
        return text_encoder(ids.to(device))[0]

    def save() -> None:
        out.mkdir(parents=True, exist_ok=True)
        layers = {k: v.detach().cpu().float().contiguous()
                  for k, v in get_peft_model_state_dict(unet).items()}  # fmt: skip
        diffusers.StableDiffusionInpaintPipeline.save_lora_weights(
            str(out), unet_lora_layers=layers, safe_serialization=True
        )
        save_whole({"step": step, "model": options.model, "rank": options.rank,
                    "seed": options.seed, "lora": layers, "optimiser": optimiser.state_dict()},
                   checkpoint)  # fmt: skip

    history: list[float] = []
    started = time.monotonic()
    bar = step_bar("sd-outpaint", options, step, progress)
    unet.train()
    while step < options.steps:
        if out_of_time(options, started):
            break
        picks = rng.integers(len(train), size=options.batch)
        examples = [_example(train[i], options.size, options.grow, rng) for i in picks]
        images = tensor([e[0] for e in examples], device)
        repaint = tensor([e[1] for e in examples], device)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            latents = encode(images)
            kept = encode(images * (1 - repaint))  # the product alone, as at generation
            hidden = text([train[i].get("text") or "" for i in picks])
        mask = F.interpolate(repaint, size=latents.shape[-2:])
        noise = torch.randn_like(latents)
        steps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(picks),),
                              device=device)  # fmt: skip
        noisy = noise_scheduler.add_noise(latents, noise, steps)
        if noise_scheduler.config.prediction_type == "v_prediction":
            target = noise_scheduler.get_velocity(latents, noise, steps)
        else:
            target = noise
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            unet_in = torch.cat([noisy, mask.to(noisy.dtype), kept], 1).to(unet.dtype)
            predicted = unet(unet_in, steps, hidden.to(unet.dtype)).sample
        loss = F.mse_loss(predicted.float(), target.float())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        history.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]:.4f}")
        if step % options.save_every == 0:
            save()
    bar.close()
    save()
    summary = {"steps": step, "seconds": round(time.monotonic() - started, 1),
               "loss": history[-1] if history else None, "model": options.model,
               "rank": options.rank, "records": len(train)}  # fmt: skip
    return finish(out, summary, history)
