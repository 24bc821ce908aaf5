"""Loading diffusers models: lazy imports, the model store, device, dtype and memory settings.
Below the step packages: the background generators (:mod:`staging.generate`), the ``sd``
inpainter (:mod:`staging.inpaint.sd`) and the trainers all load through here.

Why one place: the rules are the same for every checkpoint and easy to get subtly wrong —

* weights are read from the models directory only (``local_files_only=True``): a missing
  model is a :class:`~staging.errors.ModelNotAvailableError` naming ``staging models pull``,
  never a download behind the user's back or a hang on a firewall;
* on CUDA the weights load in fp16 (the ``fp16`` file variant when that is what was pulled),
  the VAE is tiled so large canvases do not run out of memory, and when the pipeline would
  not fit comfortably in the GPU's memory, models are offloaded to the CPU between uses
  (``enable_model_cpu_offload``, needs ``accelerate``) and attention is sliced;
* on CPU and MPS everything stays fp32 (fp16 convolutions are slow or unsupported there);
* the random generator lives on the CPU, so a seed gives the same image on any device.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Any

from staging.errors import ModelNotAvailableError, StagingError

PIP_COMMAND = "pip install torch diffusers==0.42.1 transformers accelerate"
log = logging.getLogger(__name__)


def require_diffusers(what: str):
    """``(torch, diffusers)``, or a :class:`StagingError` naming the pip command.

    ``what`` names the model or backend in the message (e.g. ``"model 'sd-inpainting'"``).
    """
    try:
        diffusers = importlib.import_module("diffusers")  # first: it fails fastest
        importlib.import_module("transformers")
        torch = importlib.import_module("torch")
    except ImportError as exc:
        raise StagingError(
            f"The diffusion {what} needs torch, diffusers and transformers "
            f"({exc.name or exc} is missing or does not import). Install them with:\n"
            f"    {PIP_COMMAND}\n"
            "or use the weights-free backend (--backend studio)."
        ) from exc
    return torch, diffusers


def torch_dtype(torch, device: str):
    """fp16 on CUDA (half the memory, tensor cores), fp32 elsewhere."""
    return torch.float16 if device.startswith("cuda") else torch.float32


def dtype_kwargs(diffusers, dtype) -> dict[str, Any]:
    """``from_pretrained``'s dtype argument: ``dtype`` from diffusers 0.42 on (``torch_dtype``
    is deprecated there), ``torch_dtype`` before."""
    try:
        major, minor = (int(p) for p in diffusers.__version__.split(".")[:2])
    except ValueError:
        major, minor = 0, 0
    return {"dtype": dtype} if (major, minor) >= (0, 42) else {"torch_dtype": dtype}


def fp16_variant(path: Path) -> str | None:
    """``"fp16"`` when the folder holds only the fp16 weight files (a registry entry that
    pulls the ``*.fp16.safetensors`` files to halve the download), else None. For a pipeline
    the UNet's folder decides; for a single model (a ControlNet), the folder itself."""
    folder = path / "unet" if (path / "unet").is_dir() else path
    names = [p.name for p in folder.glob("*.safetensors")]
    has_fp16 = any(".fp16." in n for n in names)
    has_full = any(".fp16." not in n for n in names)
    return "fp16" if has_fp16 and not has_full else None


def _stack_note() -> str:
    """The pip line too, when the diffusion stack is not installed either (checked without
    importing it: importing torch takes seconds)."""
    try:
        if all(importlib.util.find_spec(m) is not None for m in ("torch", "diffusers")):
            return ""
    except (ImportError, ValueError):  # a module blocked in sys.modules has no spec
        pass
    return f"\nThe diffusion backends also need torch and diffusers:\n    {PIP_COMMAND}"


def model_path(runtime, model: str) -> Path:
    """``runtime.store.path(model)``, its error completed with the pip line if needed."""
    try:
        return runtime.store.path(model)
    except ModelNotAvailableError as exc:
        raise ModelNotAvailableError(str(exc) + _stack_note()) from None


def require_models(runtime, *models: str) -> None:
    """Fail once, naming every missing model, before loading any of several (a ControlNet
    backend needs two): one ``staging models pull A B`` beats two rounds of errors."""
    store = runtime.store
    missing = [m for m in models if store.find(m) is None]
    if not missing or (store.allow_download and not store.offline):
        return
    if len(missing) == 1:
        raise ModelNotAvailableError(store.missing_message(missing[0]) + _stack_note())
    from staging.models import get_spec

    lines = []
    for name in missing:
        spec = get_spec(name)
        lines.append(
            f"  - {name}: {spec.description}, {spec.size_mb:.0f} MB, licence {spec.licence} "
            f"({spec.url})"
        )
    searched = ", ".join(str(d) for d in store.dirs)
    raise ModelNotAvailableError(
        f"{len(missing)} models are not in the models directory ({searched}):\n"
        + "\n".join(lines)
        + f"\nFetch them with:\n    staging models pull {' '.join(missing)}"
        + _stack_note()
    )


def load_component(runtime, cls, model: str, **kwargs):
    """A single diffusers model (e.g. a ``ControlNetModel``) from the store, with a clear
    error when the folder is broken."""
    path = model_path(runtime, model)
    torch, diffusers = require_diffusers(f"model {model!r}")
    dtype = torch_dtype(torch, runtime.device)
    try:
        return cls.from_pretrained(
            str(path),
            variant=fp16_variant(path),
            local_files_only=True,
            **dtype_kwargs(diffusers, dtype),
            **kwargs,
        )
    except Exception as exc:  # diffusers raises OSError/ValueError/... for a broken folder
        raise StagingError(_broken(model, path, exc)) from exc


def load_pipeline(runtime, pipeline_class: str, model: str, **components):
    """The diffusers pipeline ``pipeline_class`` for registry ``model``, on the runtime's
    device with its memory settings (see the module docstring)."""
    path = model_path(runtime, model)  # before importing torch: a missing model fails fast
    torch, diffusers = require_diffusers(f"model {model!r}")
    cls = getattr(diffusers, pipeline_class)
    extra: dict[str, Any] = {}
    if "StableDiffusionXL" not in pipeline_class:  # only SD 1.x/2.x pipelines have a checker
        extra = {"safety_checker": None, "requires_safety_checker": False}
    try:
        pipeline = cls.from_pretrained(
            str(path),
            **dtype_kwargs(diffusers, torch_dtype(torch, runtime.device)),
            variant=fp16_variant(path),
            local_files_only=True,
            **extra,
            **components,
        )
    except Exception as exc:  # diffusers raises OSError/ValueError/... for a broken folder
        raise StagingError(_broken(model, path, exc)) from exc
    if getattr(runtime, "lora", None):
        load_lora(pipeline, runtime.lora)
    place(pipeline, runtime.device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def load_lora(pipeline, folder: str | Path) -> None:
    """Load a LoRA folder (``pytorch_lora_weights.safetensors``, as ``staging train
    sd-outpaint`` and diffusers' training scripts write it) into ``pipeline``."""
    folder = Path(folder).expanduser()
    if not (folder / "pytorch_lora_weights.safetensors").is_file():
        raise StagingError(
            f"No LoRA at {folder} (no pytorch_lora_weights.safetensors). Train one with "
            "`staging train sd-outpaint DATA --out DIR`."
        )
    if importlib.util.find_spec("peft") is None:
        raise StagingError("Loading a LoRA needs peft: pip install peft")
    try:
        pipeline.load_lora_weights(str(folder))
    except Exception as exc:  # diffusers raises ValueError/KeyError for a mismatched LoRA
        raise StagingError(f"Could not load the LoRA {folder} into this model: {exc}") from exc


def _broken(model: str, path: Path, exc: Exception) -> str:
    return (
        f"Could not load {model!r} from {path}: {exc}\n"
        f"The folder may be incomplete; fetch it again with:\n"
        f"    staging models pull {model} --force"
    )


def place(pipeline, device: str) -> None:
    """Move ``pipeline`` to ``device`` with the memory savers that device needs."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        vae = getattr(pipeline, "vae", None)
        if vae is not None and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()  # decodes big canvases tile by tile; no-op for small ones
        index = torch.device(device).index or 0
        total = torch.cuda.get_device_properties(index).total_memory
        # Weights plus activations of a 1024^2 SDXL step need about 2.5x the weights.
        if 2.5 * pipeline_bytes(pipeline) > total:
            pipeline.enable_attention_slicing()
            if importlib.util.find_spec("accelerate") is not None:
                pipeline.enable_model_cpu_offload(device=device)
                return
            log.warning(
                "The diffusion pipeline barely fits in GPU memory; `pip install accelerate` "
                "lets it offload idle models to the CPU."
            )
        pipeline.to(device)
        return
    if device == "mps":
        pipeline.enable_attention_slicing()  # diffusers' advice for Apple GPUs below 64 GB
    pipeline.to(device if device in ("cpu", "mps") else "cpu")


def pipeline_bytes(pipeline) -> int:
    """Bytes of all parameters of the pipeline's torch modules."""
    import torch

    total = 0
    for component in pipeline.components.values():
        if isinstance(component, torch.nn.Module):
            total += sum(p.numel() * p.element_size() for p in component.parameters())
    return total
