"""Model registry and local model store.

Every pretrained network the project can use is a :class:`ModelSpec` in :data:`REGISTRY`: where
it comes from (a Hugging Face repo or a URL), which files it needs, their checksum, licence and
size. A :class:`ModelStore` finds those files in the models directories and, only when asked
(``staging models pull NAME``, or ``allow_download``), fetches them.

Why not just let each library download on first use? Because this tool must work offline and on
locked-down servers: a missing model must fail fast with a message that names the command that
fetches it, never hang on a network call. ``HF_HUB_OFFLINE=1`` and ``STAGING_OFFLINE=1`` forbid
every download.

Layout inside a models directory: a single-file model lives at ``<dir>/<file>`` (so a folder of
loose ``.onnx`` files, like rembg's, works as it is); a multi-file model (a diffusers repo) lives
at ``<dir>/<name>/``.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock
from tqdm import tqdm

from staging.errors import ModelNotAvailableError, StagingError, UnknownNameError

_REMBG_RELEASE = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"


@dataclass(frozen=True)
class ModelSpec:
    """One downloadable model."""

    name: str
    task: str  # segment | embed | inpaint | generate | depth
    source: str  # "hf://org/repo" or an https URL of the single file
    files: tuple[str, ...]
    licence: str
    size_mb: float
    description: str
    checksums: dict[str, str] = field(default_factory=dict)  # file -> "sha256:.." | "md5:.."
    revision: str | None = None  # for hf:// sources

    @property
    def single_file(self) -> bool:
        return not self.source.startswith("hf://") and len(self.files) == 1

    @property
    def url(self) -> str:
        if self.source.startswith("hf://"):
            return "https://huggingface.co/" + self.source.removeprefix("hf://")
        return self.source


REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (plugins may call this too)."""
    REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UnknownNameError(f"Unknown model {name!r}. Known models: {known}.") from None


# --- segmentation (U^2-Net family and the rembg sessions) -------------------------------------
register(
    ModelSpec(
        "u2net",
        "segment",
        _REMBG_RELEASE + "u2net.onnx",
        ("u2net.onnx",),
        "Apache-2.0",
        176.3,
        "U^2-Net salient object detection (Qin et al. 2020), the paper's segmenter.",
        {"u2net.onnx": "md5:60024c5c889badc19c04ad937298a77b"},
    )
)
register(
    ModelSpec(
        "u2netp",
        "segment",
        _REMBG_RELEASE + "u2netp.onnx",
        ("u2netp.onnx",),
        "Apache-2.0",
        4.6,
        "U^2-Net-p, the 4.7 MB version of U^2-Net.",
        {"u2netp.onnx": "md5:8e83ca70e441ab06c318d82300c84806"},
    )
)
register(
    ModelSpec(
        "isnet-general-use",
        "segment",
        _REMBG_RELEASE + "isnet-general-use.onnx",
        ("isnet-general-use.onnx",),
        "Apache-2.0",
        178.6,
        "IS-Net (DIS, Qin et al. 2022) general-use dichotomous segmentation, via rembg.",
        {"isnet-general-use.onnx": "md5:fc16ebd8b0c10d971d3513d564d01e29"},
    )
)
register(
    ModelSpec(
        "birefnet-general",
        "segment",
        _REMBG_RELEASE + "BiRefNet-general-epoch_244.onnx",
        ("birefnet-general.onnx",),
        "MIT",
        973.0,
        "BiRefNet general (Zheng et al. 2024): high-resolution segmentation, via rembg.",
        {"birefnet-general.onnx": "md5:7a35a0141cbbc80de11d9c9a28f52697"},
    )
)
register(
    ModelSpec(
        "birefnet-general-lite",
        "segment",
        _REMBG_RELEASE + "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
        ("birefnet-general-lite.onnx",),
        "MIT",
        224.0,
        "BiRefNet general, Swin-tiny backbone, via rembg.",
        {"birefnet-general-lite.onnx": "md5:4fab47adc4ff364be1713e97b7e66334"},
    )
)

# --- embedding (product retrieval) -------------------------------------------------------------
_ONNX_ZOO = "https://github.com/onnx/models/raw/main/validated/vision/classification/"
_MOBILENET_V2_SHA256 = "sha256:83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f"
register(
    ModelSpec(
        "mobilenet_v2",
        "embed",
        _ONNX_ZOO + "mobilenet/model/mobilenetv2-12-int8.onnx",
        ("mobilenetv2-12-int8.onnx",),
        "Apache-2.0",
        3.5,
        "MobileNetV2 ImageNet classifier, int8 (ONNX Model Zoo); its pooled 1280-d features embed "
        "products for retrieval",
        {"mobilenetv2-12-int8.onnx": _MOBILENET_V2_SHA256},
    )
)
# torchvision's IMAGENET1K_V1 Inception-V3 (the paper's embedder). torchvision publishes only the
# first 8 hex digits of the SHA-256, in the file name; torch.hub checks that prefix, so do we.
_INCEPTION_V3_FILE = "inception_v3_google-0cc3c7bd.pth"
register(
    ModelSpec(
        "inception_v3",
        "embed",
        "https://download.pytorch.org/models/" + _INCEPTION_V3_FILE,
        (_INCEPTION_V3_FILE,),
        "BSD-3-Clause",
        103.9,
        "Inception-V3 ImageNet classifier (torchvision IMAGENET1K_V1 state dict); its pooled "
        "2048-d features are the paper's product embedding (needs torch + torchvision)",
        {_INCEPTION_V3_FILE: "sha256:0cc3c7bd"},
    )
)
register(
    ModelSpec(
        "clip-vit-base-patch32",
        "embed",
        "hf://openai/clip-vit-base-patch32",
        (
            "config.json",
            "preprocessor_config.json",
            "model.safetensors",
            # The text tower's tokenizer: `staging eval clip-score` compares images with prompts.
            "tokenizer.json",
            "tokenizer_config.json",
        ),
        "MIT",
        605.2,
        "OpenAI CLIP ViT-B/32; its image tower's 512-d projected embedding is the `clip` "
        "embedder (needs torch + transformers)",
    )
)


# --- inpainting -----------------------------------------------------------------------------
register(
    ModelSpec(
        "lama",
        "inpaint",
        "https://huggingface.co/Carve/LaMa-ONNX/resolve/main/lama_fp32.onnx",
        ("lama_fp32.onnx",),
        "Apache-2.0",
        208.0,
        "LaMa big-lama (Suvorov et al. 2022) large-mask inpainting, community ONNX export "
        "(Carve/LaMa-ONNX; inputs image 1x3x512x512 in 0..1 and mask 1x1x512x512)",
    )
)
register(
    ModelSpec(
        "sd-inpainting",
        "inpaint",
        "hf://stable-diffusion-v1-5/stable-diffusion-inpainting",
        (
            "model_index.json",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            "tokenizer/merges.txt",
            "tokenizer/special_tokens_map.json",
            "tokenizer/tokenizer_config.json",
            "tokenizer/vocab.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
            "feature_extractor/preprocessor_config.json",
        ),
        "CreativeML-OpenRAIL-M",
        4270.0,
        "Stable Diffusion 1.5 inpainting (diffusers pipeline; needs torch + diffusers)",
    )
)

# --- background generation (prompt and vanilla staging, staging.generate) ---------------------
_SD_TOKENIZER = (
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
)
register(
    ModelSpec(
        "sd2-inpainting",
        "generate",
        "hf://stabilityai/stable-diffusion-2-inpainting",
        (
            "model_index.json",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            *_SD_TOKENIZER,
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
            "feature_extractor/preprocessor_config.json",
        ),
        "CreativeML-OpenRAIL++-M",
        5160.0,
        "Stable Diffusion 2 inpainting, 512 px (diffusers pipeline; needs torch + diffusers)",
    )
)
# The fp16 files only: half the download; they are upcast to fp32 on CPU.
register(
    ModelSpec(
        "sdxl-inpainting",
        "generate",
        "hf://diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
        (
            "model_index.json",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json",
            "text_encoder/model.fp16.safetensors",
            "text_encoder_2/config.json",
            "text_encoder_2/model.fp16.safetensors",
            *_SD_TOKENIZER,
            *(f.replace("tokenizer/", "tokenizer_2/") for f in _SD_TOKENIZER),
            "unet/config.json",
            "unet/diffusion_pytorch_model.fp16.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.fp16.safetensors",
        ),
        "CreativeML-OpenRAIL++-M",
        6940.0,
        "Stable Diffusion XL 1.0 inpainting, 1024 px, fp16 files (diffusers; needs torch + "
        "diffusers)",
    )
)
register(
    ModelSpec(
        "controlnet-canny-sd15",
        "generate",
        "hf://lllyasviel/control_v11p_sd15_canny",
        ("config.json", "diffusion_pytorch_model.safetensors"),
        "CreativeML-OpenRAIL-M",
        1445.0,
        "ControlNet 1.1 Canny for SD 1.5: steers sd-inpainting with the product's edges "
        "(the 'controlnet' generator; needs torch + diffusers and sd-inpainting)",
    )
)


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MIN_PREFIX_HEX = 8
"""A shorter expected digest is a prefix of the real one (torch.hub's file-name convention)."""


def checksum_matches(path: Path, expected: str) -> bool:
    """``expected`` is ``"sha256:<hex>"`` or ``"md5:<hex>"`` (pooch's convention). A digest of at
    least :data:`MIN_PREFIX_HEX` digits but shorter than the algorithm's is matched as a prefix,
    as torch.hub does for ``name-<sha256 prefix>.pth`` files."""
    algorithm, _, hexdigest = expected.partition(":")
    hexdigest = hexdigest.lower()
    actual = _hash_file(path, algorithm)
    if MIN_PREFIX_HEX <= len(hexdigest) < len(actual):
        return actual.startswith(hexdigest)
    return actual == hexdigest


@dataclass
class ModelStatus:
    name: str
    present: bool
    path: Path | None
    checksum_ok: bool | None  # None: not present or nothing to check against


class ModelStore:
    """Finds model files on disk and, when allowed, downloads them."""

    def __init__(self, dirs: list[Path], offline: bool = False, allow_download: bool = False):
        if not dirs:
            raise ValueError("at least one models directory is needed")
        self.dirs = [Path(d) for d in dirs]
        self.offline = offline
        self.allow_download = allow_download

    # -- lookup ---------------------------------------------------------------------------------
    def _location(self, spec: ModelSpec, root: Path) -> Path:
        return root / spec.files[0] if spec.single_file else root / spec.name

    def find(self, name: str) -> Path | None:
        """Where the model's files are, or None. Never touches the network."""
        spec = get_spec(name)
        for root in self.dirs:
            location = self._location(spec, root)
            if spec.single_file:
                if location.is_file():
                    return location
            elif all((location / f).exists() for f in spec.files):
                return location
        return None

    def status(self, name: str, verify: bool = False) -> ModelStatus:
        spec = get_spec(name)
        path = self.find(name)
        checksum_ok = None
        if path is not None and verify and spec.checksums:
            checksum_ok = all(
                checksum_matches(path if spec.single_file else path / f, expected)
                for f, expected in spec.checksums.items()
            )
        return ModelStatus(name, path is not None, path, checksum_ok)

    def path(self, name: str) -> Path:
        """The model's file (single-file models) or folder; fetches it only if allowed.

        Raises :class:`ModelNotAvailableError` naming the command to run when it is missing.
        """
        found = self.find(name)
        if found is not None:
            return found
        if self.allow_download and not self.offline:
            return self.pull(name)
        raise ModelNotAvailableError(self.missing_message(name))

    def missing_message(self, name: str) -> str:
        spec = get_spec(name)
        where = self.dirs[0] / (spec.files[0] if spec.single_file else spec.name)
        searched = ", ".join(str(d) for d in self.dirs)
        msg = (
            f"Model {name!r} ({spec.description}, {spec.size_mb:.0f} MB, licence {spec.licence}) "
            f"is not in the models directory ({searched}). Fetch it with:\n"
            f"    staging models pull {name}\n"
            f"or download {spec.url} yourself and save it as {where}."
        )
        if self.offline:
            msg += "\n(Offline mode is on: HF_HUB_OFFLINE or STAGING_OFFLINE forbids downloads.)"
        return msg

    # -- download -------------------------------------------------------------------------------
    def pull(self, name: str, force: bool = False, progress: bool = True) -> Path:
        """Download a model into the first models directory, verifying its checksum."""
        spec = get_spec(name)
        if not force:
            found = self.find(name)
            if found is not None:
                return found
        if self.offline:
            raise ModelNotAvailableError(
                f"Cannot download {name!r}: offline mode is on (HF_HUB_OFFLINE or "
                f"STAGING_OFFLINE). Unset it, or copy the files from {spec.url} into "
                f"{self.dirs[0]}."
            )
        root = self.dirs[0]
        root.mkdir(parents=True, exist_ok=True)
        target = self._location(spec, root)
        with FileLock(str(root / f".{spec.name}.lock")):
            if spec.source.startswith("hf://"):
                self._pull_hf(spec, target)
            else:
                self._pull_url(spec, target, progress)
        return target

    def _pull_url(self, spec: ModelSpec, target: Path, progress: bool) -> None:
        # Download next to the target and rename: a killed download never leaves a half file
        # that a later run would mistake for the model.
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
            part = Path(tmp.name)
            try:
                with urllib.request.urlopen(spec.source, timeout=30) as response:  # noqa: S310
                    total = int(response.headers.get("Content-Length") or 0) or None
                    with tqdm(
                        total=total,
                        unit="B",
                        unit_scale=True,
                        desc=spec.name,
                        disable=not progress,
                    ) as bar:
                        for chunk in iter(lambda: response.read(1 << 20), b""):
                            tmp.write(chunk)
                            bar.update(len(chunk))
            except OSError as exc:
                part.unlink(missing_ok=True)
                raise ModelNotAvailableError(
                    f"Could not download {spec.name!r} from {spec.source}: {exc}. Check the "
                    f"network, or download it yourself and save it as {target}."
                ) from exc
        expected = spec.checksums.get(spec.files[0])
        if expected and not checksum_matches(part, expected):
            part.unlink(missing_ok=True)
            raise StagingError(
                f"Checksum mismatch for {spec.name!r} downloaded from {spec.source}; the file "
                "was discarded. Try again, or report it if it persists."
            )
        part.replace(target)

    def _pull_hf(self, spec: ModelSpec, target: Path) -> None:
        from huggingface_hub import snapshot_download

        repo = spec.source.removeprefix("hf://")
        try:
            snapshot_download(
                repo,
                revision=spec.revision,
                allow_patterns=list(spec.files),
                local_dir=str(target),
            )
        except Exception as exc:  # huggingface_hub raises many types; all mean "not fetched"
            shutil.rmtree(target, ignore_errors=True)
            raise ModelNotAvailableError(
                f"Could not download {spec.name!r} from {spec.url}: {exc}"
            ) from exc
