"""Engine settings: from arguments, ``STAGING_*`` environment variables, or CLI flags.

Precedence (highest first): keyword arguments / CLI flags, environment, defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_TRUE = {"1", "true", "yes", "on"}

APP_NAME = "product-staging-studio"
"""The name of the per-user cache and data folders (platformdirs)."""


def default_models_dir() -> Path:
    """Per-user cache folder for downloaded weights (``~/.cache/product-staging-studio/models``)."""
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "models"


def hf_offline_env() -> bool:
    """True when the Hugging Face convention ``HF_HUB_OFFLINE`` asks for no network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


class Settings(BaseSettings):
    """Everything a :class:`~staging.StagingEngine` can be told.

    Each field can be set as ``STAGING_<FIELD>`` in the environment, e.g.
    ``STAGING_MODELS_DIR=/data/models STAGING_DEVICE=cpu``.
    """

    model_config = SettingsConfigDict(env_prefix="STAGING_", extra="forbid")

    device: str = Field(
        "auto", description="'auto' picks cuda, then mps, then cpu; or name one ('cuda:1')."
    )
    models_dir: str | None = Field(
        None,
        description=(
            "Folder(s) holding model weights, separated by the OS path separator; the first is "
            "where `staging models pull` writes. Default: a per-user cache folder."
        ),
    )
    offline: bool = Field(
        False, description="Never touch the network (also implied by HF_HUB_OFFLINE=1)."
    )
    allow_download: bool = Field(
        False,
        description=(
            "Let a missing model be downloaded on first use. Off by default: downloads are "
            "explicit (`staging models pull NAME`)."
        ),
    )
    auto_pull: bool = Field(
        True,
        description=(
            "When no pretrained segmentation model is on disk, fetch the recommended one "
            "(isnet-general-fp16, 88 MB) on first use, with a progress bar. Never in offline "
            "mode; set 0 to fall back to the weights-free `backdrop` instead."
        ),
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_cache_dir(APP_NAME)),
        description=(
            "Folder for recomputable results: masks by image content and model (masks/), so no "
            "image is segmented twice by the index, copy-paste, parallax or the app."
        ),
    )
    segment_backend: str = Field("auto", description="Default segmentation backend name.")
    scene_parser: str = Field(
        "auto",
        description=(
            "Scene parser for copy-paste's scene analysis (all furniture, the floor, the "
            "replaced object's kind): a name from staging.segment.parse.PARSERS, 'none', or "
            "'auto' (the first whose weights are on disk; none otherwise)."
        ),
    )
    threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Saliency threshold for binary masks (paper: 0.5)."
    )
    max_pixels: int = Field(
        60_000_000, gt=0, description="Refuse larger images (decompression-bomb guard)."
    )
    threads: int | None = Field(
        None, ge=1, description="CPU threads for ONNX Runtime; default: all cores."
    )
    lora: str | None = Field(
        None,
        description=(
            "A LoRA folder (from `staging train sd-outpaint`) loaded into the diffusion "
            "generators (sd, sd2, sdxl, controlnet) on top of their base model."
        ),
    )
    state_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)),
        description=(
            "Folder for what the app learns and the user edits: the prompt bandits' state "
            "(bandits/<category>.json) and an optional own prompts.yaml. Default: a per-user "
            "data folder."
        ),
    )

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"auto", "cpu", "mps"} and not value.startswith("cuda"):
            raise ValueError(f"device must be auto, cpu, mps or cuda[:N], not {value!r}")
        return value

    @property
    def model_dirs(self) -> list[Path]:
        """The models search path, first entry writable."""
        if not self.models_dir:
            return [default_models_dir()]
        return [Path(p).expanduser() for p in self.models_dir.split(os.pathsep) if p.strip()]

    @property
    def is_offline(self) -> bool:
        return self.offline or hf_offline_env()
